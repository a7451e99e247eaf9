"""EASERecommender against a dense NumPy reference of Steck's closed form."""

import numpy as np
import pytest
import scipy.sparse as sp

from tacitrec import EASERecommender
from tacitrec.exceptions import NotFittedError
import tacitrec.ease as ease_module
from conftest import random_user_items


def _reference(X, lam):
    G = (X.T @ X).toarray().astype(np.float64) + lam * np.eye(X.shape[1])
    P = np.linalg.inv(G)
    B = -P / np.diag(P)[None, :]
    np.fill_diagonal(B, 0.0)
    return B


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("lam", [0.5, 10.0, 500.0])
def test_weights_match_the_closed_form(dtype, lam):
    X = random_user_items(n_users=80, n_items=45, density=0.2, seed=3)
    m = EASERecommender(regularization=lam, dtype=dtype).fit(X, show_progress=False)
    B = _reference(X, lam)
    assert m.weights.dtype == np.float32 and m.weights.shape == (45, 45)
    assert np.all(np.diag(m.weights) == 0)
    tol = 1e-6 if dtype == np.float64 else 2e-4
    np.testing.assert_allclose(m.weights, B, atol=tol * max(1.0, np.abs(B).max()))


def test_threads_and_large_catalogue_block_sizes():
    X = random_user_items(n_users=300, n_items=700, density=0.02, seed=5)
    one = EASERecommender(regularization=20.0, num_threads=1).fit(X, show_progress=False)
    two = EASERecommender(regularization=20.0, num_threads=2).fit(X, show_progress=False)
    np.testing.assert_allclose(one.weights, _reference(X, 20.0), atol=1e-5)
    np.testing.assert_allclose(one.weights, two.weights, atol=1e-6)


def test_scores_are_user_rows_times_weights():
    X = random_user_items(n_users=40, n_items=30, seed=2)
    m = EASERecommender(regularization=3.0, dtype=np.float64).fit(X, show_progress=False)
    S = X.toarray() @ m.weights.astype(np.float64)
    ids, scores = m.recommend(np.arange(40), X, N=30, filter_already_liked_items=False)
    np.testing.assert_allclose(scores, np.take_along_axis(S, ids, 1), rtol=1e-5, atol=1e-5)
    assert np.all(np.diff(scores, axis=1) <= 0)


def test_similar_items_rank_the_weight_row():
    X = random_user_items(n_users=60, n_items=20, seed=4)
    m = EASERecommender(regularization=2.0).fit(X, show_progress=False)
    ids, scores = m.similar_items(3, N=5)
    want = [j for j in np.argsort(-m.weights[3], kind="stable") if j != 3][:5]
    np.testing.assert_array_equal(ids, want)
    np.testing.assert_allclose(scores, m.weights[3, want])
    batch, _ = m.similar_items([3, 7], N=4, filter_items=[want[0]])
    assert batch.shape == (2, 4) and want[0] not in batch[0] and 3 not in batch[0]


def test_bad_arguments_name_themselves():
    X = random_user_items()
    for bad in (0, -1.0, np.nan, np.inf):
        with pytest.raises(ValueError, match="regularization"):
            EASERecommender(regularization=bad).fit(X, show_progress=False)
    with pytest.raises(TypeError, match="regularization"):
        EASERecommender(regularization="big").fit(X, show_progress=False)
    with pytest.raises(ValueError, match="dtype"):
        EASERecommender(dtype=np.int32).fit(X, show_progress=False)
    with pytest.raises(TypeError, match="user_items"):
        EASERecommender().fit(X.toarray(), show_progress=False)
    with pytest.raises(NotFittedError):
        EASERecommender().recommend(0, X[0])
    with pytest.raises(NotImplementedError):
        EASERecommender().fit(X, show_progress=False).similar_users(0)


def test_memory_error_names_the_bytes_before_allocating(monkeypatch):
    monkeypatch.setattr(ease_module, "available_memory", lambda: 10**9)
    X = sp.csr_matrix((3, 40_000), dtype=np.float32)
    with pytest.raises(MemoryError, match=r"12\.80 GB to fit 40,000 items .* 6\.40 GB each"):
        EASERecommender().fit(X, show_progress=False)
    with pytest.raises(MemoryError, match=r"25\.60 GB"):
        EASERecommender(dtype=np.float64).fit(X, show_progress=False)


def test_not_positive_definite_in_float32_is_a_clear_error():
    # a duplicated column makes X^T X singular; a tiny lambda is lost in float32 rounding
    base = random_user_items(n_users=50, n_items=10, seed=1).toarray() * 1000
    X = sp.csr_matrix(np.hstack([base, base]))
    with pytest.raises(ValueError, match="regularization.*float64"):
        EASERecommender(regularization=1e-9).fit(X, show_progress=False)


def _sparsified(B, k):
    """Of every column of B, the k entries of largest magnitude (ties to the lower row, zeros
    never kept); the rest set to 0."""
    out = np.zeros_like(B)
    for j in range(B.shape[1]):
        col = B[:, j]
        nz = np.flatnonzero(col != 0)
        keep = nz[np.lexsort((nz, -np.abs(col[nz])))][:k]
        out[keep, j] = col[keep]
    return out


@pytest.mark.parametrize("k", [1, 5, 17, 60])
def test_sparse_k_keeps_the_largest_magnitudes_of_each_column(k):
    X = random_user_items(n_users=120, n_items=50, density=0.15, seed=7)
    dense = EASERecommender(regularization=3.0).fit(X, show_progress=False)
    m = EASERecommender(regularization=3.0, sparse_k=k).fit(X, show_progress=False)
    want = _sparsified(dense.weights, k)
    W = m.weights
    assert sp.issparse(W) and W.dtype == np.float32 and W.shape == (50, 50)
    assert W.has_canonical_format and W.nnz == np.count_nonzero(want) <= 50 * k
    # the selection runs on the same float32 weights: exactly the reference's entries
    np.testing.assert_array_equal(W.toarray(), want)
    assert (W.toarray() < 0).any()  # negative weights are kept by magnitude
    S = X.toarray().astype(np.float64) @ want.astype(np.float64)
    ids, scores = m.recommend(np.arange(120), X, N=10)
    liked = X.toarray() != 0
    for u in range(120):
        cand = np.flatnonzero(~liked[u])
        top = cand[np.lexsort((cand, -S[u, cand]))][:10]
        np.testing.assert_allclose(scores[u], S[u, top], rtol=1e-5, atol=1e-6)
        assert not liked[u, ids[u]].any()
    # every entry kept: the dense model's recommendations
    if k == 60:
        d_ids, d_scores = dense.recommend(np.arange(120), X, N=10)
        np.testing.assert_allclose(scores, d_scores, rtol=1e-5, atol=1e-6)


def test_sparse_k_similar_items_threads_and_ties():
    # integer-valued columns: many ties in magnitude, broken by the lower row
    B = np.zeros((6, 6), np.float32)
    B[:, 2] = [1.0, -2.0, 0.0, 2.0, -1.0, 2.0]
    B[:, 4] = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    import tacitrec._core as core

    indptr, indices, data, shape = core.ease_sparsify(B, 2, 1)
    got = sp.csr_matrix((data, indices, indptr), shape=shape).toarray()
    want = np.zeros_like(B)
    want[1, 2], want[3, 2] = -2.0, 2.0  # |2| three times: rows 1 and 3 before 5
    np.testing.assert_array_equal(got, want)

    X = random_user_items(n_users=300, n_items=200, density=0.05, seed=9)
    one = EASERecommender(regularization=5.0, sparse_k=9, num_threads=1).fit(X, show_progress=False)
    two = EASERecommender(regularization=5.0, sparse_k=9, num_threads=2).fit(X, show_progress=False)
    assert (one.weights != two.weights).nnz == 0
    W = one.weights.toarray()
    ids, scores = one.similar_items(11, N=6)
    row = W[11].astype(np.float64)
    cand = np.array([j for j in range(200) if j != 11])
    top = cand[np.lexsort((cand, -row[cand]))][:6]
    np.testing.assert_allclose(scores, row[top], rtol=1e-6)


def test_sparse_k_bad_values_name_themselves():
    X = random_user_items()
    for bad in (0, -3):
        with pytest.raises(ValueError, match="sparse_k"):
            EASERecommender(sparse_k=bad).fit(X, show_progress=False)
    with pytest.raises(TypeError, match="sparse_k"):
        EASERecommender(sparse_k=2.5).fit(X, show_progress=False)

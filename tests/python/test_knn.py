"""Item-item kNN: similarity against a SciPy/NumPy reference of implicit 0.7's formulas, Pearson
against numpy.corrcoef, weighting functions, neighbour lists and kNN-specific behaviour."""

import numpy as np
import pytest
import scipy.sparse as sp

from tacitrec import (
    BM25Recommender,
    CosineRecommender,
    ItemItemRecommender,
    PearsonRecommender,
    RP3BetaRecommender,
    TFIDFRecommender,
)
from tacitrec.knn import bm25_weight, normalize, tfidf_weight
from conftest import reference_topk


def continuous_user_items(n_users=80, n_items=25, density=0.25, seed=0):
    """Positive non-integer values: no exact ties in the similarities."""
    rng = np.random.default_rng(seed)
    X = sp.random(
        n_users,
        n_items,
        density=density,
        format="csr",
        random_state=rng,
        data_rvs=lambda n: rng.uniform(0.5, 5.0, n),
    )
    X.sort_indices()
    return X


# ---- reference formulas (items are documents, users terms), dense NumPy in float64 ----------


def ref_idf(X):
    n_items = X.shape[1]
    df = np.diff(X.tocsr().indptr)  # items per user
    return np.log(n_items) - np.log1p(df)


def ref_weighted(X, kind, K1=1.2, B=0.75):
    D = X.toarray().astype(np.float64)
    mask = D != 0
    if kind == "dot" or kind == "pearson":
        return D
    if kind == "cosine":
        n = np.sqrt((D**2).sum(axis=0))
        return np.divide(D, n, out=np.zeros_like(D), where=n > 0)
    idf = ref_idf(X)[:, None]
    if kind == "tfidf":
        W = np.sqrt(D) * idf * mask
        n = np.sqrt((W**2).sum(axis=0))
        return np.divide(W, n, out=np.zeros_like(W), where=n > 0)
    if kind == "bm25":
        length = D.sum(axis=0)
        norm = (1 - B) + B * length / length.mean()
        return np.where(mask, D * (K1 + 1) / (K1 * norm[None, :] + D) * idf, 0.0)
    raise ValueError(kind)


def ref_topk_rows(S, K, allowed):
    """Per row: the K largest allowed entries (ties to the lower id) as a dense matrix."""
    out = np.zeros_like(S)
    for i in range(S.shape[0]):
        cand = [j for j in range(S.shape[1]) if allowed[i, j]]
        cand.sort(key=lambda j: (-S[i, j], j))
        for j in cand[:K]:
            out[i, j] = S[i, j]
    return out


MODELS = [
    (ItemItemRecommender, "dot", {}),
    (CosineRecommender, "cosine", {}),
    (TFIDFRecommender, "tfidf", {}),
    (BM25Recommender, "bm25", {"K1": 1.5, "B": 0.6}),
]


@pytest.mark.parametrize("cls,kind,kw", MODELS)
@pytest.mark.parametrize("K", [1, 5, 40])
def test_similarity_matches_reference(cls, kind, kw, K):
    X = continuous_user_items()
    model = cls(K=K, num_threads=2, **kw).fit(X, show_progress=False)
    W = ref_weighted(X, kind, **{k.replace("K1", "K1"): v for k, v in kw.items()})
    S = W.T @ W
    co = (X.T @ X).toarray() != 0  # only co-occurring pairs have a stored product
    want = ref_topk_rows(S, K, co)
    got = model.similarity
    assert got.dtype == np.float32 and got.shape == (25, 25)
    np.testing.assert_allclose(got.toarray(), want, rtol=2e-5, atol=1e-6)
    assert np.array_equal(got.toarray() != 0, want != 0)
    # the item itself is its own first neighbour for normalised similarities
    if kind in ("cosine", "tfidf"):
        for i in range(25):
            row = got[i].toarray().ravel()
            if row.any():
                assert np.argmax(row) == i and row[i] == pytest.approx(1.0, rel=1e-5)


def test_pearson_matches_corrcoef():
    X = continuous_user_items(n_users=60, n_items=20, density=0.3, seed=3).tolil()
    X[:, 4] = 2.0  # constant column: zero variance
    X[:, 9] = 0.0  # empty column
    X = X.tocsr()
    X.eliminate_zeros()
    model = PearsonRecommender(K=6).fit(X, show_progress=False)
    with np.errstate(invalid="ignore", divide="ignore"):  # zero-variance columns give NaN
        C = np.corrcoef(X.toarray(), rowvar=False)
    co = (X.T @ X).toarray() != 0
    varies = X.toarray().std(axis=0) > 0
    allowed = co & varies[:, None] & varies[None, :]
    want = ref_topk_rows(np.nan_to_num(C), 6, allowed)
    got = model.similarity.toarray()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert model.similarity[4].nnz == 0 and model.similarity[9].nnz == 0
    assert np.all(model.similarity[:, 4].toarray() == 0)
    assert got[0, 0] == pytest.approx(1.0, rel=1e-6)


def test_weighting_functions_match_formulas_rows_as_documents():
    X = continuous_user_items(seed=5).T.tocsr()  # items x users: rows are documents
    D = X.toarray().astype(np.float64)
    mask = D != 0
    idf = np.log(X.shape[0]) - np.log1p((D != 0).sum(axis=0))
    got = tfidf_weight(X)
    assert isinstance(got, sp.csr_matrix) and got.dtype == np.float32 and got.shape == X.shape
    np.testing.assert_allclose(got.toarray(), np.sqrt(D) * idf * mask, rtol=1e-5, atol=1e-6)
    length = D.sum(axis=1)
    norm = 0.2 + 0.8 * length / length.mean()
    want = np.where(mask, D * 101 / (100 * norm[:, None] + D) * idf, 0)
    np.testing.assert_allclose(bm25_weight(X).toarray(), want, rtol=1e-5, atol=1e-6)
    want = D / np.linalg.norm(D, axis=1, keepdims=True)
    np.testing.assert_allclose(normalize(X).toarray(), np.nan_to_num(want), rtol=1e-5, atol=1e-7)
    # integer and COO input, not modified
    Y = sp.coo_matrix(np.array([[0, 3], [4, 0], [0, 0]]))
    before = Y.toarray().copy()
    np.testing.assert_allclose(normalize(Y).toarray(), [[0, 1], [1, 0], [0, 0]])
    np.testing.assert_array_equal(Y.toarray(), before)
    with pytest.raises(ValueError, match="non-negative"):
        tfidf_weight(sp.csr_matrix(np.array([[-1.0, 2.0]])))


def test_recommend_uses_query_time_values_and_serves_new_users():
    X = continuous_user_items(seed=7)
    model = CosineRecommender(K=10).fit(X, show_progress=False)
    S = model.similarity.toarray().astype(np.float64)
    rows = sp.csr_matrix(np.array([[0] * 24 + [3.0], [2.0, 0, 1.0] + [0] * 22]))
    ids, sc = model.recommend([500, 501], rows, N=6)  # ids beyond the training users
    for r in range(2):
        scores = rows[r].toarray().ravel() @ S
        liked = set(rows[r].indices)
        order = sorted((j for j in range(25) if j not in liked), key=lambda j: (-scores[j], j))
        np.testing.assert_allclose(sc[r], scores[order[:6]], rtol=1e-5, atol=1e-7)
        assert not liked & set(ids[r])


def test_exactly_n_results_with_zero_scores_filling_in():
    # user liked item 0 whose only neighbour is itself: every other item scores 0
    X = sp.csr_matrix(np.array([[1.0, 0, 0, 0], [0, 1.0, 1.0, 0], [0, 0, 1.0, 1.0]]))
    model = ItemItemRecommender(K=1).fit(X, show_progress=False)
    ids, sc = model.recommend(0, X[0], N=3)
    assert list(ids) == [1, 2, 3] and list(sc) == [0, 0, 0]


def test_similar_items_returns_stored_neighbours_only():
    X = continuous_user_items(seed=2)
    model = BM25Recommender(K=4).fit(X, show_progress=False)
    ids, sc = model.similar_items([0, 3], N=10)
    assert ids.shape == (2, 10)
    for r, i in enumerate([0, 3]):
        row = model.similarity[i]
        order = sorted(zip(row.indices, row.data), key=lambda e: (-e[1], e[0]))
        n = len(order)
        assert list(ids[r][:n]) == [j for j, _ in order]
        np.testing.assert_allclose(sc[r][:n], [v for _, v in order], rtol=1e-6)
        assert np.all(ids[r][n:] == -1)
    one, _ = model.similar_items(3, N=2, filter_items=[3])
    assert 3 not in one and one.ndim == 1
    with pytest.raises(NotImplementedError, match="item-item"):
        model.similar_users(0)


def test_refit_other_shape_assignment_and_errors():
    model = CosineRecommender(K=3)
    model.fit(continuous_user_items(n_items=25), show_progress=False)
    model.fit(continuous_user_items(n_items=12, seed=4), show_progress=False)
    assert model.similarity.shape == (12, 12)
    with pytest.raises(ValueError, match="user_items is required"):
        model.recommend(0, None, filter_already_liked_items=False)
    with pytest.raises(ValueError, match="square"):
        model.similarity = sp.csr_matrix((3, 4))
    S = sp.identity(12, format="csr", dtype=np.float64)
    model.similarity = S
    S.data[:] = 5  # the model keeps its own copy
    assert model.similarity.data.max() == 1
    with pytest.raises(ValueError, match="K must be at least 1"):
        CosineRecommender(K=0).fit(continuous_user_items(), show_progress=False)
    with pytest.raises(ValueError, match="B"):
        BM25Recommender(B=2.0).fit(continuous_user_items(), show_progress=False)
    with pytest.raises(ValueError, match="non-negative"):
        TFIDFRecommender().fit(sp.csr_matrix(np.array([[-1.0, 1.0]])), show_progress=False)


def test_integer_float64_and_coo_inputs_give_the_same_model():
    X = continuous_user_items(seed=8)
    Xi = X.copy()
    Xi.data = np.ceil(Xi.data).astype(np.int64)
    a = BM25Recommender(K=5).fit(Xi, show_progress=False).similarity
    b = BM25Recommender(K=5).fit(Xi.astype(np.float64).tocoo(), show_progress=False).similarity
    c = BM25Recommender(K=5).fit(Xi.astype(np.float32).tocsc(), show_progress=False).similarity
    assert (a != b).nnz == 0 and (a != c).nnz == 0


def test_neighbours_match_implicit_when_installed():
    """Optional cross-check against implicit 0.7.3 (skipped where it is absent)."""
    nn = pytest.importorskip("implicit.nearest_neighbours")
    X = continuous_user_items(n_users=120, n_items=40, seed=11)
    pairs = [
        (nn.CosineRecommender(K=7), CosineRecommender(K=7)),
        (nn.TFIDFRecommender(K=7), TFIDFRecommender(K=7)),
        (nn.BM25Recommender(K=7, K1=1.2, B=0.75), BM25Recommender(K=7, K1=1.2, B=0.75)),
        (nn.ItemItemRecommender(K=7), ItemItemRecommender(K=7)),
    ]
    for peer, ours in pairs:
        peer.fit(X, show_progress=False)
        ours.fit(X, show_progress=False)
        np.testing.assert_allclose(
            ours.similarity.toarray(), peer.similarity.toarray(), rtol=2e-5, atol=1e-6
        )


def test_similarity_overflow_is_an_error_not_inf():
    from conftest import random_user_items

    X = random_user_items() * np.float32(1e25)
    model = ItemItemRecommender(K=5)
    with pytest.raises(ValueError, match="overflowed float32"):
        model.fit(X, show_progress=False)
    assert model.similarity is None  # nothing half-fitted
    fitted = BM25Recommender(K=5).fit(X, show_progress=False)  # weighting keeps it in range
    assert np.isfinite(fitted.similarity.data).all()


def test_similarity_is_handed_out_read_only():
    """A kernel may read the similarity from another thread: writing its arrays in place (which
    crashed a concurrent recommend) is refused; assigning a new matrix copies it."""
    from conftest import random_user_items

    X = random_user_items()
    model = BM25Recommender(K=5).fit(X, show_progress=False)
    before = model.recommend(np.arange(5), X[:5], N=3)
    for name in ("data", "indices", "indptr"):
        with pytest.raises(ValueError, match="read-only"):
            getattr(model.similarity, name)[:3] = 2**30
    after = model.recommend(np.arange(5), X[:5], N=3)
    np.testing.assert_array_equal(before[0], after[0])
    edited = model.similarity.copy()
    edited.data[:] = 1.0
    model.similarity = edited
    assert model.similarity.data.max() == 1.0 and edited.data.flags.writeable


def test_similarity_is_validated_once_and_only_when_nothing_can_change_it():
    """Serving calls skip the pass over the similarity's structure once a call has validated it,
    but only for arrays in memory Rust owns (NumPy refuses to make them writeable again): a
    fitted, assigned, loaded or unpickled model's own arrays. Arrays that could change under the
    model (memory-mapped, or buffers shared with another library) are validated by every call,
    so a corrupted one gets the clear error, not a crash."""
    import pickle

    from conftest import random_user_items, unpickled_over_shared_buffers

    X = random_user_items()
    model = BM25Recommender(K=5).fit(X, show_progress=False)
    assert not model._sim_checked  # not yet validated by a call
    expected = model.recommend(np.arange(6), X[:6], N=3)
    assert model._sim_checked
    np.testing.assert_array_equal(model.recommend(np.arange(6), X[:6], N=3)[0], expected[0])
    np.testing.assert_array_equal(model.similar_items(2, N=3)[0], model.similar_items(2, N=3)[0])
    # the model's arrays (which the matrix handed out shares, or copies where SciPy converts
    # the index type) cannot be made writeable again, nor their bases
    for name in ("data", "indices", "indptr"):
        root = getattr(model._sim, name)
        while isinstance(root, np.ndarray):
            with pytest.raises(ValueError, match="WRITEABLE"):
                root.flags.writeable = True
            root = root.base
    # assigned and unpickled models get their own such arrays, validated by their first call
    other = BM25Recommender(K=5)
    other.similarity = model.similarity.copy()
    clone = pickle.loads(pickle.dumps(model))
    for m in (other, clone):
        assert not m._sim_checked
        np.testing.assert_array_equal(m.recommend(np.arange(6), X[:6], N=3)[0], expected[0])
        assert m._sim_checked
    # pickle protocol 5 with out-of-band buffers: the model's arrays are the caller's buffers,
    # which the caller can still write: validated by every call
    shared, corrupt = unpickled_over_shared_buffers(model)
    np.testing.assert_array_equal(shared.recommend(np.arange(6), X[:6], N=3)[0], expected[0])
    assert not shared._sim_checked
    corrupt(shared._sim.indices)  # every index out of range, through the caller's buffer
    # (an index outside the matrix is an IndexError naming the similarity)
    with pytest.raises(IndexError, match="similarity"):
        shared.recommend(np.arange(6), X[:6], N=3)
    with pytest.raises(IndexError, match="similarity"):
        shared.similar_items(1, N=3)


def test_memory_mapped_similarity_is_never_trusted(tmp_path):
    """A memory-mapped model (``load_dir``) is validated on every call: its file can change under
    the mapping."""
    from conftest import random_user_items

    from tacitrec._validation import Csr, ValidatedOnce, model_owned

    X = random_user_items()
    model = BM25Recommender(K=5).fit(X, show_progress=False)
    s = model._sim
    path = tmp_path / "indices.npy"
    np.save(path, s.indices)
    mapped = model_owned(Csr(s.indptr, np.load(path, mmap_mode="r"), s.data, s.shape))
    assert isinstance(mapped.indices, np.memmap)  # kept shared, not copied
    checked = ValidatedOnce(mapped)
    checked.passed()
    assert not checked
    # arrays NumPy owns (which could be made writeable, written and made read-only again) are
    # replaced by the model's own copies, which can be trusted
    given = Csr(s.indptr.copy(), s.indices.copy(), s.data.copy(), s.shape)
    own = ValidatedOnce(given)
    assert own.csr.indices is not given.indices and given.indices.flags.writeable
    np.testing.assert_array_equal(own.csr.indices, given.indices)
    own.passed()
    assert own


def _power_law(n_users, n_items, per_user, seed):
    """Binary users x items with Zipf popularity and skewed activity (the benchmarks' shape)."""
    rng = np.random.default_rng(seed)
    pop = 1.0 / np.arange(1, n_items + 1) ** 0.8
    pop = rng.permutation(pop / pop.sum())
    counts = np.clip(rng.geometric(1.0 / per_user, n_users), 1, n_items)
    rows = np.repeat(np.arange(n_users), counts)
    cols = rng.choice(n_items, size=counts.sum(), p=pop)
    X = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_users, n_items))
    X.sum_duplicates()
    X.data[:] = 1.0
    return X


def test_large_catalogue_paths_match_scipy_reference():
    """At 3,000 items with short histories the fit's light rows, shared selections and the
    recommender's touched-items path run (the 10^5-item code paths): the similarity equals the
    SciPy product's top K, recommendations equal the dense NumPy scores' top N (liked items
    removed, ties to the lower id), and 1 thread gives what 2 give."""
    X = _power_law(2_000, 3_000, 6, seed=5)
    K, N = 15, 8
    one = BM25Recommender(K=K, num_threads=1).fit(X, show_progress=False)
    two = BM25Recommender(K=K, num_threads=2).fit(X, show_progress=False)
    a, b = one.similarity, two.similarity
    assert np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
    assert np.array_equal(a.data, b.data)

    W = sp.csr_matrix(ref_weighted(X, "bm25"))
    S = (W.T @ W).toarray()
    co = (X.T @ X).toarray() != 0
    got = a.toarray().astype(np.float64)
    for i in range(0, 3_000, 7):
        cand = np.flatnonzero(co[i])
        order = cand[np.lexsort((cand, -S[i, cand]))][:K]
        kept = np.flatnonzero(got[i])
        if len(order) == 0:  # an item nobody has
            assert len(kept) == 0
            continue
        # the same neighbours up to near-ties at the K-th value
        boundary = S[i, order[-1]]
        sure = order[S[i, order] > boundary * (1 + 1e-5) + 1e-9]
        assert set(sure) <= set(kept) and len(kept) == len(order)
        np.testing.assert_allclose(got[i, kept], S[i, kept], rtol=1e-5, atol=1e-6)

    users = np.arange(2_000)
    ids, scores = two.recommend(users, X, N=N)
    ids1, scores1 = one.recommend(users, X, N=N)
    assert np.array_equal(ids, ids1) and np.array_equal(scores, scores1)
    R = (X @ a.astype(np.float64)).toarray()
    for u in range(0, 2_000, 3):
        liked = set(X[u].indices)
        allowed = np.array([j for j in range(3_000) if j not in liked])
        order = allowed[np.lexsort((allowed, -R[u, allowed]))][:N]
        np.testing.assert_allclose(scores[u], R[u, order], rtol=1e-5, atol=1e-6)
        # ids agree except where scores tie (float32 sums may order near-ties differently)
        same = np.isclose(R[u, ids[u]], R[u, order], rtol=1e-5, atol=1e-6)
        assert same.all() and not liked & set(ids[u])


def test_scores_that_overflow_float32_are_an_error():
    """Weights near float32's largest value make the liked items' own scores +inf: the sparse
    scorer (every item a candidate) and the dense one (an ``items`` subset) both raise rather
    than rank the tied infinities by id; weights a little smaller rank as float64 does."""
    X = sp.csr_matrix(np.array([[1, 1, 0, 0], [1, 0, 1, 0], [0, 1, 1, 1]], dtype=np.float32))
    model = CosineRecommender(K=4).fit(X, show_progress=False)
    S = model.similarity.toarray().astype(np.float64)
    keep = {"filter_already_liked_items": False}
    for subset in (None, [0, 2, 3]):
        heavy = sp.csr_matrix(np.array([[3e38, 3e38, 0, 0]], dtype=np.float32))
        with pytest.raises(ValueError, match="scores: a score overflowed float32"):
            model.recommend(0, heavy, N=2, items=subset, **keep)
        light = heavy / 4
        ids, _ = model.recommend(0, light, N=2, items=subset, **keep)
        want = light.toarray()[0].astype(np.float64) @ S
        assert list(ids) == reference_topk(want, 2, candidates=subset)


def test_scores_that_overflow_both_ways_are_an_error():
    """+inf + -inf is NaN, the sparse scorer's mark for liked and filtered items: an item whose
    sum overflowed both ways must fail the call, not vanish from the ranking as if filtered. Both
    of the scorer's paths: the touched items only (N=1: item 3 fills it with a positive score)
    and the whole row (N=2: no second positive score); marked items, duplicated or filtered too,
    filtered too, must not be taken for overflows."""
    S = np.zeros((5, 5), dtype=np.float32)
    S[0, 2] = S[1, 2] = 2.0  # 3e38 * 2 = inf, -3e38 * 2 = -inf: item 2 is NaN
    S[0, 3], S[1, 3] = 1.0, 0.5  # item 3: 1.5e38
    S[0, 1] = S[1, 0] = 1.0  # the liked items' own scores (marked)
    model = CosineRecommender(K=5)
    model.similarity = sp.csr_matrix(S)
    bad = sp.csr_matrix(np.array([[3e38, -3e38, 0, 0, 0]], dtype=np.float32))
    for n in (1, 2):
        for filter_items in (None, [4], [0, 4, 4]):
            with pytest.raises(ValueError, match="scores: a score overflowed float32"):
                model.recommend(0, bad, N=n, filter_items=filter_items)
    # the same magnitudes with item 2 filtered, or one-sided: no overflow left to report
    ids, scores = model.recommend(0, bad, N=2, filter_items=[2])
    assert list(ids) == [3, 4] and scores[0] == np.float32(1.5e38) and scores[1] == 0
    ok = sp.csr_matrix(np.array([[1e38, -1e38, 0, 0, 0]], dtype=np.float32))
    ids, scores = model.recommend(0, ok, N=2)
    want = ok.toarray()[0].astype(np.float64) @ S.astype(np.float64)
    want[[0, 1]] = -np.inf
    assert list(ids) == reference_topk(want, 2)


@pytest.mark.parametrize(
    "cls, n_items, per_entry, per_item, per_user",
    # the interactions over the items (8 bytes an entry and 8 an item), a weighting's weights
    # (4), the item order (4 an item), above 2^15 items the interactions over the relabelled
    # items (8) and the labels (4 an item); RP3beta: its walk weights and their transpose (12
    # bytes an entry, 8 an item), the rows' lengths (8 an item), the users' totals (8 a user);
    # and each thread's float64 row of sums and bitmap
    [
        (ItemItemRecommender, 30, 8, 12, 0),
        (BM25Recommender, 30, 12, 12, 0),
        (CosineRecommender, 30, 12, 12, 0),
        (ItemItemRecommender, 2**15 + 1, 16, 16, 0),
        (BM25Recommender, 2**15 + 1, 20, 16, 0),
        (RP3BetaRecommender, 30, 12, 16, 8),
    ],
)
def test_fit_is_checked_against_the_memory_available(
    monkeypatch, cls, n_items, per_entry, per_item, per_user
):
    """With less memory available than the fit holds at least, MemoryError naming the sizes,
    before computing anything; with exactly that it fits."""
    from tacitrec import _validation

    X = sp.random(50, n_items, density=6 / n_items, format="csr", dtype=np.float32, random_state=0)
    threads = 3
    sums = threads * (8 * n_items + 8 * -(-n_items // 64))
    need = per_entry * X.nnz + per_item * n_items + per_user * 50 + sums
    monkeypatch.setattr(_validation, "available_memory", lambda: need - 1)
    with pytest.raises(
        MemoryError, match=f"50 users x {n_items:,} items .{X.nnz:,} stored interactions"
    ):
        cls(K=5, num_threads=threads).fit(X, show_progress=False)
    monkeypatch.setattr(_validation, "available_memory", lambda: need)
    m = cls(K=5, num_threads=threads).fit(X, show_progress=False)
    assert m.similarity.shape == (n_items, n_items)

"""implicit's keywords on tacitrec's own classes, and tacitrec.compat.implicit (issue: drop-in
for implicit). References are NumPy solves and implicit's documented behaviour."""

import io
import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import tacitrec
import tacitrec.compat.implicit as implicit
from tacitrec import (
    AlternatingLeastSquares,
    BayesianPersonalizedRanking,
    BM25Recommender,
    LogisticMatrixFactorization,
    PopularityRecommender,
)
from tacitrec.base import RecommenderBase
from conftest import random_user_items, reference_topk


@pytest.fixture(scope="module")
def X():
    return random_user_items(n_users=60, n_items=40, density=0.2, seed=3)


@pytest.fixture(scope="module")
def als(X):
    return AlternatingLeastSquares(factors=5, regularization=0.1, iterations=4, random_state=0).fit(
        X, show_progress=False
    )


def _cosine_rows(Q, F):
    def unit(A):
        n = np.linalg.norm(A, axis=1, keepdims=True)
        n[n == 0] = 1
        return A / n

    return unit(Q) @ unit(F).T


@pytest.mark.parametrize(
    "cls", [AlternatingLeastSquares, BayesianPersonalizedRanking, LogisticMatrixFactorization]
)
def test_use_gpu_false_accepted_true_refused(cls):
    assert cls(use_gpu=False).use_gpu is False
    with pytest.raises(ValueError, match="use_gpu=True: tacitrec has no GPU path"):
        cls(use_gpu=True)


def test_als_takes_implicits_positional_order(X):
    # implicit: factors, regularization, alpha, dtype, use_native, use_cg, use_gpu, iterations
    m = AlternatingLeastSquares(3, 0.1, 1.0, np.float64, False, False, False, 2)
    assert (m.use_native, m.use_cg, m.use_gpu, m.iterations) == (False, False, False, 2)
    m.fit(X, show_progress=False)  # float64 is accepted; the factors are float32
    assert m.user_factors.dtype == np.float32


def test_similar_items_recalculate_item_is_cosine_of_the_folded_in_item(als, X):
    item_users = X.T.tocsr()
    items = [2, 7]
    # reference: the exact least-squares fold-in against the user factors, then cosine
    U = als.user_factors.astype(np.float64)
    want_vec = []
    for i in items:
        row = item_users[i]
        conf, users = row.data.astype(np.float64), row.indices
        A = U.T @ U + 0.1 * np.eye(5) + (U[users].T * (conf - 1)) @ U[users]
        want_vec.append(np.linalg.solve(A, U[users].T @ conf))
    C = _cosine_rows(np.array(want_vec), als.item_factors.astype(np.float64))
    ids, scores = als.similar_items(items, N=6, recalculate_item=True, item_users=item_users[items])
    for r in range(len(items)):
        assert list(ids[r]) == reference_topk(C[r], 6)
        np.testing.assert_allclose(scores[r], C[r][ids[r]], atol=1e-4)
    # without recalculate_item the rows are ignored, as in implicit
    plain = als.similar_items(items, N=6)
    np.testing.assert_array_equal(als.similar_items(items, N=6, item_users=X)[0], plain[0])


def test_similar_users_recalculate_user(als, X):
    u = [4, 9]
    ids, scores = als.similar_users(u, N=5, recalculate_user=True, user_items=X[u])
    C = _cosine_rows(
        als.recalculate_user(u, X[u]).astype(np.float64), als.user_factors.astype(np.float64)
    )
    for r in range(2):
        assert list(ids[r]) == reference_topk(C[r], 5)


def test_models_without_item_fold_in_raise_not_implemented(X):
    bpr = BayesianPersonalizedRanking(factors=4, iterations=2, random_state=0).fit(
        X, show_progress=False
    )
    knn = BM25Recommender(K=10).fit(X, show_progress=False)
    for m in (bpr, knn):
        with pytest.raises(NotImplementedError, match="cannot recalculate item"):
            m.similar_items(0, recalculate_item=True, item_users=X.T.tocsr()[[0]])
    with pytest.raises(NotImplementedError):
        knn.similar_users(0, recalculate_user=True, user_items=X[[0]])


@pytest.mark.parametrize("model", [BM25Recommender(K=5), PopularityRecommender()])
def test_single_pass_fits_call_the_callback_once(model, X):
    calls = []
    model.fit(X, show_progress=False, callback=lambda *a: calls.append(a))
    assert len(calls) == 1 and calls[0][0] == 0 and calls[0][1] >= 0 and calls[0][2] is None


def test_partial_fit_items_width_error_names_users(als, X):
    m = pickle.loads(pickle.dumps(als))
    with pytest.raises(ValueError, match=r"61 columns, expected at most 60 \(one per user\)"):
        m.partial_fit_items([0], sp.csr_matrix((1, 61), dtype=np.float32))


def test_narrower_rows_mean_no_interactions_beyond(als, X):
    m = pickle.loads(pickle.dumps(als))
    m.partial_fit_items([45], X.T.tocsr()[[3]])  # the model grows to 46 items
    assert m.item_factors.shape[0] == 46
    ids, _ = m.recommend(5, X[5], N=46)  # X has 40 columns
    assert set(ids[ids >= 0]) == set(range(46)) - set(X[5].indices)
    # the factors of a narrower row equal those of the same row padded
    narrow = X.T.tocsr()[[3]][:, :50]
    padded = sp.csr_matrix((narrow.data, narrow.indices, narrow.indptr), shape=(1, 60))
    np.testing.assert_allclose(
        m.recalculate_item(1, narrow), m.recalculate_item(1, padded), rtol=1e-5
    )


def test_user_items_ignored_when_neither_filtering_nor_recalculating(als, X):
    ids, _ = als.recommend(0, X, N=5, filter_already_liked_items=False)  # all rows passed
    want = reference_topk(als.user_factors[0] @ als.item_factors.T, 5)
    assert list(ids) == want


def test_ids_beyond_int32_are_refused_not_truncated(als, X):
    with pytest.raises(IndexError, match="below 2\\*\\*31"):
        als.recalculate_user([2**32 + 3], X[[0]])


# ---- tacitrec.compat.implicit ----------------------------------------------------------------


@pytest.fixture(scope="module")
def compat_als(X):
    return implicit.als.AlternatingLeastSquares(
        factors=5, regularization=0.1, iterations=4, random_state=0
    ).fit(X, show_progress=False)


def test_compat_fit_warns_on_non_csr_like_implicit(X):
    m = implicit.als.AlternatingLeastSquares(factors=3, iterations=1, random_state=0)
    with pytest.warns(implicit.utils.ParameterWarning, match="coo_matrix"):
        m.fit(X.tocoo(), show_progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m.fit(X, show_progress=False)


def test_compat_equals_tacitrec_and_requires_csr(compat_als, als, X):
    np.testing.assert_array_equal(compat_als.user_factors, als.user_factors)
    with pytest.raises(ValueError, match="CSR"):
        compat_als.recommend(0, X[0].tocsc())


def test_compat_items_ranks_every_requested_item_owned_last(compat_als, X):
    user = 7
    owned = set(X[user].indices)
    items = np.arange(40)
    ids, scores = compat_als.recommend(user, X[user], N=40, items=items)
    assert sorted(ids) == list(range(40))
    n_free = 40 - len(owned)
    scores_ref = compat_als.user_factors[user] @ compat_als.item_factors.T
    want = reference_topk(scores_ref, n_free, excluded=owned)
    assert list(ids[:n_free]) == want
    assert list(ids[n_free:]) == sorted(owned) and np.all(np.isneginf(scores[n_free:]))


def test_compat_items_empty_returns_nothing(compat_als, X):
    # was "cannot reshape array of size 0" from the padding fill (implicit fails in np.max)
    ids, scores = compat_als.recommend(7, X[7], N=5, items=np.array([], np.int32))
    assert ids.shape == scores.shape == (0,)
    ids, scores = compat_als.recommend([7, 8], X[[7, 8]], N=5, items=[])
    assert ids.shape == scores.shape == (2, 0)
    ids, scores = compat_als.similar_items(3, N=5, items=[])
    assert ids.shape == scores.shape == (0,)


def test_compat_single_user_results_are_trimmed_batches_padded(compat_als, als, X):
    user = 7
    n_free = 40 - X[user].nnz
    ids, scores = compat_als.recommend(user, X[user], N=40)
    assert len(ids) == n_free and ids.min() >= 0
    batch, _ = compat_als.recommend([user, user], X[[user, user]], N=40)
    np.testing.assert_array_equal(batch, als.recommend([user, user], X[[user, user]], N=40)[0])


def test_compat_bpr_and_lmf_do_not_fold_in_like_implicit(X):
    for cls in (implicit.bpr.BayesianPersonalizedRanking, implicit.lmf.LogisticMatrixFactorization):
        m = cls(factors=3, iterations=1, random_state=0).fit(X, show_progress=False)
        with pytest.raises(NotImplementedError):
            m.recommend(0, X[0], recalculate_user=True)


def test_compat_precision_is_implicits_definition(compat_als, X):
    train, test = tacitrec.evaluation.train_test_split(X, 0.7, random_state=1)
    K = 5
    ids, _ = compat_als.recommend(np.arange(60), train, N=K)
    hits = ideal = 0
    for u in range(60):
        t = set(test[u].indices)
        if t:
            hits += len(t & set(ids[u][ids[u] >= 0]))
            ideal += min(K, len(t))
    got = implicit.evaluation.precision_at_k(compat_als, train, test, K=K, show_progress=False)
    assert got == pytest.approx(hits / ideal)
    true = tacitrec.evaluation.precision_at_k(compat_als, train, test, K=K, show_progress=False)
    assert true < got  # hits / K is smaller when users have fewer than K test items


def test_metrics_hand_other_models_a_scipy_matrix(X):
    """A model of the user's own with implicit's ``recommend`` (here: popularity, using scipy's
    methods on ``user_items``) is evaluated as implicit evaluates it."""

    class Popularity:
        def __init__(self, train):
            self.counts = np.asarray(train.sum(0)).ravel().astype(np.float32)

        def recommend(self, userid, user_items, N=10, filter_already_liked_items=True, **kw):
            assert sp.issparse(user_items) and user_items.format == "csr"
            scores = np.tile(self.counts, (len(userid), 1))
            scores[user_items.nonzero()] = -np.inf
            ids = np.argsort(-scores, axis=1, kind="stable")[:, :N]
            return ids, np.take_along_axis(scores, ids, 1)

    train, test = tacitrec.evaluation.train_test_split(X, 0.7, random_state=2)
    model, K = Popularity(train), 5
    ids, _ = model.recommend(np.arange(X.shape[0]), train, N=K)
    hits = ideal = 0
    for u in range(X.shape[0]):
        t = set(test[u].indices)
        if t:
            hits += len(t & set(ids[u]))
            ideal += min(K, len(t))
    got = implicit.evaluation.precision_at_k(model, train, test, K=K, show_progress=False)
    assert got == pytest.approx(hits / ideal)


def test_all_pairs_knn_is_the_top_k_of_the_gram_matrix(X):
    K = 4
    knn = implicit.nearest_neighbours.all_pairs_knn(X, K, show_progress=False)
    G = (X.T @ X).toarray()
    for i in range(X.shape[1]):
        row = knn[i]
        assert len(row.indices) <= K
        np.testing.assert_allclose(row.data, G[i, row.indices], rtol=1e-5)
        assert min(row.data) >= np.sort(G[i])[::-1][K - 1] - 1e-4


def test_compat_and_plain_files_load_into_each_other(compat_als, als):
    buf = io.BytesIO()
    als.save(buf)
    buf.seek(0)
    loaded = implicit.als.AlternatingLeastSquares.load(buf)
    assert type(loaded) is implicit.als.AlternatingLeastSquares
    buf = io.BytesIO()
    compat_als.save(buf)
    buf.seek(0)
    assert type(RecommenderBase.load(buf)) is AlternatingLeastSquares  # the registry is kept


def test_nonzeros_refuses_rows_out_of_range(X):
    from tacitrec.compat.implicit.utils import nonzeros

    row = list(nonzeros(X, 3))
    assert [int(c) for c, _ in row] == X[3].indices.tolist()
    for bad in (X.shape[0], 100, -1):
        with pytest.raises(
            IndexError, match=rf"row {bad} is out of range: m has 60 rows \(0..59\)"
        ):
            list(nonzeros(X, bad))
    for bad in (1.0, True, "1"):
        with pytest.raises(TypeError, match="row must be an integer"):
            list(nonzeros(X, bad))

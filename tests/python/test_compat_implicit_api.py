"""implicit 0.7.3's API beyond the models' methods, in tacitrec.compat.implicit: ``__version__``,
``recommender_base``, ``fit_callback``, the loss on the ``implicit`` logger, ``user_norms`` /
``item_norms`` / ``YtY`` / ``XtX``, ``to_gpu``, ``dtype``, ``utils`` helpers, the weighting
functions' output, ``rank_items`` / ``recommend_all``, and implicit's argument names. The
references are implicit's definitions (its source at v0.7.3) computed here with NumPy."""

import inspect
import io
import logging
import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import tacitrec
import tacitrec.compat.implicit as implicit
from tacitrec import NotFittedError
from tacitrec.compat.implicit.recommender_base import ModelFitError, RecommenderBase
from tacitrec.compat.implicit.utils import (
    ParameterWarning,
    augment_inner_product_matrix,
    check_csr,
    check_random_state,
)
from conftest import random_user_items, reference_topk

ALS = implicit.als.AlternatingLeastSquares
BPR = implicit.bpr.BayesianPersonalizedRanking
LMF = implicit.lmf.LogisticMatrixFactorization
NN = implicit.nearest_neighbours
KNN = [NN.ItemItemRecommender, NN.CosineRecommender, NN.TFIDFRecommender, NN.BM25Recommender]


@pytest.fixture(scope="module")
def X():
    return random_user_items(n_users=40, n_items=30, density=0.2, seed=11)


@pytest.fixture(scope="module")
def als(X):
    return ALS(factors=4, regularization=0.1, iterations=3, random_state=0).fit(
        X, show_progress=False
    )


def test_version_is_the_implicit_version_implemented():
    assert implicit.__version__ == "0.7.3" and "__version__" in implicit.__all__


# ---- recommender_base --------------------------------------------------------------------------


def test_model_fit_error_is_tacitrecs_and_what_the_models_raise(X):
    assert ModelFitError is tacitrec.ModelFitError
    with pytest.raises(ModelFitError, match="NaN or infinite"):
        BPR(factors=4, iterations=20, learning_rate=1e30, random_state=0).fit(
            X, show_progress=False
        )


def test_every_model_is_a_recommender_base():
    for cls in [ALS, BPR, LMF, *KNN]:
        assert issubclass(cls, RecommenderBase)
    assert isinstance(ALS(), RecommenderBase)
    assert not issubclass(tacitrec.AlternatingLeastSquares, RecommenderBase)
    # implicit's kNN models subclass its ItemItemRecommender
    assert all(issubclass(cls, NN.ItemItemRecommender) for cls in KNN)


def test_a_model_of_ones_own_subclasses_it_as_implicits(tmp_path):
    class Incomplete(RecommenderBase):
        def fit(self, user_items, show_progress=True, callback=None):
            pass

    with pytest.raises(TypeError, match="abstract"):
        Incomplete()

    class Mine(RecommenderBase):
        def __init__(self):
            self.scale, self.table, self.dtype = 1.0, None, np.dtype("float32")

        def fit(self, user_items, show_progress=True, callback=None):
            pass

        def recommend(self, userid, user_items, N=10, **kwargs):
            return np.arange(N), np.full(N, self.scale)

        def similar_users(self, userid, N=10, filter_users=None, users=None):
            pass

        def similar_items(self, itemid, N=10, **kwargs):
            pass

        def save(self, file):
            np.savez(file, scale=self.scale, table=np.eye(2), dtype="float64")

    Mine().save(tmp_path / "mine.npz")
    loaded = Mine.load(str(tmp_path / "mine"))  # ".npz" appended, as implicit's load
    assert loaded.scale == 1.0 and type(loaded.scale) is float
    np.testing.assert_array_equal(loaded.table, np.eye(2))
    assert loaded.dtype == np.dtype("float64")
    with pytest.warns(DeprecationWarning, match="rank_items is deprecated"):
        ids, _ = loaded.rank_items(0, None, [1, 2])
    assert list(ids) == list(range(10))


# ---- fit_callback and the training loss ----------------------------------------------------------


def _implicit_loss(X, U, V, regularization, alpha=1.0):
    """implicit's ALS loss (cpu/_als.pyx, calculate_loss): observed pairs weigh their confidence
    c = alpha r (target 1), missing ones 1 (target 0), plus the L2 term, divided by the total
    weight."""
    C = (X.toarray() * alpha).astype(np.float64)
    S = U.astype(np.float64) @ V.astype(np.float64).T
    observed = C != 0
    err = np.where(observed, C * (1 - S) ** 2, S**2).sum()
    err += regularization * ((U.astype(np.float64) ** 2).sum() + (V.astype(np.float64) ** 2).sum())
    return err / (C.sum() + C.size - observed.sum())


def test_fit_callback_is_called_per_iteration_unless_a_callback_is_given(X):
    m = ALS(factors=3, iterations=3, calculate_training_loss=True, random_state=0)
    assert m.fit_callback is None
    calls = []
    m.fit_callback = lambda *args: calls.append(args)
    m.fit(X, show_progress=False)
    assert [c[0] for c in calls] == [0, 1, 2] and all(c[1] >= 0 for c in calls)
    assert calls[-1][2] == pytest.approx(
        _implicit_loss(X, m.user_factors, m.item_factors, m.regularization), rel=1e-4
    )
    given = []
    m.fit(X, show_progress=False, callback=lambda *args: given.append(args))
    assert len(given) == 3 and len(calls) == 3  # an explicit callback wins, as in implicit
    m.calculate_training_loss = False
    m.fit(X, show_progress=False)
    assert [c[2] for c in calls[3:]] == [None, None, None]


def test_training_loss_is_logged_on_the_implicit_logger(X, caplog):
    caplog.set_level(logging.INFO, logger="implicit")
    m = ALS(factors=3, iterations=2, regularization=0.05, calculate_training_loss=True)
    losses = []
    m.fit(X, show_progress=False, callback=lambda i, t, loss: losses.append(loss))
    records = [r for r in caplog.records if r.name == "implicit"]
    assert [r.levelno for r in records] == [logging.INFO] * 3
    want = [
        f"loss {losses[0]:.4f}",
        f"loss {losses[1]:.4f}",
        f"Final training loss {losses[1]:.4f}",
    ]
    assert [r.getMessage() for r in records] == want
    final = _implicit_loss(X, m.user_factors, m.item_factors, 0.05)
    assert records[-1].getMessage() == f"Final training loss {final:.4f}"
    # with the progress bar (which shows the loss) only the final line, as in implicit
    caplog.clear()
    m.fit(X, show_progress=True)
    assert [r.getMessage() for r in caplog.records if r.name == "implicit"] == [
        f"Final training loss {_implicit_loss(X, m.user_factors, m.item_factors, 0.05):.4f}"
    ]
    caplog.clear()
    ALS(factors=3, iterations=2).fit(X, show_progress=False)
    assert not [r for r in caplog.records if r.name == "implicit"]


# ---- norms, Gram matrices ------------------------------------------------------------------------


def test_norms_and_gram_matrices_follow_the_current_factors(als):
    m = pickle.loads(pickle.dumps(als))
    U, V = m.user_factors.copy(), m.item_factors.copy()
    np.testing.assert_allclose(m.user_norms, np.linalg.norm(U, axis=1), rtol=1e-6)
    np.testing.assert_allclose(m.item_norms, np.linalg.norm(V, axis=1), rtol=1e-6)
    np.testing.assert_allclose(m.YtY, V.T @ V, rtol=1e-5)
    np.testing.assert_allclose(m.XtX, U.T @ U, rtol=1e-5)
    assert m.YtY.dtype == m.item_norms.dtype == np.float32
    # edited in place (implicit's cached values would go stale): seen on the next access
    m.item_factors[2] = 0.0
    m.item_factors[3] *= 2.0
    assert m.item_norms[2] == np.float32(1e-10)  # implicit's stand-in for a zero norm
    np.testing.assert_allclose(m.item_norms[3], 2 * np.linalg.norm(V[3]), rtol=1e-6)
    np.testing.assert_allclose(m.YtY, m.item_factors.T @ m.item_factors, rtol=1e-5)
    with pytest.raises(ValueError, match="read-only"):
        m.item_norms[0] = 1.0
    with pytest.raises(NotFittedError):
        _ = ALS().user_norms
    with pytest.raises(NotFittedError):
        _ = ALS().YtY


def test_sgd_models_norms_include_the_bias_columns_as_implicits(X):
    for cls in (BPR, LMF):
        m = cls(factors=3, iterations=2, random_state=0).fit(X, show_progress=False)
        np.testing.assert_allclose(m.user_norms, np.linalg.norm(m.user_factors, axis=1), rtol=1e-6)
        assert not hasattr(m, "YtY")  # ALS only, as in implicit


# ---- to_gpu, dtype -------------------------------------------------------------------------------


def test_to_gpu_raises_value_error_as_implicit_without_cuda(als):
    for model in (als, BPR()):
        with pytest.raises(ValueError, match="can't train on GPU"):
            model.to_gpu()
    assert not hasattr(LMF(), "to_gpu")  # implicit has no GPU LMF


def test_dtype_is_stored_as_a_numpy_dtype(X, tmp_path):
    for cls in (ALS, BPR, LMF):
        assert cls().dtype == np.dtype("float32") and isinstance(cls().dtype, np.dtype)
        m = cls(factors=2, iterations=1, dtype=np.float64, random_state=0)
        assert m.dtype == np.dtype("float64") and m.dtype.name == "float64"
        assert m.get_params()["dtype"] == np.dtype("float64")
        m.fit(X, show_progress=False)
        assert m.user_factors.dtype == np.float32  # computed and stored in float32
        buf = io.BytesIO()
        m.save(buf)
        buf.seek(0)
        assert cls.load(buf).dtype == np.dtype("float64")
        assert pickle.loads(pickle.dumps(m)).dtype == np.dtype("float64")
        m.set_params(dtype="float32")
        assert m.dtype == np.dtype("float32")
        with pytest.raises(TypeError):  # np.dtype's error, in the constructor as in implicit
            cls(dtype="nonsense")
    with pytest.raises(ValueError, match="dtype must be float32 or float64"):
        ALS(dtype=np.int32).fit(X, show_progress=False)


def test_a_pickle_of_the_older_layout_reads_its_dtype(als):
    m = pickle.loads(pickle.dumps(als))
    d = m.__dict__
    d["dtype"] = np.float64  # as pickles made before dtype became a numpy.dtype hold it
    del d["_dtype"]
    assert m.dtype == np.dtype("float64") and "dtype" not in m.__dict__


# ---- utils ---------------------------------------------------------------------------------------


def test_check_random_state():
    g = np.random.default_rng(1)
    assert check_random_state(g) is g
    assert check_random_state(5).random() == np.random.default_rng(5).random()
    assert isinstance(check_random_state(None), np.random.Generator)
    # a RandomState seeds a Generator with one draw of randint(2**31) (what implicit means:
    # its helper calls a missing rand_int method)
    want = np.random.default_rng(np.random.RandomState(3).randint(2**31)).random()
    assert check_random_state(np.random.RandomState(3)).random() == want


def test_check_csr(X):
    assert check_csr(X) is X
    others = [X.tocoo(), X.tocsc()]
    if not isinstance(sp.csr_array(X), sp.csr_matrix):  # a subclass before SciPy 1.11
        others.append(sp.csr_array(X))  # implicit's isinstance test warns for it then
    for other in others:
        with pytest.warns(ParameterWarning, match="Method expects CSR input, and was passed"):
            got = check_csr(other)
        assert got.format == "csr"
        np.testing.assert_array_equal(got.toarray(), X.toarray())


def test_augment_inner_product_matrix():
    F = np.array([[3.0, 4.0], [1.0, 0.0], [0.0, 0.0]], dtype=np.float32)
    max_norm, A = augment_inner_product_matrix(F)
    assert max_norm == 5.0 and A.dtype == np.float32
    np.testing.assert_allclose(A, [[3, 4, 0], [1, 0, np.sqrt(24)], [0, 0, 5]], rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(A, axis=1), 5.0, rtol=1e-6)
    q = np.array([0.3, -2.0, 0.0], dtype=np.float32)  # a query with 0 in the extra column
    np.testing.assert_allclose(A @ q, F @ q[:2], rtol=1e-6)
    assert augment_inner_product_matrix(F.astype(np.float64))[1].dtype == np.float64
    with pytest.raises(ValueError):
        augment_inner_product_matrix(np.zeros((0, 3)))


# ---- weighting functions -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def counts():
    # rows are documents (items), columns terms (users), as implicit's weighting reads them
    return sp.csr_matrix(
        np.array([[2, 0, 1, 0], [0, 3, 0, 0], [1, 1, 4, 0], [0, 0, 0, 5], [0, 0, 0, 0]])
    )


def _idf(D):
    return np.log(D.shape[0]) - np.log1p((D != 0).sum(axis=0))


def test_weighting_returns_float64_coo_like_implicit(counts):
    D = counts.toarray().astype(np.float64)
    idf = _idf(D)
    row_sums = D.sum(axis=1)
    for name, want in (
        ("tfidf_weight", np.sqrt(D) * idf),
        ("normalize", D / np.maximum(np.linalg.norm(D, axis=1, keepdims=True), 1e-300)),
    ):
        got = getattr(NN, name)(counts)
        assert type(got) is sp.coo_matrix and got.dtype == np.float64, name
        np.testing.assert_allclose(got.toarray(), want, rtol=1e-12)
    for K1, B in ((100, 0.8), (1.2, 0.75)):
        length = (1 - B) + B * row_sums / row_sums.mean()
        want = np.where(D != 0, D * (K1 + 1) / (K1 * length[:, None] + D) * idf, 0)
        got = NN.bm25_weight(counts, K1, B) if K1 == 1.2 else NN.bm25_weight(counts)
        assert type(got) is sp.coo_matrix and got.dtype == np.float64
        np.testing.assert_allclose(got.toarray(), want, rtol=1e-12)
    # float32 and COO input give float64 COO too; nothing passed in is modified
    f32 = counts.astype(np.float32).tocoo()
    before = f32.data.copy()
    assert NN.bm25_weight(f32).dtype == np.float64 and NN.tfidf_weight(f32).dtype == np.float64
    np.testing.assert_array_equal(f32.data, before)


def test_tacitrecs_own_weighting_is_unchanged(counts):
    native = tacitrec.knn.bm25_weight(counts)
    assert native.format == "csr" and native.dtype == np.float32
    np.testing.assert_allclose(native.toarray(), NN.bm25_weight(counts).toarray(), rtol=1e-5)


# ---- rank_items, recommend_all -------------------------------------------------------------------


def test_rank_items_ranks_the_selected_items_liked_ones_included(als, X):
    user = 5
    selected = [0, 3, 7, 9, 12, 15, 18, 21, 24, 27, 29, *X[user].indices[:2]]
    with pytest.warns(DeprecationWarning, match="rank_items is deprecated"):
        ids, scores = als.rank_items(user, X[user], selected)
    S = als.user_factors[user] @ als.item_factors.T
    assert list(ids) == reference_topk(S, 10, candidates=selected)  # recommend's N=10
    np.testing.assert_allclose(scores, S[ids], rtol=1e-5)


def test_recommend_all_is_the_batch_recommend(als, X):
    with pytest.warns(DeprecationWarning, match="recommend_all is deprecated"):
        ids = als.recommend_all(X, N=4)
    np.testing.assert_array_equal(ids, als.recommend(np.arange(40), X, N=4)[0])
    # users_items_offset: row r of user_items is user offset + r
    with pytest.warns(DeprecationWarning):
        ids = als.recommend_all(X[10:20], N=4, users_items_offset=10)
    S = als.user_factors @ als.item_factors.T
    for r in range(10):
        assert list(ids[r]) == reference_topk(S[10 + r], 4, excluded=set(X[10 + r].indices))
    with pytest.warns(DeprecationWarning):
        ids = als.recommend_all(X[:3], N=2, filter_already_liked_items=False, filter_items=[0])
    assert [list(row) for row in ids] == [reference_topk(S[u], 2, excluded={0}) for u in range(3)]
    with pytest.warns(DeprecationWarning), pytest.raises(NotImplementedError):
        BPR(factors=2, iterations=1).fit(X, show_progress=False).recommend_all(
            X, recalculate_user=True
        )


# ---- implicit's argument names -------------------------------------------------------------------


def test_fit_save_and_load_take_implicits_argument_names(X, tmp_path):
    def params(f):
        return list(inspect.signature(f).parameters)

    assert params(NN.ItemItemRecommender.fit)[1:] == ["weighted", "show_progress", "callback"]
    for cls in KNN[1:]:
        assert params(cls.fit)[1:] == ["counts", "show_progress", "callback"]
    for cls in (ALS, BPR, LMF):
        assert params(cls.fit)[1:] == ["user_items", "show_progress", "callback"]
    for cls in [ALS, BPR, LMF, *KNN]:
        assert params(cls.save)[1:] == ["fileobj_or_path"]
        assert params(cls.load) == ["fileobj_or_path"]
    knn = NN.ItemItemRecommender(K=5).fit(weighted=X, show_progress=False)
    bm25 = NN.BM25Recommender(K=5).fit(counts=X, show_progress=False)
    calls = []
    NN.CosineRecommender(K=5).fit(X, False, lambda *a: calls.append(a))  # positional
    assert len(calls) == 1
    ALS(factors=2, iterations=1).fit(user_items=X, show_progress=False)
    knn.save(fileobj_or_path=str(tmp_path / "knn"))
    again = NN.ItemItemRecommender.load(fileobj_or_path=str(tmp_path / "knn"))
    np.testing.assert_array_equal(again.similarity.toarray(), knn.similarity.toarray())
    # ItemItemRecommender's similarity is the raw co-occurrence, as implicit's
    G = (X.T @ X).toarray()
    row = knn.similarity[4]
    np.testing.assert_allclose(row.data, G[4, row.indices], rtol=1e-6)
    assert bm25.similarity.shape == (30, 30)


def test_fit_warns_at_the_callers_line_for_non_csr(X):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        NN.ItemItemRecommender(K=3).fit(X.tocoo(), show_progress=False)
        ALS(factors=2, iterations=1).fit(X.tocoo(), show_progress=False)
    assert [w.category for w in caught] == [ParameterWarning] * 2
    assert all(w.filename == __file__ for w in caught)

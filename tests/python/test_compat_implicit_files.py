"""tacitrec.compat.implicit loads the ``.npz`` files implicit 0.7.3's ``model.save`` writes.

The files are written here with NumPy in implicit's layout (the keys its ``save`` methods write:
implicit/cpu/als.py, cpu/bpr.pyx, cpu/lmf.pyx and nearest_neighbours.py at v0.7.3: 0-d arrays of
the hyper-parameters, ``dtype`` as its name, None values left out; the factor models'
``user_factors`` / ``item_factors``, the kNN models' ``K``, ``shape`` and similarity ``data``,
``indptr``, ``indices``), so implicit need not be installed. The expected recommendations are
NumPy references over the saved arrays: implicit's factor models score ``user_factors @
item_factors.T``, its kNN models ``user_items @ similarity``."""

import io
import pickle

import numpy as np
import pytest
import scipy.sparse as sp

import tacitrec
import tacitrec.compat.implicit as implicit
from tacitrec import ModelFormatError, NotFittedError
from conftest import random_user_items, reference_topk

N_USERS, N_ITEMS = 30, 25
NN = implicit.nearest_neighbours


@pytest.fixture(scope="module")
def X():
    return random_user_items(n_users=N_USERS, n_items=N_ITEMS, density=0.2, seed=7)


def _savez_like_implicit(file, **args):
    """implicit's ``save``: ``np.savez`` of the arguments that are not None."""
    np.savez(file, **{k: v for k, v in args.items() if v is not None})


def _factors(rows, columns, seed, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal((rows, columns)).astype(dtype)


def _als_args(U, V, **params):
    args = dict(
        user_factors=U,
        item_factors=V,
        regularization=0.05,
        factors=None if U is None else U.shape[1],
        num_threads=2,
        iterations=7,
        use_native=True,
        use_cg=False,
        cg_steps=3,
        calculate_training_loss=True,
        dtype="float32",
        random_state=11,
        alpha=2.0,
    )
    args.update(params)
    return args


def _check_recommends_by_dot_product(model, U, V, X):
    S = U.astype(np.float64) @ V.astype(np.float64).T
    ids, scores = model.recommend(np.arange(N_USERS), X, N=5)
    for u in range(N_USERS):
        want = reference_topk(S[u], 5, excluded=set(X[u].indices))
        assert list(ids[u]) == want
        np.testing.assert_allclose(scores[u], S[u][want], rtol=1e-5, atol=1e-5)
    single, _ = model.recommend(3, X[3], N=5)
    assert list(single) == list(ids[3])


def test_als_file_without_suffix_loads_its_parameters_and_factors(tmp_path, X):
    U, V = _factors(N_USERS, 4, 1), _factors(N_ITEMS, 4, 2)
    _savez_like_implicit(tmp_path / "model.npz", **_als_args(U, V))
    # implicit's users save("model") (numpy appends .npz) and load("model")
    m = implicit.als.AlternatingLeastSquares.load(str(tmp_path / "model"))
    assert type(m) is implicit.als.AlternatingLeastSquares
    params = (m.factors, m.regularization, m.num_threads, m.iterations, m.use_native, m.use_cg)
    assert params == (4, 0.05, 2, 7, True, False)
    assert (m.cg_steps, m.calculate_training_loss, m.random_state, m.alpha) == (3, True, 11, 2.0)
    assert m.dtype == np.dtype("float32") and isinstance(m.dtype, np.dtype)
    np.testing.assert_array_equal(m.user_factors, U)
    np.testing.assert_array_equal(m.item_factors, V)
    _check_recommends_by_dot_product(m, U, V, X)
    # similar_items: cosine of the item factors, as implicit's
    Vn = V / np.linalg.norm(V, axis=1, keepdims=True)
    C = Vn @ Vn.T
    ids, scores = m.similar_items(6, N=4)
    assert list(ids) == reference_topk(C[6], 4)
    np.testing.assert_allclose(scores, C[6][ids], rtol=1e-5)


def test_float64_factors_load_as_float32_keeping_the_dtype_parameter(tmp_path, X):
    U, V = _factors(N_USERS, 3, 3, np.float64), _factors(N_ITEMS, 3, 4, np.float64)
    buf = io.BytesIO()
    _savez_like_implicit(buf, **_als_args(U, V, dtype="float64", random_state=None))
    buf.seek(0)
    m = implicit.als.AlternatingLeastSquares.load(buf)  # a file object, as implicit allows
    assert m.dtype == np.dtype("float64") and m.random_state is None
    assert m.user_factors.dtype == np.float32
    np.testing.assert_array_equal(m.item_factors, V.astype(np.float32))
    _check_recommends_by_dot_product(m, U, V, X)


def test_float16_files_of_implicits_gpu_models_load_with_dtype_float32(tmp_path, X):
    U, V = _factors(N_USERS, 3, 5, np.float16), _factors(N_ITEMS, 3, 6, np.float16)
    _savez_like_implicit(tmp_path / "m.npz", **_als_args(U, V, dtype="float16"))
    m = implicit.als.AlternatingLeastSquares.load(tmp_path / "m.npz")
    assert m.dtype == np.dtype("float32")
    np.testing.assert_array_equal(m.user_factors, U.astype(np.float32))


@pytest.mark.parametrize(
    "cls, extra, params",
    [
        (
            implicit.bpr.BayesianPersonalizedRanking,
            1,
            dict(learning_rate=0.05, verify_negative_samples=False),
        ),
        (implicit.lmf.LogisticMatrixFactorization, 2, dict(learning_rate=0.5, neg_prop=12)),
    ],
)
def test_sgd_model_files_load_with_their_bias_columns(tmp_path, X, cls, extra, params):
    f = 3
    U, V = _factors(N_USERS, f + extra, 8), _factors(N_ITEMS, f + extra, 9)
    common = dict(regularization=0.02, factors=f, num_threads=0, iterations=9, dtype="float32")
    _savez_like_implicit(
        tmp_path / "m.npz", user_factors=U, item_factors=V, random_state=5, **common, **params
    )
    m = cls.load(tmp_path / "m.npz")
    assert type(m) is cls
    assert (m.factors, m.regularization, m.iterations, m.random_state) == (3, 0.02, 9, 5)
    assert all(getattr(m, k) == v for k, v in params.items())
    # implicit's scores are the full dot product: the bias columns included
    _check_recommends_by_dot_product(m, U, V, X)
    # the norms implicit defines are those of the whole rows
    np.testing.assert_allclose(m.item_norms, np.linalg.norm(V, axis=1), rtol=1e-6)


def test_unfitted_files_give_unfitted_models_that_train(tmp_path, X):
    _savez_like_implicit(tmp_path / "m.npz", **_als_args(None, None, factors=3, iterations=2))
    m = implicit.als.AlternatingLeastSquares.load(tmp_path / "m.npz")
    assert (m.factors, m.iterations) == (3, 2) and m.user_factors is None
    with pytest.raises(NotFittedError):
        m.recommend(0, X[0])
    m.fit(X, show_progress=False)
    assert m.user_factors.shape == (N_USERS, 3)
    _savez_like_implicit(tmp_path / "k.npz", K=7)
    knn = NN.CosineRecommender.load(tmp_path / "k.npz")
    assert knn.K == 7 and type(knn.K) is int and knn.similarity is None


def _similarity(seed):
    """A sparse items x items similarity as implicit stores it: float64 data, int32 indices."""
    S = sp.random(N_ITEMS, N_ITEMS, density=0.4, random_state=seed, format="csr")
    S.data = S.data + 0.1
    S.setdiag(1.0)
    S = S.tocsr()
    S.sort_indices()
    return S


def _knn_args(S, K=30):
    return dict(K=K, shape=S.shape, data=S.data, indptr=S.indptr, indices=S.indices)


@pytest.mark.parametrize(
    "cls", [NN.ItemItemRecommender, NN.CosineRecommender, NN.TFIDFRecommender, NN.BM25Recommender]
)
def test_knn_files_load_their_similarity(tmp_path, X, cls):
    S = _similarity(3)
    _savez_like_implicit(tmp_path / "knn.npz", **_knn_args(S, K=30))
    m = cls.load(tmp_path / "knn.npz")
    assert type(m) is cls and m.K == 30
    np.testing.assert_array_equal(m.similarity.toarray(), S.toarray().astype(np.float32))
    if cls is NN.BM25Recommender:
        assert (m.K1, m.B) == (1.2, 0.75)  # implicit does not save them: its defaults
    # implicit's kNN score: sum over the user's items i of r_ui * S[i, j]
    D = S.toarray()
    for u in range(N_USERS):
        scores = X[u].toarray().ravel() @ D
        liked = set(X[u].indices)
        ids, got = m.recommend(u, X[u], N=4)
        want = reference_topk(scores, 4, excluded=liked)
        assert list(ids) == want
        np.testing.assert_allclose(got, scores[want], rtol=1e-5)
    # similar_items: the stored row, best first
    ids, got = m.similar_items(5, N=3)
    assert list(ids) == reference_topk(D[5], 3)


def test_knn_similarity_in_any_order_is_read_canonically(tmp_path):
    # a row's entries in reverse column order (implicit's CSR parts are not checked for order)
    indptr = np.array([0, 2, 3, 3], dtype=np.int32)
    indices = np.array([2, 0, 1], dtype=np.int32)
    data = np.array([0.5, 1.0, 2.0])
    _savez_like_implicit(
        tmp_path / "k.npz", K=2, shape=(3, 3), data=data, indptr=indptr, indices=indices
    )
    m = NN.ItemItemRecommender.load(tmp_path / "k.npz")
    np.testing.assert_array_equal(m.similarity.toarray(), [[1, 0, 0.5], [0, 2, 0], [0, 0, 0]])
    ids, scores = m.similar_items(0, N=2)
    assert list(ids) == [0, 2] and list(scores) == [1.0, 0.5]


def test_bm25_files_with_k1_and_b_set_them(tmp_path):
    _savez_like_implicit(tmp_path / "k.npz", K=5, K1=3.0, B=0.25)
    m = NN.BM25Recommender.load(tmp_path / "k.npz")
    assert (m.K, m.K1, m.B) == (5, 3.0, 0.25)


def test_a_pickled_random_state_is_not_read(tmp_path):
    # implicit pickles a Generator given as random_state (its own load cannot read it back)
    U, V = _factors(N_USERS, 2, 1), _factors(N_ITEMS, 2, 2)
    args = _als_args(U, V, random_state=np.random.default_rng(0))
    np.savez(tmp_path / "m.npz", **args)
    m = implicit.als.AlternatingLeastSquares.load(tmp_path / "m.npz")
    assert m.random_state is None
    np.testing.assert_array_equal(m.user_factors, U)


def test_tacitrec_files_keep_loading(tmp_path, X):
    compat = implicit.bpr.BayesianPersonalizedRanking(factors=3, iterations=2, random_state=0)
    compat.fit(X, show_progress=False)
    compat.save(str(tmp_path / "c"))
    loaded = implicit.bpr.BayesianPersonalizedRanking.load(str(tmp_path / "c"))
    np.testing.assert_array_equal(loaded.item_factors, compat.item_factors)
    assert loaded.dtype == np.dtype("float32")
    plain = tacitrec.BM25Recommender(K=5, K1=2.0).fit(X, show_progress=False)
    buf = io.BytesIO()
    plain.save(buf)
    buf.seek(0)
    knn = NN.BM25Recommender.load(fileobj_or_path=buf)
    assert type(knn) is NN.BM25Recommender and knn.K1 == 2.0
    np.testing.assert_array_equal(knn.similarity.toarray(), plain.similarity.toarray())


# ---- files that are neither: ModelFormatError saying why --------------------------------------


def _load_error(cls, path, **arrays):
    _savez_like_implicit(path, **arrays)
    with pytest.raises(ModelFormatError) as e:
        cls.load(path)
    return str(e.value)


def test_a_file_of_another_implicit_class_names_that_class(tmp_path):
    U, V = _factors(N_USERS, 3, 1), _factors(N_ITEMS, 3, 2)
    bpr = dict(
        user_factors=U,
        item_factors=V,
        factors=2,
        learning_rate=0.01,
        regularization=0.01,
        verify_negative_samples=True,
        num_threads=0,
        iterations=3,
        dtype="float32",
    )
    msg = _load_error(implicit.als.AlternatingLeastSquares, tmp_path / "bpr.npz", **bpr)
    assert (
        "not a tacitrec model file, nor a file of implicit 0.7.3's AlternatingLeastSquares" in msg
    )
    assert "what implicit's BayesianPersonalizedRanking writes" in msg
    knn = _knn_args(_similarity(1))
    msg = _load_error(implicit.lmf.LogisticMatrixFactorization, tmp_path / "knn.npz", **knn)
    assert "ItemItemRecommender / CosineRecommender / TFIDFRecommender / BM25Recommender" in msg
    als = _als_args(U, V)
    msg = _load_error(NN.CosineRecommender, tmp_path / "als.npz", **als)
    assert "what implicit's AlternatingLeastSquares writes" in msg


def test_foreign_npz_files_are_refused(tmp_path):
    msg = _load_error(implicit.als.AlternatingLeastSquares, tmp_path / "a.npz", a=np.ones(3))
    assert "is not a tacitrec model file" in msg and "does not write the arrays 'a'" in msg
    msg = _load_error(implicit.als.AlternatingLeastSquares, tmp_path / "b.npz", regularization=1.0)
    assert "lacks 'factors', which implicit always writes" in msg
    # scipy.sparse.save_npz's file is not a kNN model, though it has data / indices / indptr
    sp.save_npz(tmp_path / "s.npz", _similarity(2))
    with pytest.raises(ModelFormatError, match="does not write the arrays 'format'"):
        NN.ItemItemRecommender.load(tmp_path / "s.npz")
    np.savez(tmp_path / "e.npz")
    with pytest.raises(ModelFormatError, match="it holds no arrays"):
        NN.ItemItemRecommender.load(tmp_path / "e.npz")


def test_inconsistent_implicit_files_are_refused(tmp_path):
    U, V = _factors(N_USERS, 3, 1), _factors(N_ITEMS, 3, 2)
    ALS = implicit.als.AlternatingLeastSquares
    msg = _load_error(ALS, tmp_path / "1.npz", **_als_args(U, V, factors=5))
    assert (
        "user_factors has 3 columns, but implicit's AlternatingLeastSquares with factors=5" in msg
    )
    msg = _load_error(ALS, tmp_path / "2.npz", **_als_args(U, None, factors=3))
    assert "holds user_factors without the other factors" in msg
    bad = U.copy()
    bad[0, 0] = np.nan
    msg = _load_error(ALS, tmp_path / "3.npz", **_als_args(bad, V))
    assert "NaN or infinite" in msg
    msg = _load_error(ALS, tmp_path / "4.npz", **_als_args(U, _factors(N_ITEMS, 3, 2)[0]))
    assert "item_factors" in msg
    msg = _load_error(ALS, tmp_path / "5.npz", **_als_args(U, V, iterations=np.arange(2)))
    assert "'iterations' is an array of shape (2,)" in msg
    msg = _load_error(ALS, tmp_path / "6.npz", **_als_args(U, V, regularization=-1.0))
    assert "parameters tacitrec cannot use" in msg and "regularization" in msg
    msg = _load_error(ALS, tmp_path / "7.npz", **_als_args(U, V, dtype="nonsense"))
    assert "'nonsense' is not a dtype" in msg
    obj = _als_args(U, V)
    obj["factors"] = np.array(3, dtype=object)
    np.savez(tmp_path / "8.npz", **obj)
    with pytest.raises(ModelFormatError, match="'factors' holds pickled Python objects"):
        ALS.load(tmp_path / "8.npz")
    S = _similarity(1)
    knn = _knn_args(S)
    msg = _load_error(NN.ItemItemRecommender, tmp_path / "9.npz", **dict(knn, shape=(3, 4)))
    assert "the similarity's shape is [3, 4], expected items x items" in msg
    msg = _load_error(
        NN.ItemItemRecommender, tmp_path / "10.npz", **dict(knn, indices=S.indices + 100)
    )
    assert "indices outside" in msg
    del knn["indptr"]
    msg = _load_error(NN.ItemItemRecommender, tmp_path / "11.npz", **knn)
    assert "without its indptr" in msg


def test_files_that_are_not_npz_keep_tacitrecs_errors(tmp_path):
    (tmp_path / "t.npz").write_text("not a zip file")
    with pytest.raises(ModelFormatError, match="is not a readable tacitrec model file"):
        implicit.als.AlternatingLeastSquares.load(tmp_path / "t.npz")
    np.save(tmp_path / "a.npy", np.ones(3))
    with pytest.raises(ModelFormatError, match="holds a single array"):
        implicit.als.AlternatingLeastSquares.load(tmp_path / "a.npy")
    with pytest.raises(FileNotFoundError):
        implicit.als.AlternatingLeastSquares.load(tmp_path / "missing.npz")
    # a file of another tacitrec class: tacitrec's own error
    buf = io.BytesIO()
    tacitrec.BM25Recommender(K=3).save(buf)
    buf.seek(0)
    with pytest.raises(ModelFormatError, match="holds a BM25Recommender, which is not a"):
        implicit.als.AlternatingLeastSquares.load(buf)


def test_loaded_models_pickle_and_save_in_tacitrecs_format(tmp_path, X):
    U, V = _factors(N_USERS, 3, 1), _factors(N_ITEMS, 3, 2)
    _savez_like_implicit(tmp_path / "m.npz", **_als_args(U, V))
    m = implicit.als.AlternatingLeastSquares.load(tmp_path / "m.npz")
    again = pickle.loads(pickle.dumps(m))
    assert again.dtype == np.dtype("float32")
    m.save(fileobj_or_path=str(tmp_path / "t"))
    with np.load(tmp_path / "t.npz") as z:
        assert "__tacitrec__" in z.files  # tacitrec's format, which tacitrec's classes read
    plain = tacitrec.AlternatingLeastSquares.load(tmp_path / "t.npz")
    np.testing.assert_array_equal(plain.user_factors, U)
    assert plain.alpha == 2.0 and np.dtype(plain.dtype) == np.float32

"""The conformance suite every model runs: the base API's contract, checked against a dense
NumPy reference of the model's own scores. Model issues add their models to MODELS."""

import io
import pickle

import numpy as np
import pytest
import scipy.sparse as sp

from tacitrec import (
    AlternatingLeastSquares,
    BayesianPersonalizedRanking,
    BM25Recommender,
    CosineRecommender,
    EASERecommender,
    ItemItemRecommender,
    LightFM,
    LogisticMatrixFactorization,
    MatrixFactorizationBase,
    PearsonRecommender,
    PopularityRecommender,
    RP3BetaRecommender,
    SpectralFilterRecommender,
    TFIDFRecommender,
)
from tacitrec.base import RecommenderBase
from tacitrec.exceptions import ModelFormatError, NotFittedError
from conftest import random_user_items, reference_topk


def _factor_model(X, num_threads=0):
    rng = np.random.default_rng(3)
    m = MatrixFactorizationBase(num_threads=num_threads)
    # small integer factors: exact scores with many ties
    m.user_factors = rng.integers(-2, 3, size=(X.shape[0], 4))
    m.item_factors = rng.integers(-2, 3, size=(X.shape[1], 4))
    return m


def _factor_scores(m, X):
    return m.user_factors @ m.item_factors.T


def _popularity(X, num_threads=0):
    return PopularityRecommender(num_threads=num_threads).fit(X)


def _popularity_scores(m, X):
    return np.tile(np.asarray((X != 0).sum(axis=0), dtype=np.float32), (X.shape[0], 1))


def _popularity_weighted(X, num_threads=0):
    return PopularityRecommender(weighted=True, num_threads=num_threads).fit(X)


def _popularity_weighted_scores(m, X):
    return np.tile(np.asarray(X.sum(axis=0), dtype=np.float32), (X.shape[0], 1))


def _knn(cls, **kw):
    def build(X, num_threads=0):
        return cls(K=8, num_threads=num_threads, **kw).fit(X, show_progress=False)

    return build


def _knn_scores(m, X):
    return X.toarray().astype(np.float64) @ m.similarity.toarray().astype(np.float64)


def _als(use_cg):
    def build(X, num_threads=0):
        return AlternatingLeastSquares(
            factors=4, iterations=3, use_cg=use_cg, random_state=0, num_threads=num_threads
        ).fit(X, show_progress=False)

    return build


def _ials(solver):
    # Rendle et al.'s objective (unobserved_weight, frequency-scaled regularisation, normal init)
    def build(X, num_threads=0):
        return AlternatingLeastSquares(
            factors=4,
            iterations=3,
            solver=solver,
            block_size=2,
            unobserved_weight=0.2,
            regularization_exponent=1.0,
            init_std=0.1,
            random_state=0,
            num_threads=num_threads,
        ).fit(X, show_progress=False)

    return build


def _bpr(X, num_threads=0):
    return BayesianPersonalizedRanking(
        factors=4, iterations=5, deterministic=True, random_state=0, num_threads=num_threads
    ).fit(X, show_progress=False)


def _lmf(X, num_threads=0):
    return LogisticMatrixFactorization(
        factors=4, iterations=3, random_state=0, num_threads=num_threads
    ).fit(X, show_progress=False)


def _lightfm(X, num_threads=0):
    # trains on one thread (hogwild with more is not reproducible); serves on num_threads
    m = LightFM(no_components=4, loss="warp", random_state=0).fit(X, epochs=3)
    m.num_threads = num_threads
    return m


def _lightfm_scores(m, X):
    ub, ue = m.get_user_representations()
    ib, ie = m.get_item_representations()
    return ue @ ie.T + ub[:, None] + ib[None, :]


def _ease(X, num_threads=0):
    return EASERecommender(regularization=4.0, num_threads=num_threads).fit(X, show_progress=False)


def _ease_scores(m, X):
    return X.toarray().astype(np.float64) @ m.weights.astype(np.float64)


def _ease_sparse(X, num_threads=0):
    return EASERecommender(regularization=4.0, sparse_k=6, num_threads=num_threads).fit(
        X, show_progress=False
    )


def _ease_sparse_scores(m, X):
    return X.toarray().astype(np.float64) @ m.weights.toarray().astype(np.float64)


def _spectral(method, **kw):
    def build(X, num_threads=0):
        return SpectralFilterRecommender(
            method=method, factors=6, num_threads=num_threads, **kw
        ).fit(X, show_progress=False)

    return build


def _spectral_scores(m, X):
    # the model's own filter on every row (checked against the papers' formulas in
    # test_spectral.py); the suite checks the API contract around it
    ids, sc = m.recommend(np.arange(X.shape[0]), X, N=X.shape[1], filter_already_liked_items=False)
    S = np.empty(X.shape)
    np.put_along_axis(S, ids, sc, 1)
    return S


# name -> (build(X, num_threads) -> fitted model, dense scores(model, X))
MODELS = {
    "als_cg": (_als(True), _factor_scores),
    "als_cholesky": (_als(False), _factor_scores),
    "ials_cholesky": (_ials("cholesky"), _factor_scores),
    "ials_pp": (_ials("ials++"), _factor_scores),
    "bpr": (_bpr, _factor_scores),
    "lmf": (_lmf, _factor_scores),
    "lightfm": (_lightfm, _lightfm_scores),
    "itemitem": (_knn(ItemItemRecommender), _knn_scores),
    "cosine": (_knn(CosineRecommender), _knn_scores),
    "tfidf": (_knn(TFIDFRecommender), _knn_scores),
    "bm25": (_knn(BM25Recommender, K1=1.5, B=0.5), _knn_scores),
    "pearson": (_knn(PearsonRecommender), _knn_scores),
    "rp3beta": (_knn(RP3BetaRecommender, alpha=0.8, beta=0.5), _knn_scores),
    "factors": (_factor_model, _factor_scores),
    "ease": (_ease, _ease_scores),
    "ease_sparse": (_ease_sparse, _ease_sparse_scores),
    "gf-cf": (_spectral("gf-cf"), _spectral_scores),
    "bspm": (_spectral("bspm", t_point_combination=True), _spectral_scores),
    "chebycf": (_spectral("chebycf"), _spectral_scores),
    "popularity": (_popularity, _popularity_scores),
    "popularity_weighted": (_popularity_weighted, _popularity_weighted_scores),
}


@pytest.fixture(params=sorted(MODELS))
def case(request):
    X = random_user_items(n_users=50, n_items=30, density=0.2, seed=1)
    # an empty user and a cold (never interacted) item
    X = X.tolil()
    X[4, :] = 0
    X[:, 7] = 0
    X = X.tocsr()
    X.eliminate_zeros()
    build, scores = MODELS[request.param]
    model = build(X)
    return model, X, scores(model, X), build


def _check_rows(ids, sc, S, X, users, N, filter_items=(), items=None, filter_liked=True):
    """Every row against the dense scores S: allowed ids only, no repeats, the scores S holds for
    them, and the same score sequence as the reference top N' (ids may differ only where scores
    tie, which float rounding can reorder)."""
    for row, u in enumerate(users):
        liked = X[u].indices if filter_liked else []
        excluded = set(liked) | set(filter_items)
        want = reference_topk(S[u], N, excluded=list(excluded), candidates=items)
        n_cand = len(
            [
                j
                for j in range(X.shape[1])
                if j not in set(filter_items) and (items is None or j in set(items))
            ]
        )
        assert ids.shape[1] == min(N, n_cand)
        got = [i for i in ids[row] if i >= 0]
        assert len(got) == len(want), f"user {u}"
        assert len(set(got)) == len(got) and not (set(got) & excluded)
        if items is not None:
            assert set(got) <= set(items)
        np.testing.assert_allclose(sc[row][: len(got)], S[u][got], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(sc[row][: len(got)], S[u][want], rtol=1e-5, atol=1e-6)
        if np.allclose(S[u][want], np.round(S[u][want])):  # exact scores: exact order
            assert got == want, f"user {u}"
        assert np.all(ids[row][len(got) :] == -1) and np.all(np.isneginf(sc[row][len(got) :]))


def test_batch_matches_reference_and_single_calls(case):
    model, X, S, _ = case
    users = np.arange(X.shape[0])
    ids, sc = model.recommend(users, X[users], N=5)
    assert ids.dtype == np.int32 and sc.dtype == np.float32 and ids.shape == (50, 5)
    _check_rows(ids, sc, S, X, users, 5)
    for u in (0, 4, 17):
        i1, s1 = model.recommend(u, X[u], N=5)
        assert i1.ndim == 1
        np.testing.assert_array_equal(i1, ids[u])
        # GEMM blocking may round the last bit differently for a single query
        np.testing.assert_allclose(s1, sc[u], rtol=1e-5, atol=1e-6)


def test_filters_items_and_unfiltered(case):
    model, X, S, _ = case
    users = np.array([3, 4, 3, 20])
    flt, cand = [0, 5, 29], list(range(0, 30, 2))
    ids, sc = model.recommend(users, X[users], N=6, filter_items=flt)
    _check_rows(ids, sc, S, X, users, 6, filter_items=flt)
    ids, sc = model.recommend(users, X[users], N=6, items=cand)
    _check_rows(ids, sc, S, X, users, 6, items=cand)
    ids, sc = model.recommend(users, X[users], N=6, items=cand, filter_items=flt)
    _check_rows(ids, sc, S, X, users, 6, items=cand, filter_items=flt)
    ids, sc = model.recommend(users, X[users], N=6, filter_already_liked_items=False)
    _check_rows(ids, sc, S, X, users, 6, filter_liked=False)


def test_n_larger_than_catalogue_pads_only_where_needed(case):
    model, X, S, _ = case
    users = np.array([0, 4])  # user 4 has no items: full row; user 0 has some: padded
    ids, sc = model.recommend(users, X[users], N=100)
    assert ids.shape == (2, 30)
    assert np.all(ids[1] >= 0)
    assert np.sum(ids[0] == -1) == X[0].nnz
    _check_rows(ids, sc, S, X, users, 100)
    ids, _ = model.recommend(users, X[users], N=100, items=[1, 2, 3])
    assert ids.shape == (2, 3)
    ids, _ = model.recommend(users, X[users], N=3, items=[])
    assert ids.shape == (2, 0)


def test_cold_item_is_still_recommendable(case):
    model, X, S, _ = case
    ids, _ = model.recommend(4, X[4], N=30)
    assert 7 in ids


def test_bad_input_errors(case):
    model, X, _, _ = case
    if model._shape()[0] is not None:  # kNN models serve any user from its row
        with pytest.raises(IndexError, match="userid 50"):
            model.recommend(50, X[0])
    with pytest.raises(IndexError, match="negative"):
        model.recommend([-1, 2], X[[0, 2]])
    with pytest.raises(ValueError, match="2 users were requested"):
        model.recommend([1, 2], X)
    with pytest.raises(ValueError, match="user_items is required"):
        model.recommend(1)
    with pytest.raises(ValueError, match="columns, expected at most 30"):
        model.recommend(1, sp.hstack([X[1], X[1]]).tocsr())
    # fewer columns (a model grown by partial_fit_items): the items beyond are not the user's
    narrow = X[1][:, :20]
    padded = sp.csr_matrix((narrow.data, narrow.indices, narrow.indptr), shape=(1, 30))
    for got, want in zip(model.recommend(1, narrow), model.recommend(1, padded)):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(TypeError, match="user_items"):
        model.recommend(1, X[1].toarray())
    with pytest.raises(IndexError, match="filter_items 30"):
        model.recommend(1, X[1], filter_items=[30])
    with pytest.raises(IndexError, match="items -3"):
        model.recommend(1, X[1], items=[-3])
    with pytest.raises(ValueError, match="N must be at least 1"):
        model.recommend(1, X[1], N=0)
    model.num_threads = -2
    with pytest.raises(ValueError, match="num_threads must be >= 0"):
        model.recommend(1, X[1])
    model.num_threads = 0
    bad = X[1].copy()
    bad.data[:] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.recommend(1, bad)


def test_inputs_are_not_modified(case):
    model, X, _, _ = case
    Y = X[[3, 1]].astype(np.float64)
    before = Y.toarray().copy()
    flt = np.array([5, 2, 5])
    model.recommend([3, 1], Y, N=4, filter_items=flt)
    np.testing.assert_array_equal(Y.toarray(), before)
    np.testing.assert_array_equal(flt, [5, 2, 5])


def test_save_load_and_pickle_round_trip(case, tmp_path):
    model, X, _, _ = case
    users = np.arange(10)
    want = model.recommend(users, X[users], N=5)
    path = tmp_path / "model"
    model.save(str(path))
    assert (tmp_path / "model.npz").exists()
    for loaded in (
        type(model).load(str(path)),
        RecommenderBase.load(tmp_path / "model.npz"),
        pickle.loads(pickle.dumps(model)),
    ):
        assert type(loaded) is type(model)
        assert loaded.get_params() == model.get_params()
        got = loaded.recommend(users, X[users], N=5)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
    buf = io.BytesIO()
    model.save(buf)
    buf.seek(0)
    np.testing.assert_array_equal(
        type(model).load(buf).recommend(users, X[users])[0], model.recommend(users, X[users])[0]
    )


def test_threads_do_not_change_results(case):
    model, X, _, build = case
    users = np.arange(X.shape[0])
    one = build(X, num_threads=1).recommend(users, X, N=7)
    two = build(X, num_threads=2).recommend(users, X, N=7)
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])


def test_empty_batch(case):
    model, X, _, _ = case
    ids, sc = model.recommend(np.array([], dtype=np.int64), X[[]], N=5)
    assert ids.shape == (0, 5) and sc.shape == (0, 5)


def test_load_errors(tmp_path):
    X = random_user_items()
    pop = PopularityRecommender().fit(X)
    pop.save(tmp_path / "pop.npz")
    with pytest.raises(ModelFormatError, match="holds a PopularityRecommender"):
        MatrixFactorizationBase.load(tmp_path / "pop.npz")
    np.savez(tmp_path / "other.npz", a=np.ones(3))
    with pytest.raises(ModelFormatError, match="not a tacitrec model"):
        RecommenderBase.load(tmp_path / "other.npz")
    import json

    meta = {"class": "PopularityRecommender", "format_version": 99, "params": {}}
    np.savez(tmp_path / "new.npz", __tacitrec__=np.array(json.dumps(meta)))
    with pytest.raises(ModelFormatError, match="format version 99"):
        RecommenderBase.load(tmp_path / "new.npz")
    for bad in ("1", True, 0, None, 1.0):
        meta = {"class": "PopularityRecommender", "format_version": bad, "params": {}}
        np.savez(tmp_path / "bad.npz", __tacitrec__=np.array(json.dumps(meta)))
        with pytest.raises(ModelFormatError, match=f"malformed format version {bad!r}"):
            RecommenderBase.load(tmp_path / "bad.npz")
    # save_dir / load_dir take a directory name, not a file object
    with pytest.raises(TypeError, match="path must be a directory name .* got BytesIO"):
        pop.save_dir(io.BytesIO())
    with pytest.raises(TypeError, match="path must be a directory name .* got BytesIO"):
        RecommenderBase.load_dir(io.BytesIO())


def test_not_fitted_errors():
    with pytest.raises(NotFittedError, match="fit"):
        PopularityRecommender().recommend(0, sp.csr_matrix((1, 3)))
    with pytest.raises(NotFittedError, match="user_factors"):
        MatrixFactorizationBase().recommend(0, sp.csr_matrix((1, 3)))
    # unfitted models still save and load their parameters
    buf = io.BytesIO()
    PopularityRecommender(weighted=True).save(buf)
    buf.seek(0)
    assert PopularityRecommender.load(buf).weighted is True


def _mapped(a) -> bool:
    """Whether ``a`` views a memory-mapped file."""
    import mmap

    while a is not None:
        if isinstance(a, mmap.mmap):
            return True
        a = getattr(a, "base", None)
    return False


def test_model_directory_is_memory_mapped_and_stays_so(case, tmp_path):
    model, X, _, _ = case
    users = np.arange(12)
    want = model.recommend(users, X[users], N=5)
    model.set_ids(item_ids=np.array([f"item {j}" for j in range(X.shape[1])]))
    path = tmp_path / "model-dir"
    model.save_dir(path)
    model.save_dir(path)  # replaces a model directory
    loaded = RecommenderBase.load_dir(path)
    assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
    state = [a for a in loaded._get_state().values() if a.size > 1]
    assert state and all(_mapped(a) and not a.flags.writeable for a in state)
    got = loaded.recommend(users, X[users], N=5)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    assert all(_mapped(a) for a in loaded._get_state().values() if a.size > 1)
    assert loaded.item_ids_.tolist() == model.item_ids_.tolist() and loaded.user_ids_ is None
    in_memory = type(model).load(path)  # a directory given to load: read, not mapped
    assert not any(_mapped(a) for a in in_memory._get_state().values())
    np.testing.assert_array_equal(in_memory.recommend(users, X[users], N=5)[0], want[0])


def test_pickle_protocol_5_hands_arrays_out_of_band(case):
    model, X, _, _ = case
    users = np.arange(12)
    want = model.recommend(users, X[users], N=5)
    buffers = []
    data = pickle.dumps(model, protocol=5, buffer_callback=buffers.append)
    state_bytes = sum(a.nbytes for a in model._get_state().values())
    assert sum(b.raw().nbytes for b in buffers) >= state_bytes - 64
    assert len(data) < 4096
    # buffers handed back at odd addresses (Dask's frames do this) are accepted
    odd = [memoryview(bytearray(b"\0" + bytes(b.raw())))[1:] for b in buffers]
    got = pickle.loads(data, buffers=odd).recommend(users, X[users], N=5)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


def test_model_directory_errors(tmp_path):
    import json

    X = random_user_items()
    model = AlternatingLeastSquares(factors=3, iterations=1).fit(X, show_progress=False)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a tacitrec model directory"):
        model.save_dir(tmp_path / "other")
    with pytest.raises(ModelFormatError, match="no manifest.json"):
        RecommenderBase.load_dir(tmp_path / "other")
    path = tmp_path / "m"
    model.save_dir(path)
    manifest = json.loads((path / "manifest.json").read_text())
    (path / "manifest.json").write_text("{not json")
    with pytest.raises(ModelFormatError, match="not a valid model manifest"):
        RecommenderBase.load_dir(path)
    manifest["arrays"]["user_factors"]["shape"] = [1, 1]
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelFormatError, match="user_factors"):
        RecommenderBase.load_dir(path)
    model.save_dir(path)
    np.save(path / "item_factors.npy", np.full(model.item_factors.shape, np.nan, np.float32))
    with pytest.raises(ModelFormatError, match="NaN"):
        RecommenderBase.load_dir(path)
    (path / "item_factors.npy").unlink()
    with pytest.raises(ModelFormatError, match="item_factors"):
        RecommenderBase.load_dir(path)


def test_loaded_read_only_model_trains_on_copies(tmp_path):
    X = random_user_items()
    for model in (
        AlternatingLeastSquares(factors=3, iterations=1, random_state=0),
        BayesianPersonalizedRanking(factors=3, iterations=2, random_state=0),
        LogisticMatrixFactorization(factors=3, iterations=2, random_state=0),
    ):
        model.fit(X, show_progress=False)
        model.save_dir(tmp_path / type(model).__name__)
        loaded = RecommenderBase.load_dir(tmp_path / type(model).__name__)
        before = np.array(loaded.item_factors)
        loaded.fit(X, show_progress=False)  # continues from the mapped factors
        assert loaded.item_factors.flags.writeable and not _mapped(loaded.item_factors)
        assert not np.array_equal(loaded.item_factors, before)
        np.testing.assert_array_equal(
            np.load(tmp_path / type(model).__name__ / "item_factors.npy"), before
        )
    lfm = LightFM(no_components=3, random_state=0).fit(X, epochs=1)
    lfm.save_dir(tmp_path / "lfm")
    loaded = RecommenderBase.load_dir(tmp_path / "lfm")
    loaded.fit_partial(X, epochs=1)
    assert not _mapped(loaded.item_embeddings)


def test_set_ids_checks_and_persists(tmp_path):
    X = random_user_items(n_users=5, n_items=4)
    model = PopularityRecommender().fit(X)
    with pytest.raises(ValueError, match="repeated"):
        model.set_ids(item_ids=["a", "b", "a", "c"])
    with pytest.raises(ValueError, match="4 items"):
        model.set_ids(item_ids=["a", "b"])
    with pytest.raises(ValueError, match="integers or strings"):
        model.set_ids(user_ids=[1, "b", 3, 4, 5])
    model.set_ids(user_ids=np.arange(10, 15), item_ids=["a", "b", "c", "d"])
    model.save(tmp_path / "p.npz")
    loaded = RecommenderBase.load(tmp_path / "p.npz")
    assert loaded.user_ids_.tolist() == [10, 11, 12, 13, 14]
    assert loaded.item_ids_.tolist() == ["a", "b", "c", "d"]


def test_corrupt_files_raise_model_format_error(case, tmp_path):
    """Truncated files, flipped bits and overwritten bytes either load a model that works or
    raise ModelFormatError (NotFittedError on use when the arrays are gone), never an internal
    exception; so do the crafted cases below."""
    import json
    import random

    model, X, _, _ = case
    buf = io.BytesIO()
    model.save(buf)
    raw = buf.getvalue()
    rng = random.Random(7)
    users = np.arange(3)
    for trial in range(60):
        damaged = bytearray(raw)
        if trial % 3 == 0:
            damaged = damaged[: rng.randrange(len(raw))]
        elif trial % 3 == 1:
            for _ in range(rng.randint(1, 4)):
                damaged[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
        else:
            at = rng.randrange(len(raw))
            damaged[at : at + 8] = bytes(rng.randrange(256) for _ in range(8))
        try:
            loaded = RecommenderBase.load(io.BytesIO(bytes(damaged)))
        except ModelFormatError:
            continue
        try:
            loaded.recommend(users, X[users], N=3)
        except NotFittedError:
            pass
    state = model._get_state()
    meta = {"class": type(model).__name__, "format_version": 1, "params": model.get_params()}

    def save(path, meta=meta, **arrays):
        np.savez(path, __tacitrec__=np.array(json.dumps(meta, default=str)), **arrays)
        return path

    np.save(tmp_path / "one.npy", np.ones(3))
    name, first = next(iter(state.items()))
    crafted = {
        "single array": tmp_path / "one.npy",
        "missing member": save(tmp_path / "missing.npz", **dict(list(state.items())[1:])),
        "unknown parameter": save(tmp_path / "param.npz", dict(meta, params={"bogus": 1}), **state),
        "malformed metadata": tmp_path / "meta.npz",
        "wrong dimensions": save(
            tmp_path / "dims.npz", **dict(state, **{name: np.asarray(first)[None, None]})
        ),
        "negative count": save(
            tmp_path / "negative.npz",
            **{k: (np.array(-3) if v.ndim == 0 else v) for k, v in state.items()},
        ),
    }
    np.savez(crafted["malformed metadata"], __tacitrec__=np.array("{not json"), **state)
    for what, path in crafted.items():
        if what == "negative count" and all(v.ndim for v in state.values()):
            continue  # the model keeps no counts
        with pytest.raises(ModelFormatError):
            RecommenderBase.load(path)

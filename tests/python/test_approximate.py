"""model.approximate(): the HNSW index (faiss, the optional extra ``ann``) against the exact path.

With a search as wide as the catalogue the graph search is exact, so the results must equal the
model's own recommend / similar_items; with a narrow search they are approximate, but every row
must still hold N' results, none of them liked or filtered, scored exactly and ordered."""

import io
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

from tacitrec import (
    AlternatingLeastSquares,
    BayesianPersonalizedRanking,
    LightFM,
    LogisticMatrixFactorization,
    MatrixFactorizationBase,
)
from tacitrec.exceptions import ModelFormatError, NotFittedError

faiss = pytest.importorskip("faiss", reason="the optional extra ann (faiss-cpu) is not installed")

from tacitrec.approximate import ApproximateRecommender

N_USERS, N_ITEMS, F = 120, 1500, 12
# A search as wide as the catalogue over a graph built by one thread (a parallel build is not
# deterministic and may leave an item unreachable, which a test of equality cannot allow).
EXACT = dict(M=32, ef_construction=400, ef_search=N_ITEMS, num_threads=1)


def factor_model(seed=0, n_users=N_USERS, n_items=N_ITEMS, f=F):
    """Factors with log-normal item norms (as trained ones have)."""
    rng = np.random.default_rng(seed)
    m = MatrixFactorizationBase(num_threads=2)
    m.user_factors = rng.standard_normal((n_users, f)).astype(np.float32)
    V = rng.standard_normal((n_items, f)) * rng.lognormal(0.0, 1.0, (n_items, 1))
    m.item_factors = V.astype(np.float32)
    return m


def liked_matrix(seed=1, n_users=N_USERS, n_items=N_ITEMS, density=0.03):
    X = sp.random(n_users, n_items, density=density, format="csr", random_state=seed)
    X.data[:] = 1.0
    return X.astype(np.float32)


@pytest.fixture(scope="module")
def model():
    return factor_model()


@pytest.fixture(scope="module")
def exact_index(model):
    return model.approximate(**EXACT)


def assert_same(got, want):
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1], rtol=2e-6, atol=1e-6)


def test_equals_exact_when_the_search_covers_the_catalogue(model, exact_index):
    users = np.arange(N_USERS)
    X = liked_matrix()
    filt = np.random.default_rng(3).choice(N_ITEMS, 200, replace=False)
    for kw in (
        dict(filter_already_liked_items=False),
        dict(user_items=X),
        dict(user_items=X, filter_items=filt),
        dict(filter_already_liked_items=False, filter_items=filt),
    ):
        for N in (1, 10, 57):
            assert_same(exact_index.recommend(users, N=N, **kw), model.recommend(users, N=N, **kw))
    # one user: 1-D results, as the exact path's
    assert_same(exact_index.recommend(7, X[7], N=5), model.recommend(7, X[7], N=5))


def check_rows(model, got, N, liked=None, filt=()):
    check_rows_of(model, np.arange(len(model.user_factors)), got, N, liked, filt)


def check_rows_of(model, users, got, N, liked=None, filt=()):
    """Every row: N' distinct ids (no -1 unless the user has fewer candidates), none liked or
    filtered, with their exact scores, best first (ties to the lower id)."""
    ids, scores = got
    U, V = model.user_factors[users], model.item_factors
    n_candidates = N_ITEMS - len(set(filt))
    assert ids.shape == (len(U), min(N, n_candidates))
    for u in range(len(U)):
        excluded = set(filt) | (set() if liked is None else set(liked[u].indices))
        have = n_candidates - len(excluded - set(filt))
        want = min(ids.shape[1], have)
        row = ids[u]
        assert (row[:want] >= 0).all() and (row[want:] == -1).all(), u
        assert len(set(row[:want])) == want
        assert not excluded & set(row[:want].tolist())
        exact_scores = V[row[:want]] @ U[u]
        np.testing.assert_allclose(scores[u, :want], exact_scores, rtol=2e-6, atol=1e-5)
        assert np.isneginf(scores[u, want:]).all()
        assert (np.diff(scores[u, :want]) <= 0).all()


@pytest.mark.parametrize("dtype", ["f32", "f16"])
def test_a_narrow_search_still_returns_n_results(model, dtype):
    narrow = model.approximate(M=4, ef_construction=8, ef_search=1, dtype=dtype)
    users = np.arange(N_USERS)
    rng = np.random.default_rng(5)
    X = liked_matrix(density=0.3)  # ~450 liked items per user
    filt = rng.choice(N_ITEMS, 700, replace=False)
    for kw, liked, f in (
        (dict(filter_already_liked_items=False), None, ()),
        (dict(user_items=X), X, ()),
        (dict(user_items=X, filter_items=filt), X, filt),
    ):
        for N in (10, 100):
            check_rows(model, narrow.recommend(users, N=N, **kw), N, liked, f)


def test_the_best_items_filtered_out_are_replaced(model, exact_index):
    # filter each user's exact top 50: the index must search past them to return N
    users = np.arange(N_USERS)
    top = model.recommend(users, N=50, filter_already_liked_items=False)[0]
    liked = sp.csr_matrix(
        (np.ones(top.size, np.float32), top.ravel(), np.arange(0, top.size + 1, 50)),
        shape=(N_USERS, N_ITEMS),
    )
    for index in (exact_index, model.approximate(ef_search=8)):
        got = index.recommend(users, liked, N=10)
        check_rows(model, got, 10, liked)
    assert_same(exact_index.recommend(users, liked, N=10), model.recommend(users, liked, N=10))
    # filter_items holding the users' best 40 (the first search asks for N + N candidates only,
    # so it must widen several times)
    users = np.arange(8)
    filt = np.unique(top[users, :40])
    for index in (exact_index, model.approximate(ef_search=8)):
        got = index.recommend(users, N=10, filter_already_liked_items=False, filter_items=filt)
        check_rows_of(model, users, got, 10, None, filt)
    kw = dict(N=10, filter_already_liked_items=False, filter_items=filt)
    assert_same(exact_index.recommend(users, **kw), model.recommend(users, **kw))


def test_users_with_few_candidates_are_padded_as_the_exact_path_pads(model, exact_index):
    X = liked_matrix(density=0.3).tolil()
    X[0, :] = 1.0  # likes everything
    X[1, :] = 1.0
    X[1, [3, 9]] = 0.0  # two candidates left
    X = X.tocsr()
    X.eliminate_zeros()
    users = np.arange(5)
    for index in (exact_index, model.approximate(ef_search=4)):
        got = index.recommend(users, X[users], N=10)
        assert_same(got, model.recommend(users, X[users], N=10))
    # filter_items leaving fewer items than N: N' shrinks, as in the exact path
    filt = np.arange(N_ITEMS - 3)
    got = exact_index.recommend(users, X[users], N=10, filter_items=filt)
    assert got[0].shape == (5, 3)
    assert_same(got, model.recommend(users, X[users], N=10, filter_items=filt))


def test_items_subset_is_exact(model):
    narrow = model.approximate(ef_search=2)
    users = np.arange(N_USERS)
    subset = np.random.default_rng(4).choice(N_ITEMS, 300, replace=False)
    X = liked_matrix()
    kw = dict(items=subset, filter_items=subset[:20])
    assert_same(narrow.recommend(users, X, N=12, **kw), model.recommend(users, X, N=12, **kw))


def test_similar_items_equal_exact(model, exact_index):
    ids = np.arange(0, N_ITEMS, 7)
    filt = np.arange(0, N_ITEMS, 3)
    for kw in ({}, dict(filter_items=filt), dict(items=np.arange(400))):
        assert_same(
            exact_index.similar_items(ids, N=15, **kw), model.similar_items(ids, N=15, **kw)
        )
    assert_same(exact_index.similar_items(11, N=4), model.similar_items(11, N=4))
    # narrow: still N' per row, none filtered
    narrow = model.approximate(ef_search=1, M=4, similar_items=True)
    got, scores = narrow.similar_items(ids, N=15, filter_items=filt)
    assert got.shape == (len(ids), 15) and (got >= 0).all()
    assert not set(got.ravel().tolist()) & set(filt.tolist())
    normed = model.item_factors / np.linalg.norm(model.item_factors, axis=1, keepdims=True)
    np.testing.assert_allclose(
        scores, np.einsum("rkf,rf->rk", normed[got], normed[ids]), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda: AlternatingLeastSquares(factors=8, iterations=3, random_state=0),
        lambda: BayesianPersonalizedRanking(factors=8, iterations=3, random_state=0),
        lambda: LogisticMatrixFactorization(factors=8, iterations=3, random_state=0),
    ],
)
def test_trained_models(make):
    X = liked_matrix(n_users=80, n_items=300, density=0.08, seed=2)
    model = make().fit(X, show_progress=False)
    index = model.approximate(M=32, ef_construction=300, ef_search=300, num_threads=1)
    users = np.arange(80)
    assert_same(index.recommend(users, X, N=10), model.recommend(users, X, N=10))
    # bias columns (BPR, LMF) are scored by recommend but not compared by similar_items
    assert_same(index.similar_items(np.arange(30), N=6), model.similar_items(np.arange(30), N=6))
    if isinstance(model, AlternatingLeastSquares):
        kw = dict(recalculate_user=True)
        assert_same(index.recommend(users, X, N=10, **kw), model.recommend(users, X, N=10, **kw))


def test_lightfm_through_its_representations():
    X = liked_matrix(n_users=60, n_items=200, density=0.1, seed=6)
    lfm = LightFM(no_components=6, loss="warp", random_state=0).fit(X, epochs=3)
    index = lfm.approximate(M=32, ef_construction=200, ef_search=200, num_threads=1)
    users = np.arange(60)
    assert_same(index.recommend(users, X, N=8), lfm.recommend(users, X, N=8))


def test_save_load_and_pickle(model, tmp_path):
    index = model.approximate(M=8, ef_search=16, similar_items=True)
    users = np.arange(N_USERS)
    X = liked_matrix()
    want = index.recommend(users, X, N=10)
    want_similar = index.similar_items(np.arange(50), N=5)
    path = tmp_path / "served"
    index.save(path)
    index.save(path)  # replaces its own earlier save
    for mmap in (True, False):
        loaded = ApproximateRecommender.load(path, mmap=mmap)
        assert loaded.get_params() == index.get_params()
        assert_same(loaded.recommend(users, X, N=10), want)
        assert_same(loaded.similar_items(np.arange(50), N=5), want_similar)
    copy = pickle.loads(pickle.dumps(index))
    assert_same(copy.recommend(users, X, N=10), want)
    assert_same(copy.similar_items(np.arange(50), N=5), want_similar)
    # a directory of something else is refused, not overwritten
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError, match="not a saved ApproximateRecommender"):
        index.save(other)
    with pytest.raises(ModelFormatError, match="not a saved ApproximateRecommender"):
        ApproximateRecommender.load(other)
    # a version that is not an integer is malformed, not a newer format
    import json

    manifest = json.loads((path / "approximate.json").read_text())
    (path / "approximate.json").write_text(json.dumps(dict(manifest, format_version="1")))
    with pytest.raises(ModelFormatError, match="malformed format version '1'"):
        ApproximateRecommender.load(path)
    (path / "approximate.json").write_text(json.dumps(manifest))
    # a file object is not a directory name
    for call in (index.save, ApproximateRecommender.load):
        with pytest.raises(TypeError, match="path must be a directory name .* got BytesIO"):
            call(io.BytesIO())
    # the saved model's factors must be the ones the index was built from
    factor_model(seed=9).save_dir(path / "model")
    with pytest.raises(ModelFormatError, match="does not have the item factors"):
        ApproximateRecommender.load(path)


def test_retrained_model_needs_a_new_index():
    m = factor_model(seed=2, n_items=200)
    index = m.approximate(ef_search=200)
    index.recommend(0, N=3, filter_already_liked_items=False)
    m.item_factors = m.item_factors * 2.0
    with pytest.raises(RuntimeError, match="approximate\\(\\) again"):
        index.recommend(0, N=3, filter_already_liked_items=False)
    X = liked_matrix(n_users=50, n_items=100, density=0.1)
    als = AlternatingLeastSquares(factors=4, iterations=2, random_state=0).fit(
        X, show_progress=False
    )
    index = als.approximate()
    als.fit(X, show_progress=False)  # updates the factors in place
    with pytest.raises(RuntimeError, match="changed after"):
        index.similar_items(0)


def test_bad_input(model, exact_index):
    for params, kind, match in (
        (dict(M=1), ValueError, "M must be"),
        (dict(ef_search=0), ValueError, "ef_search must be"),
        (dict(ef_construction="high"), TypeError, "ef_construction must be an integer"),
        (dict(dtype="f64"), ValueError, "dtype must be one of"),
        (dict(num_threads=-1), ValueError, "num_threads"),
        (dict(similar_items="yes"), TypeError, "similar_items"),
        (dict(ef=10), ValueError, "ef: not an index parameter"),
    ):
        with pytest.raises(kind, match=match):
            model.approximate(**params)
    with pytest.raises(ValueError, match="ef_search must be"):
        exact_index.recommend(0, N=3, filter_already_liked_items=False, ef_search=-1)
    with pytest.raises(TypeError, match="factor models"):
        ApproximateRecommender(object())
    with pytest.raises(NotFittedError):
        MatrixFactorizationBase().approximate()
    # the request itself is validated as the exact path validates it
    for kw in (
        dict(userid=N_USERS, N=3, filter_already_liked_items=False),
        dict(userid=0, N=-1, filter_already_liked_items=False),
        dict(userid=0, N=3),  # no user_items with filter_already_liked_items
        dict(userid=0, N=3, filter_already_liked_items=False, filter_items=[N_ITEMS]),
    ):
        with pytest.raises(Exception) as exact_error:
            model.recommend(**kw)
        with pytest.raises(type(exact_error.value), match=str(exact_error.value)[:30]):
            exact_index.recommend(**kw)
    with pytest.raises(IndexError):
        exact_index.similar_items(N_ITEMS)


def test_scores_past_float32_and_factors_past_float16_are_errors():
    """Factors whose scores overflow float32 raise as the exact path raises (the candidates'
    rescoring gave inf scores in an arbitrary order); factors float16 cannot hold raise when the
    f16 index is built (it stored inf, and recall fell to a fifth)."""
    big = factor_model(n_users=4, n_items=50, f=4)
    big.user_factors = big.user_factors * 1e20
    big.item_factors = big.item_factors * 1e19
    one = dict(N=3, filter_already_liked_items=False)
    for m in (big, big.approximate(**EXACT)):
        for users in (0, np.arange(4)):
            with pytest.raises(ValueError, match="scores: a score overflowed float32"):
                m.recommend(users, **one)
    wide = factor_model(n_users=4, n_items=50, f=4)
    wide.item_factors = wide.item_factors * 1e5
    with pytest.raises(ValueError, match="dtype='f16' cannot store these factors"):
        wide.approximate(dtype="f16").recommend(0, **one)
    # within float16's range (largest magnitude 60,000) the same factors serve
    wide.item_factors = wide.item_factors / np.abs(wide.item_factors).max() * 6e4
    ids, _ = wide.approximate(dtype="f16", **EXACT).recommend(0, **one)
    S = wide.user_factors[0].astype(np.float64) @ wide.item_factors.T.astype(np.float64)
    assert list(ids) == list(np.argsort(-S)[:3])


def test_import_tacitrec_does_not_import_faiss():
    code = "import sys, tacitrec; sys.exit('faiss' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], env=dict(os.environ)).returncode == 0


def test_missing_extra_names_it(model, monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)
    with pytest.raises(ImportError, match=r"tacitrec\[ann\]"):
        model.approximate()


def test_exact_fallback_and_small_chunks_give_the_exact_results(model, monkeypatch):
    import tacitrec.approximate as approximate

    users = np.arange(N_USERS)
    X = liked_matrix(density=0.1)
    filt = np.arange(0, N_ITEMS, 5)
    want = model.recommend(users, X, N=10, filter_items=filt)
    # every row wider than one candidate is scored exactly
    assert_same(model.approximate(exact_above=1).recommend(users, X, N=10, filter_items=filt), want)
    # searches split into many small batches of rows
    monkeypatch.setattr(approximate, "_CHUNK", 64)
    index = model.approximate(**EXACT)
    assert_same(index.recommend(users, X, N=10, filter_items=filt), want)


def test_frames_in_original_ids_equal_the_models(model, exact_index):
    pytest.importorskip("pyarrow")
    pd = pytest.importorskip("pandas")
    # a copy with original ids (the fixture's model is shared); a search over the whole
    # catalogue, so the approximate frames must equal the exact model's frames
    named = MatrixFactorizationBase(num_threads=2)
    named.user_factors, named.item_factors = model.user_factors, model.item_factors
    named.set_ids([f"u{u}" for u in range(N_USERS)], np.arange(N_ITEMS) * 7 + 3)
    approx = named.approximate(**EXACT)
    X = liked_matrix()
    users = [5, 17, 99]
    history = pd.DataFrame(
        {
            "user_id": [f"u{u}" for u in users for _ in X[u].indices],
            "item_id": [int(i) * 7 + 3 for u in users for i in X[u].indices],
        }
    )
    kw = dict(N=6, user_items=history, filter_items=[3, 10], frame="pandas")
    got = approx.recommend_frame([f"u{u}" for u in users], **kw)
    want = named.recommend_frame([f"u{u}" for u in users], **kw)
    assert got["user_id"].tolist() == want["user_id"].tolist()
    assert got["item_id"].tolist() == want["item_id"].tolist()
    np.testing.assert_allclose(got["score"], want["score"], rtol=2e-6, atol=1e-6)
    # and to the index-based call, by hand: the ids come back mapped
    ids, _ = approx.recommend(users, X[users], N=6, filter_items=[0, 1])
    assert got["item_id"].to_numpy().reshape(3, 6).tolist() == (ids * 7 + 3).tolist()
    sim = approx.similar_items_frame([3, 10], N=4, frame="pandas")
    ref = named.similar_items_frame([3, 10], N=4, frame="pandas")
    assert sim["similar_item_id"].tolist() == ref["similar_item_id"].tolist()

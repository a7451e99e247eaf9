"""Data frames in and out (pandas, polars, pyarrow): Dataset.from_frame against the LightFM-style
builders, fit from a Dataset, recommend_frame / similar_items_frame / ranking_metrics_frame
against the array API mapped to the original ids."""

import pickle

import numpy as np
import pytest
import scipy.sparse as sp

pa = pytest.importorskip("pyarrow")
pd = pytest.importorskip("pandas")

from tacitrec import (
    AlternatingLeastSquares,
    BM25Recommender,
    CosineRecommender,
    Dataset,
    EASERecommender,
    LightFM,
    PopularityRecommender,
    SpectralFilterRecommender,
)
from tacitrec.datasets import synthetic
from tacitrec.evaluation import (
    ranking_metrics_at_k,
    ranking_metrics_frame,
    train_test_split,
)


def _rows(M, users=None):
    c = M.tocoo()
    return pd.DataFrame(
        {
            "user_id": [f"u{u}" for u in c.row],
            "item_id": c.col * 10 + 7,
            "plays": c.data.astype(np.float64),
        }
    )


@pytest.fixture(scope="module")
def data():
    X = synthetic(n_users=200, n_items=80, random_state=0).user_items
    train, test = train_test_split(X, 0.8, random_state=0)
    return train, test


def _kinds(df):
    out = {"pandas": df, "pyarrow": pa.Table.from_pandas(df, preserve_index=False)}
    try:
        import polars as pl

        out["polars"] = pl.from_pandas(df)
    except ImportError:
        pass
    return out


def test_from_frame_equals_the_lightfm_style_builders():
    df = pd.DataFrame(
        {
            "user_id": ["b", "a", "b", "c", "a", "b"],
            "item_id": [3, 1, 1, 9, 1, 4],
            "w": [1.0, 2, 3, 4, 5, 6],
        }
    )
    feats = pd.DataFrame({"item_id": [1, 3, 12, 3], "feature": ["red", "blue", "red", "red"]})
    ref = Dataset()
    ref.fit(df.user_id, df.item_id.tolist() + [12], item_features=["red", "blue"])
    X_ref, W_ref = ref.build_interactions(zip(df.user_id, df.item_id, df.w))
    F_ref = ref.build_item_features([(1, ["red"]), (3, ["blue", "red"]), (12, ["red"])])
    for kind, frame in _kinds(df).items():
        got = Dataset.from_frame(frame, weight_col="w", item_features=_kinds(feats)[kind])
        assert got.mapping() == ref.mapping(), kind
        assert (got.interactions != X_ref.tocsr()).nnz == 0
        assert np.allclose(got.weights.toarray(), W_ref.toarray())
        assert np.allclose(got.item_feature_matrix.toarray(), F_ref.toarray())
        assert got.user_feature_matrix is None and got.frame_kind == kind
        assert got.user_id_array.tolist() == ["b", "a", "c"]
        assert got.item_id_array.dtype.kind == "i" and got.item_id_array.tolist() == [
            3,
            1,
            9,
            4,
            12,
        ]


def test_from_frame_errors():
    df = pd.DataFrame({"user_id": ["a", None], "item_id": [1, 2], "w": ["x", "y"]})
    with pytest.raises(ValueError, match="no column 'item'"):
        Dataset.from_frame(df.fillna("b"), item_col="item")
    with pytest.raises(ValueError, match="nulls"):
        Dataset.from_frame(df)
    with pytest.raises(ValueError, match="numbers"):
        Dataset.from_frame(df.fillna("b"), weight_col="w")
    with pytest.raises(TypeError, match="DataFrame"):
        Dataset.from_frame([("a", 1)])


def test_from_frame_of_a_categorical_frame_equals_the_plain_frame():
    # a filtered categorical frame keeps its unused categories, and orders them its own way:
    # the Dataset has the ids its rows use, in order of first appearance (was: every
    # category, in the categories' order)
    df = pd.DataFrame(
        {
            "user_id": ["b", "a", "b", "c", "a", "d"],
            "item_id": ["x", "y", "x", "z", "w", "v"],
            "w": [1.0, 2, 3, 4, 5, 6],
        }
    )
    feats = pd.DataFrame({"item_id": ["w", "q", "x"], "feature": ["red", "blue", "red"]})
    keep = df.user_id.isin(["a", "b"])
    plain = Dataset.from_frame(df[keep], weight_col="w", item_features=feats)
    cat = Dataset.from_frame(
        df.astype({"user_id": "category", "item_id": "category"})[keep],
        weight_col="w",
        item_features=feats.astype({"item_id": "category"}),
    )
    assert cat.user_id_array.tolist() == ["b", "a"]
    assert cat.item_id_array.tolist() == ["x", "y", "w", "q"]  # q: only in the features
    assert cat.mapping() == plain.mapping()
    for name in ("interactions", "weights", "item_feature_matrix"):
        assert (getattr(cat, name) != getattr(plain, name)).nnz == 0, name


def test_categorical_frames_serve_and_evaluate_as_plain_frames(data):
    # a categorical user_items / test frame (was pyarrow's ArrowTypeError), or users given as a
    # categorical column, give what the same frames of plain ids give
    train, test = data
    ds = Dataset.from_frame(_rows(train), weight_col="plays")
    model = AlternatingLeastSquares(factors=8, random_state=0).fit(ds, show_progress=False)
    rows = _rows(train)
    cat = rows.astype({"user_id": "category", "item_id": "category"})
    users = ["u3", "u0", "u17"]
    want = model.recommend_frame(users, N=5, user_items=rows[rows.user_id.isin(users)])
    got = model.recommend_frame(users, N=5, user_items=cat[cat.user_id.isin(users)])
    pd.testing.assert_frame_equal(got, want)
    asked = cat[cat.user_id.isin(users)][["user_id"]].drop_duplicates()
    pd.testing.assert_frame_equal(
        model.recommend_frame(asked, N=5),
        model.recommend_frame(asked.astype({"user_id": str}), N=5),
    )
    test_rows = _rows(test)
    test_cat = test_rows.astype({"user_id": "category", "item_id": "category"})
    want_users, want = ranking_metrics_frame(model, test_rows, K=5, train=rows, unknown="skip")
    got_users, got = ranking_metrics_frame(model, test_cat, K=5, train=cat, unknown="skip")
    assert got == want
    pd.testing.assert_frame_equal(got_users, want_users)


def test_a_null_weight_of_user_items_is_refused(data):
    # was read as weight 1.0; Dataset.from_frame and model.recommend refuse it too
    train, _ = data
    ds = Dataset.from_frame(_rows(train), weight_col="plays")
    model = AlternatingLeastSquares(factors=8, random_state=0).fit(ds, show_progress=False)
    rows = _rows(train)
    mine = rows[rows.user_id == "u1"].copy()
    assert len(model.recommend_frame(["u1"], N=3, user_items=mine)) == 3
    mine.iloc[0, 2] = np.nan
    with pytest.raises(ValueError, match="column 'plays' of user_items holds 1 nulls"):
        model.recommend_frame(["u1"], N=3, user_items=mine)


@pytest.mark.parametrize("threads", [0, 3])
def test_frame_functions_score_with_the_models_threads(data, monkeypatch, threads):
    # num_threads=0 (all cores, the default) reached the kernels as 1 thread
    train, test = data
    ds = Dataset.from_frame(_rows(train), weight_col="plays")
    model = AlternatingLeastSquares(factors=8, random_state=0, num_threads=threads)
    model.fit(ds, show_progress=False)
    seen = []
    recommend = AlternatingLeastSquares.recommend

    def spy(self, *args, **kwargs):
        seen.append(self.num_threads)
        return recommend(self, *args, **kwargs)

    monkeypatch.setattr(AlternatingLeastSquares, "recommend", spy)
    model.recommend_frame(["u1", "u2"], N=3)
    ranking_metrics_frame(model, _rows(test), K=5, unknown="skip")
    assert len(seen) >= 2 and set(seen) == {threads}


def _assert_frame_is_recommend(got, model, ds, users, N):
    """``got`` (a recommend_frame of ``users``, original ids of the Dataset ``ds``) holds the
    items and scores of ``recommend`` on their indices."""
    pos = [int(np.flatnonzero(ds.user_id_array == u)[0]) for u in users]
    ids, scores = model.recommend(pos, ds.weights[pos], N=N)
    for row, u in enumerate(users):
        mine = got[got.user_id == u].sort_values("rank")
        ok = ids[row] >= 0
        assert mine.item_id.tolist() == ds.item_id_array[ids[row][ok]].tolist()
        np.testing.assert_allclose(mine.score, scores[row][ok], atol=1e-6)


@pytest.mark.parametrize(
    "make",
    [
        lambda: AlternatingLeastSquares(factors=8, random_state=0),
        lambda: BM25Recommender(K=30),
        PopularityRecommender,
        lambda: LightFM(no_components=8, random_state=0),
    ],
    ids=["als", "bm25", "popularity", "lightfm"],
)
def test_recommend_frame_equals_recommend_in_original_ids(data, make):
    train, _ = data
    ds = Dataset.from_frame(_rows(train), weight_col="plays")
    model = make()
    model.fit(ds) if not isinstance(model, LightFM) else model.fit(ds, epochs=3)
    users = ["u3", "u0", "u17"]
    got = model.recommend_frame(users, N=5)
    assert list(got.columns) == ["user_id", "item_id", "rank", "score"]
    _assert_frame_is_recommend(got, model, ds, users, N=5)
    every = model.recommend_frame(N=2)
    assert set(every.user_id) <= set(ds.user_id_array) and len(every) <= 2 * len(ds.user_id_array)


def test_recommend_frame_options_and_errors(data):
    train, _ = data
    ds = Dataset.from_frame(_rows(train), weight_col="plays")
    model = AlternatingLeastSquares(factors=8, random_state=0).fit(ds, show_progress=False)
    banned = ds.item_id_array[:5]
    got = model.recommend_frame(["u1"], N=10, filter_items=banned)
    assert not set(got.item_id) & set(banned.tolist())
    # histories from a frame instead of the Dataset: an empty history recommends liked items too
    none_liked = model.recommend_frame(["u1"], N=10, user_items=_rows(train).iloc[:0])
    unfiltered = model.recommend_frame(["u1"], N=10, filter_already_liked_items=False)
    assert none_liked.item_id.tolist() == unfiltered.item_id.tolist()
    with pytest.raises(ValueError, match="not users of the model"):
        model.recommend_frame(["u1", "nobody"], N=3)
    assert set(model.recommend_frame(["u1", "nobody"], N=3, unknown="skip").user_id) == {"u1"}
    as_arrow = model.recommend_frame(pa.table({"user_id": ["u1"]}), N=3)
    assert isinstance(as_arrow, pa.Table)
    clone = pickle.loads(pickle.dumps(model))  # the training data does not travel with it
    assert not hasattr(clone, "_dataset") and clone.user_ids_.tolist() == ds.user_id_array.tolist()
    with pytest.raises(ValueError, match="user_items is required"):
        clone.recommend_frame(["u1"], N=3)
    model.fit(sp.random(7, 9, density=0.5, format="csr", random_state=0), show_progress=False)
    assert model.user_ids_ is None and model.item_ids_ is None  # stale ids dropped


@pytest.mark.parametrize(
    "make",
    [
        lambda: AlternatingLeastSquares(factors=8, random_state=0),
        lambda: BM25Recommender(K=30),
        lambda: CosineRecommender(K=30),
        lambda: EASERecommender(regularization=50.0),
        SpectralFilterRecommender,
    ],
    ids=["als", "bm25", "cosine", "ease", "spectral"],
)
def test_recommend_frame_unknown_users_of_a_model_that_scores_from_rows(data, make):
    # models without user factors (kNN, EASE, spectral) know their users from their user ids;
    # an unknown user was scored from an empty row: N arbitrary items, score 0.0, no error
    train, _ = data
    ds = Dataset.from_frame(_rows(train), weight_col="plays")
    model = make().fit(ds, show_progress=False)
    with pytest.raises(
        ValueError, match=r"1 user ids are not users of the model \(e.g. \['zz'\]\)"
    ):
        model.recommend_frame(["u3", "zz"], N=5)
    with pytest.raises(ValueError, match=r"e.g. \[0\]"):  # an index, not one of the string ids
        model.recommend_frame([0], N=5)
    users = ["u3", "u0", "u17"]
    got = model.recommend_frame(["zz", *users[:2], "yy", users[2]], N=5, unknown="skip")
    assert set(got.user_id) == set(users)
    _assert_frame_is_recommend(got, model, ds, users, N=5)
    assert len(model.recommend_frame(["zz"], N=5, unknown="skip")) == 0
    # ids set on a model fitted from a matrix, histories from a frame: the same checks
    plain = make().fit(train, show_progress=False)
    plain.set_ids(np.array([f"u{i}" for i in range(train.shape[0])]), None)
    history = pd.DataFrame({"user_id": ["u3", "u3"], "item_id": [1, 2]})
    with pytest.raises(ValueError, match=r"e.g. \['zz'\]"):
        plain.recommend_frame(["zz"], N=3, user_items=history)
    assert set(
        plain.recommend_frame(["zz", "u3"], N=3, user_items=history, unknown="skip").user_id
    ) == {"u3"}
    # without user ids, users are non-negative integer indices
    bare = make().fit(train, show_progress=False)
    history = pd.DataFrame({"user_id": [3, 3], "item_id": [1, 2]})
    with pytest.raises(ValueError, match=r"e.g. \[-1\]"):
        bare.recommend_frame([3, -1], N=3, user_items=history)
    got = bare.recommend_frame([3, -1], N=3, user_items=history, unknown="skip")
    assert set(got.user_id) == {3}
    row = sp.csr_matrix((np.ones(2, np.float32), ([0, 0], [1, 2])), shape=(1, train.shape[1]))
    ids, scores = bare.recommend(3, row, N=3)
    assert got.sort_values("rank").item_id.tolist() == ids.tolist()
    np.testing.assert_allclose(got.sort_values("rank").score, scores, atol=1e-6)
    # string users against a frame of integer user ids: the message says so (was pyarrow's
    # "Failed to parse string")
    with pytest.raises(ValueError, match=r"users are string ids but the user_items frame's"):
        bare.recommend_frame(["a"], N=3, user_items=history)


def test_similar_items_frame(data):
    train, _ = data
    ds = Dataset.from_frame(_rows(train))
    model = BM25Recommender(K=10).fit(ds, show_progress=False)
    query = ds.item_id_array[[4, 0]]
    got = model.similar_items_frame(query, N=3)
    ids, scores = model.similar_items([4, 0], N=3)
    for row, item in enumerate(query):
        mine = got[got.item_id == item].sort_values("rank")
        assert mine.similar_item_id.tolist() == ds.item_id_array[ids[row][ids[row] >= 0]].tolist()


@pytest.mark.parametrize("make", [PopularityRecommender, lambda: LightFM(no_components=2)])
def test_similar_items_frame_of_a_model_without_similar_items(data, make):
    train, _ = data
    ds = Dataset.from_frame(_rows(train))
    model = make()
    model.fit(ds) if isinstance(model, LightFM) else model.fit(ds, show_progress=False)
    # was AttributeError: the model has no attribute 'similar_items'
    with pytest.raises(NotImplementedError, match="has no similar_items"):
        model.similar_items_frame(ds.item_id_array[:2], N=3)


def test_ranking_metrics_frame_equals_the_matrix_metrics(data):
    train, test = data
    ds = Dataset.from_frame(_rows(train), weight_col="plays")
    model = AlternatingLeastSquares(factors=8, random_state=0).fit(ds, show_progress=False)
    test_rows = _rows(test)
    per_user, means = ranking_metrics_frame(model, test_rows, K=5, unknown="skip")
    uid = {u: i for i, u in enumerate(ds.user_id_array)}
    iid = {v: j for j, v in enumerate(ds.item_id_array.tolist())}
    known = test_rows[test_rows.user_id.isin(uid) & test_rows.item_id.isin(iid)]
    T = sp.csr_matrix(
        (np.ones(len(known)), ([uid[u] for u in known.user_id], [iid[i] for i in known.item_id])),
        shape=ds.weights.shape,
    )
    want = ranking_metrics_at_k(model, ds.weights, T, K=5, show_progress=False)
    for key in want:
        assert means[key] == pytest.approx(want[key], abs=1e-12)
    assert len(per_user) == len(set(known.user_id))
    assert per_user.ndcg.mean() == pytest.approx(want["ndcg"], abs=1e-12)


def test_repeated_rows_train_lightfm_as_build_interactions_does():
    """A pair of several rows (a log of plays) stays several entries, as LightFM's Dataset
    keeps them: LightFM trains each; the other models sum them, as before."""
    from tacitrec import AlternatingLeastSquares, Dataset, LightFM

    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 30, 400), rng.integers(0, 20, 400)
    df = pd.DataFrame({"user": users, "item": items})
    ds = Dataset.from_frame(df, user_col="user", item_col="item")
    assert ds.interactions.nnz == 400
    built = Dataset().fit(ds.user_id_array, ds.item_id_array)
    interactions, _ = built.build_interactions(zip(users.tolist(), items.tolist()))
    a = LightFM(no_components=4, random_state=0).fit(ds, epochs=2)
    b = LightFM(no_components=4, random_state=0).fit(interactions, epochs=2)
    np.testing.assert_array_equal(a.item_embeddings, b.item_embeddings)
    summed = ds.weights.copy()
    summed.sum_duplicates()
    c = AlternatingLeastSquares(factors=4, iterations=2, random_state=0).fit(ds)
    d = AlternatingLeastSquares(factors=4, iterations=2, random_state=0).fit(summed)
    np.testing.assert_array_equal(c.item_factors, d.item_factors)


def test_uint64_ids_beyond_int64_are_kept_exactly(data):
    """NumPy reads a list of ints beyond 2^63 mixed with small ones as float64 (rounded): the
    Dataset's id arrays keep them as uint64, and serving returns the ids the frame had."""
    train, _ = data
    c = train.tocoo()
    base = np.uint64(2**63 + 11)
    df = pd.DataFrame({"user_id": c.row.astype(np.uint64) + base, "item_id": c.col})
    ds = Dataset.from_frame(df)
    assert ds.user_id_array.dtype == np.uint64
    assert ds.user_id_array.tolist() == (np.unique(c.row).astype(np.uint64) + base).tolist()
    model = BM25Recommender(K=10).fit(ds, show_progress=False)
    users = [int(base) + 5, int(base)]
    got = model.recommend_frame(users, N=3)
    assert got.user_id.dtype == np.uint64 and set(got.user_id.tolist()) == set(users)
    # the same as the frame with small int64 user ids
    plain = BM25Recommender(K=10).fit(
        Dataset.from_frame(df.assign(user_id=c.row.astype(np.int64))), show_progress=False
    )
    want = plain.recommend_frame([5, 0], N=3)
    np.testing.assert_array_equal(got.user_id.to_numpy() - base, want.user_id.to_numpy())
    np.testing.assert_array_equal(got.item_id.to_numpy(), want.item_id.to_numpy())
    np.testing.assert_array_equal(got.score.to_numpy(), want.score.to_numpy())
    # ids NumPy would round when mixed with floats stay objects
    mixed = Dataset().fit([10**17 + 1, 1.5], ["x"])
    assert mixed.user_id_array.dtype == object
    assert mixed.user_id_array.tolist() == [10**17 + 1, 1.5]

"""The checks every distributed engine passes: its results equal the local call's.

An engine's test module (``test_distributed_<engine>.py``) defines a session-scoped fixture
``engine`` returning an object with

* ``module``: the adapter (``tacitrec.distributed.<engine>``),
* ``frame(pdf, partitions)``: an engine frame of the pandas DataFrame ``pdf`` in that many
  partitions (blocks),
* ``collect(result)``: the pandas DataFrame of an adapter's result,

and imports the tests below with ``from distributed_cases import *``.
"""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from tacitrec import (
    AlternatingLeastSquares,
    BayesianPersonalizedRanking,
    BM25Recommender,
    LightFM,
    PopularityRecommender,
)
from tacitrec.evaluation import ranking_metrics_at_k, train_test_split

N_USERS, N_ITEMS, EMPTY_USER = 90, 40, 5

__all__ = [
    "test_recommend_equals_local",
    "test_original_ids",
    "test_filters",
    "test_more_partitions_than_users",
    "test_unknown_ids",
    "test_unknown_users_of_a_knn_model",
    "test_metrics_equal_local",
    "test_model_directory",
    "test_bad_arguments",
]


def _matrix(seed=0):
    rng = np.random.default_rng(seed)
    X = sp.random(
        N_USERS,
        N_ITEMS,
        density=0.12,
        format="lil",
        random_state=rng,
        data_rvs=lambda n: rng.integers(1, 4, n),
    ).astype(np.float32)
    X[EMPTY_USER, :] = 0
    X = X.tocsr()
    X.eliminate_zeros()
    return X


X = _matrix()
ITEM_FEATURES = sp.hstack(
    [sp.identity(N_ITEMS, format="csr"), sp.csr_matrix(np.eye(4)[np.arange(N_ITEMS) % 4])]
).tocsr()


def _build(name):
    if name == "als":
        return AlternatingLeastSquares(factors=6, iterations=3, random_state=0).fit(
            X, show_progress=False
        )
    if name == "bpr":
        return BayesianPersonalizedRanking(factors=6, iterations=5, random_state=0).fit(
            X, show_progress=False
        )
    if name == "bm25":
        return BM25Recommender(K=10).fit(X, show_progress=False)
    if name == "lightfm":
        return LightFM(no_components=6, loss="warp", random_state=0).fit(
            X, item_features=ITEM_FEATURES, epochs=3
        )
    if name == "popularity":
        return PopularityRecommender().fit(X)
    if name == "approx":  # an HNSW index over ALS's items: engines serve it as the model
        pytest.importorskip("faiss")
        return model("als").approximate(M=8, ef_search=16)
    raise KeyError(name)


_MODELS = {}


def model(name):
    if name not in _MODELS:
        _MODELS[name] = _build(name)
    return _MODELS[name]


def rows(M, users=None, user_ids=None, item_ids=None):
    """Interaction rows of the users (all by default) of matrix ``M``, weights included; a user
    without interactions is one row with a null item."""
    users = np.arange(M.shape[0]) if users is None else np.asarray(users)
    sub = M[users].tocoo()
    empty = users[np.diff(M[users].indptr) == 0]
    user = np.concatenate([users[sub.row], empty])
    item = pd.array(np.concatenate([sub.col, np.zeros(len(empty), int)]), dtype="Int64")
    item[len(sub.col) :] = pd.NA
    out = pd.DataFrame(
        {
            "user": user.astype(np.int64),
            "item": item,
            "weight": np.concatenate([sub.data, np.ones(len(empty))]),
        }
    )
    if user_ids is not None:
        out["user"] = user_ids[out["user"].to_numpy()]
    if item_ids is not None:
        out["item"] = [None if v is pd.NA else item_ids[v] for v in out["item"]]
    return out


def local_rows(m, M, users, N=5, user_ids=None, item_ids=None, features=None, **kw):
    """What the local call returns, as recommendation rows (padding left out)."""
    ids, scores = m.recommend(users, M[users], N=N, **(features or {}), **kw)
    ok = ids >= 0
    out = pd.DataFrame(
        {
            "user": np.repeat(users, ok.sum(axis=1)),
            "item": ids[ok].astype(np.int64),
            "rank": np.broadcast_to(np.arange(1, ids.shape[1] + 1), ids.shape)[ok],
            "score": scores[ok],
        }
    )
    if user_ids is not None:
        out["user"] = user_ids[out["user"].to_numpy()]
    if item_ids is not None:
        out["item"] = item_ids[out["item"].to_numpy()]
    return out


def assert_same(got: pd.DataFrame, want: pd.DataFrame):
    assert list(got.columns) == ["user", "item", "rank", "score"]
    got = got.sort_values(["user", "rank"]).reset_index(drop=True)
    want = want.sort_values(["user", "rank"]).reset_index(drop=True)
    assert len(got) == len(want)
    assert got["user"].tolist() == want["user"].tolist()
    assert got["rank"].tolist() == want["rank"].tolist()
    assert got["item"].tolist() == want["item"].tolist()
    np.testing.assert_allclose(
        got["score"].to_numpy(np.float64), want["score"].to_numpy(np.float64), rtol=0, atol=1e-6
    )


def command_line_matches_local(tmp_path, engine_name):
    """`tacitrec recommend --engine NAME` (in a child process, as users run it) writes the rows
    the local command writes as CSV, as Parquet in the original ids."""
    import subprocess
    import sys

    rng = np.random.default_rng(0)
    pd.DataFrame(
        {
            "user": [f"u{u}" for u in rng.integers(0, 60, 600)],
            "item": [f"i{i}" for i in rng.integers(0, 30, 600)],
        }
    ).to_csv(tmp_path / "rows.csv", index=False)

    def cli(*args):
        done = subprocess.run(
            [sys.executable, "-m", "tacitrec", *map(str, args), "-q"],
            cwd=tmp_path,
            timeout=240,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr[-3000:]

    cli("fit", "--model", "bm25", "--out", "m.npz", "rows.csv")
    cli("recommend", "m.npz", "-n", "4", "--out", "local.csv")
    cli(
        "recommend",
        "m.npz",
        "-n",
        "4",
        "--engine",
        engine_name,
        "--partitions",
        "3",
        "--out",
        "parquet",
    )
    want = pd.read_csv(tmp_path / "local.csv").sort_values(["user", "rank"])
    got = pd.read_parquet(tmp_path / "parquet").sort_values(["user", "rank"])
    assert got["user"].tolist() == want["user"].tolist()
    assert got["item"].tolist() == want["item"].tolist()
    np.testing.assert_allclose(got["score"], want["score"], rtol=1e-5)


def categorical_ids_match_local(engine):
    """Categorical user and item columns (filtered: unused categories, in their own order)
    give the local call's rows; so do users without history given with a null item and a
    null weight (columns of Arrow type null), while a row with an item and a null weight is an
    error naming the column. For engines whose frames carry categoricals (Dask, Ray)."""
    m = _build("als")
    user_ids = np.array([f"user-{u}" for u in range(N_USERS)])
    item_ids = np.array([f"item-{i}" for i in range(N_ITEMS)])
    m.set_ids(user_ids=user_ids, item_ids=item_ids)
    users = np.arange(0, N_USERS, 4)
    pdf = rows(X, users, user_ids=user_ids, item_ids=item_ids)
    pdf = pdf[pdf["item"].notna()]
    cat = rows(X, user_ids=user_ids, item_ids=item_ids).astype(
        {"user": "category", "item": "category"}
    )
    cat = cat[cat["user"].isin(set(pdf["user"]))]
    served = users[np.diff(X.indptr)[users] > 0]
    want = local_rows(m, X, served, N=4, user_ids=user_ids, item_ids=item_ids)
    assert_same(_run(engine, m, cat, N=4), want)
    cold = pd.DataFrame({"user": user_ids[[1, 6]], "item": [None, None], "weight": [None, None]})
    empty = sp.csr_matrix(X.shape, dtype=np.float32)
    want = local_rows(m, empty, np.array([1, 6]), N=4, user_ids=user_ids, item_ids=item_ids)
    assert_same(_run(engine, m, cold, partitions=1, N=4), want)
    no_weight = pdf.copy()
    no_weight.loc[no_weight.index[0], "weight"] = np.nan
    with pytest.raises(Exception, match="column 'weight' holds 1 null or NaN weights"):
        _run(engine, m, no_weight, N=4)


def id_types_between_train_and_test(engine):
    """Test ids in another type than the training ids are read in the model's id type, as the
    local call reads them: numbers as strings are the same users; other strings an error
    naming the column (not the engine's own conversion error)."""
    train, test = train_test_split(X, 0.75, random_state=3)
    m = _build("bm25")
    m.fit(train, show_progress=False)
    m.set_ids(user_ids=np.arange(N_USERS) * 10, item_ids=np.arange(N_ITEMS))
    train_rows = rows(train, user_ids=np.arange(N_USERS) * 10)
    test_rows = rows(test, user_ids=np.arange(N_USERS) * 10)
    want = ranking_metrics_at_k(m, train, test, K=5, show_progress=False)
    as_text = test_rows.astype({"user": str})
    got = engine.module.ranking_metrics_at_k(
        m, engine.frame(train_rows, 3), engine.frame(as_text, 2), K=5
    )
    for key in want:
        assert abs(got[key] - want[key]) <= 1e-9, key
    as_names = test_rows.assign(user=[f"u{u}" for u in test_rows["user"]])
    with pytest.raises(Exception, match="column 'user' of type .* cannot be compared"):
        engine.module.ranking_metrics_at_k(
            m, engine.frame(train_rows, 3), engine.frame(as_names, 2), K=5
        )


def _run(engine, m, pdf, partitions=3, N=5, **kw):
    return engine.collect(engine.module.recommend(m, engine.frame(pdf, partitions), N=N, **kw))


@pytest.mark.parametrize("name", ["als", "bpr", "bm25", "lightfm", "popularity", "approx"])
def test_recommend_equals_local(engine, name):
    m = model(name)
    users = np.arange(N_USERS)
    features = {"item_features": ITEM_FEATURES} if name == "lightfm" else None
    got = _run(engine, m, rows(X), N=5, **(features or {}))
    assert_same(got, local_rows(m, X, users, features=features))
    assert EMPTY_USER in set(got["user"])  # the user without interactions is served


def test_original_ids(engine):
    m = _build("als")
    user_ids = np.array([f"user-{u}" for u in range(N_USERS)])
    item_ids = np.array([f"item-{i}" for i in range(N_ITEMS)])
    m.set_ids(user_ids=user_ids, item_ids=item_ids)
    got = _run(engine, m, rows(X, user_ids=user_ids, item_ids=item_ids), N=4)
    assert_same(
        got, local_rows(m, X, np.arange(N_USERS), N=4, user_ids=user_ids, item_ids=item_ids)
    )
    # filters take the model's ids too
    got = _run(
        engine, m, rows(X, user_ids=user_ids, item_ids=item_ids), N=4, filter_items=item_ids[[1, 2]]
    )
    assert_same(
        got,
        local_rows(
            m, X, np.arange(N_USERS), N=4, user_ids=user_ids, item_ids=item_ids, filter_items=[1, 2]
        ),
    )


def test_filters(engine):
    m = model("als")
    users = np.arange(0, N_USERS, 3)
    kw = dict(filter_items=[0, 3, 8], items=np.arange(20))
    got = _run(engine, m, rows(X, users), N=6, **kw)
    assert_same(got, local_rows(m, X, users, N=6, **kw))
    got = _run(engine, m, rows(X, users), N=6, filter_already_liked_items=False)
    assert_same(got, local_rows(m, X, users, N=6, filter_already_liked_items=False))


def test_more_partitions_than_users(engine):
    m = model("bm25")
    users = np.array([1, 7, EMPTY_USER])
    got = _run(engine, m, rows(X, users), partitions=8, N=5)
    assert_same(got, local_rows(m, X, users))


def test_unknown_ids(engine):
    m = model("als")
    pdf = rows(X, [2, 3])
    bad_user = pd.concat(
        [
            pdf,
            pd.DataFrame({"user": [N_USERS + 4], "item": pd.array([1], "Int64"), "weight": [1.0]}),
        ],
        ignore_index=True,
    )
    with pytest.raises(Exception, match="not users of the model"):
        _run(engine, m, bad_user)
    got = _run(engine, m, bad_user, unknown="skip")
    assert_same(got, local_rows(m, X, np.array([2, 3])))
    bad_item = pd.concat(
        [
            pdf,
            pd.DataFrame({"user": [2], "item": pd.array([N_ITEMS + 1], "Int64"), "weight": [1.0]}),
        ],
        ignore_index=True,
    )
    with pytest.raises(Exception, match="not items of the model"):
        _run(engine, m, bad_item)
    assert_same(_run(engine, m, bad_item, unknown="skip"), local_rows(m, X, np.array([2, 3])))


def test_unknown_users_of_a_knn_model(engine):
    # a kNN model scores any user from their rows, but with user ids its users are those ids:
    # another id raises or is skipped as for a factor model (never N arbitrary items)
    m = _build("bm25")
    user_ids = np.array([f"u{u}" for u in range(N_USERS)])
    m.set_ids(user_ids=user_ids)
    pdf = rows(X, [2, 3], user_ids=user_ids)
    stranger = pd.DataFrame({"user": ["zz"], "item": pd.array([1], "Int64"), "weight": [1.0]})
    with_stranger = pd.concat([pdf, stranger], ignore_index=True)
    with pytest.raises(Exception, match="not users of the model"):
        _run(engine, m, with_stranger)
    got = _run(engine, m, with_stranger, unknown="skip")
    assert_same(got, local_rows(m, X, np.array([2, 3]), user_ids=user_ids))


@pytest.mark.parametrize("name", ["als", "bm25"])
def test_metrics_equal_local(engine, name):
    train, test = train_test_split(X, 0.75, random_state=3)
    m = _build(name)
    m.fit(train, show_progress=False)
    want = ranking_metrics_at_k(m, train, test, K=5, show_progress=False)
    # the test users as float64 (a pandas column that held a NaN once), the training users
    # int64: the same users (3 and 3.0 hashed apart split a user between partitions)
    test_rows = rows(test).astype({"user": np.float64})
    got = engine.module.ranking_metrics_at_k(
        m, engine.frame(rows(train), 3), engine.frame(test_rows, 2), K=5
    )
    assert set(got) == set(want)
    for key in want:
        assert abs(got[key] - want[key]) <= 1e-9, key


def test_model_directory(engine, tmp_path):
    m = model("bpr")
    path = str(tmp_path / "bpr-model")
    m.save_dir(path)
    got = _run(engine, path, rows(X), N=5)
    assert_same(got, local_rows(m, X, np.arange(N_USERS)))


def test_bad_arguments(engine):
    with pytest.raises(ValueError, match="unknown"):
        engine.module.recommend(model("als"), engine.frame(rows(X, [1]), 1), unknown="ignore")
    with pytest.raises(ValueError, match="N"):
        engine.module.recommend(model("als"), engine.frame(rows(X, [1]), 1), N=0)
    with pytest.raises(TypeError, match="model"):
        engine.module.recommend(object(), engine.frame(rows(X, [1]), 1))

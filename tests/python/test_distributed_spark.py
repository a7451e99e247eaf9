"""tacitrec.distributed.spark on a real Spark in local[2] mode, on the loopback address: the shared
checks of distributed_cases, plus what is Spark's own (Arrow batches that split a user's rows,
the task's cores, partitions without users)."""

import os
import shutil

import numpy as np
import pytest

import distributed_cases
import tacitrec.distributed.spark as tspark
from distributed_cases import *  # noqa: F401,F403
from distributed_cases import N_USERS, X, assert_same, local_rows, model, rows

pytestmark = [
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas"),
    pytest.mark.filterwarnings("ignore:toPandas attempted Arrow optimization"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),  # pyspark on pandas 3
]

#: small Arrow batches, so that many users' rows straddle two or more batches
BATCH_ROWS = 7


class _Spark:
    module = tspark

    def __init__(self, session):
        self.session = session

    def frame(self, pdf, partitions):
        import pyarrow as pa

        table = pa.Table.from_pandas(pdf, preserve_index=False)
        return self.session.createDataFrame(table).repartition(partitions)

    def collect(self, result):
        return result.toPandas()


@pytest.fixture(scope="session")
def engine():
    try:
        import pyspark  # noqa: F401
        from pyspark.sql import SparkSession
    except ImportError:
        pytest.skip('pyspark is not installed (pip install "tacitrec[spark]")')
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("no Java runtime (Spark 4 needs Java 17 or later): install a headless JRE")
    local_ip = os.environ.get("SPARK_LOCAL_IP")
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"  # read when the JVM starts
    session = (
        SparkSession.builder.master("local[2]")
        .appName("tacitrec-tests")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(BATCH_ROWS))
        .config("spark.python.worker.reuse", "true")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    rows_per_call, tspark.ROWS_PER_CALL = tspark.ROWS_PER_CALL, 1  # a kernel call per batch
    try:
        yield _Spark(session)
    finally:
        tspark.ROWS_PER_CALL = rows_per_call
        session.stop()
        if local_ip is None:
            os.environ.pop("SPARK_LOCAL_IP", None)
        else:
            os.environ["SPARK_LOCAL_IP"] = local_ip


def _long_histories():
    """X with three users of 25-30 interactions: their rows span several Arrow batches."""
    M = X.tolil()
    rng = np.random.default_rng(4)
    for u, n in ((0, 25), (1, 30), (2, 27)):
        M[u, :] = 0
        M[u, rng.choice(X.shape[1], n, replace=False)] = 1.0 + rng.integers(0, 3, n)
    M = M.tocsr()
    M.eliminate_zeros()
    return M


@pytest.mark.parametrize("rows_per_call", [1, 20])
def test_user_rows_straddle_batches(engine, monkeypatch, rows_per_call):
    """Users whose rows span several 7-row batches, scored a batch at a time or gathered."""
    assert engine.session.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch") == "7"
    monkeypatch.setattr(tspark, "ROWS_PER_CALL", rows_per_call)
    M = _long_histories()
    m = model("als")
    users = np.arange(N_USERS)
    got = engine.collect(tspark.recommend(m, engine.frame(rows(M), 2), N=5))
    assert_same(got, local_rows(m, M, users))
    # the liked items of the long users were all filtered: none comes back
    for u in (0, 1, 2):
        assert not set(got.loc[got["user"] == u, "item"]) & set(M[u].indices)


def test_explicit_partitions_without_users(engine):
    m = model("popularity")
    users = np.array([3, 11])
    got = engine.collect(tspark.recommend(m, engine.frame(rows(X, users), 1), N=5, partitions=9))
    assert_same(got, local_rows(m, X, users))
    with pytest.raises(ValueError, match="partitions"):
        tspark.recommend(m, engine.frame(rows(X, users), 1), partitions=0)


def test_output_schema(engine):
    from pyspark.sql import types as T

    m = model("als")
    out = tspark.recommend(m, engine.frame(rows(X, [1, 2]), 1), N=3)
    assert [(f.name, f.dataType) for f in out.schema.fields] == [
        ("user", T.LongType()),
        ("item", T.LongType()),
        ("rank", T.IntegerType()),
        ("score", T.FloatType()),
    ]
    frame = engine.frame(rows(X, [1, 2]), 1)
    out = tspark.recommend(m, frame.withColumn("user", frame["user"].cast("int")), N=3)
    assert out.schema["user"].dataType == T.IntegerType()
    assert sorted(set(out.toPandas()["user"])) == [1, 2]


def test_metrics_with_long_histories(engine):
    from tacitrec.evaluation import ranking_metrics_at_k, train_test_split

    M = _long_histories()
    train, test = train_test_split(M, 0.7, random_state=1)
    m = model("als")
    want = ranking_metrics_at_k(m, train, test, K=5, show_progress=False)
    got = tspark.ranking_metrics_at_k(
        m, engine.frame(rows(train), 2), engine.frame(rows(test), 1), K=5, partitions=3
    )
    assert set(got) == set(want)
    for key in want:
        assert abs(got[key] - want[key]) <= 1e-9, key


def test_task_threads(engine):
    """A task of local[2] (spark.task.cpus = 1) scores with one thread, not every core."""
    frame = engine.session.range(4).repartition(2)

    def threads(batches):
        import pyarrow as pa

        for batch in batches:
            yield pa.RecordBatch.from_pydict(
                {"threads": pa.array([tspark._task_cpus()] * batch.num_rows, pa.int64())}
            )

    assert set(frame.mapInArrow(threads, "threads long").toPandas()["threads"]) == {1}
    assert tspark._task_cpus() == 1  # on the driver, outside a task


def test_not_a_spark_frame():
    import pandas as pd

    pytest.importorskip("pyspark")
    with pytest.raises(TypeError, match="interactions must be a Spark DataFrame"):
        tspark.recommend(model("als"), pd.DataFrame({"user": [1], "item": [2]}))


def test_whole_users_carry_over():
    """Batches cut anywhere: every user comes out once, with all its rows, in order."""
    pa = pytest.importorskip("pyarrow")
    user = np.repeat(np.arange(6), [1, 9, 2, 15, 1, 3])
    for size, min_rows in ((1, 1), (2, 1), (4, 1), (7, 1), (40, 1), (1, 5), (3, 8), (7, 100)):
        batches = [
            pa.RecordBatch.from_pydict(
                {"user": user[s : s + size], "item": np.arange(len(user))[s : s + size]}
            )
            for s in range(0, len(user), size)
        ]
        tables = list(tspark._whole_users(iter(batches), min_rows))
        if min_rows > len(user):
            assert len(tables) == 1
        seen = [t.column("user").to_numpy() for t in tables]
        assert np.array_equal(np.concatenate(seen), user)
        assert np.array_equal(
            np.concatenate([t.column("item").to_numpy() for t in tables]), np.arange(len(user))
        )
        for a, b in zip(seen, seen[1:]):
            assert not set(a) & set(b)  # no user split between two tables
    unsorted = [pa.RecordBatch.from_pydict({"user": np.array([1, 2, 1, 3])})]
    with pytest.raises(RuntimeError, match="not together"):
        list(tspark._whole_users(iter(unsorted)))


def test_metrics_unknown_users(engine):
    import pandas as pd
    from tacitrec.evaluation import ranking_metrics_at_k, train_test_split

    train, test = train_test_split(X, 0.75, random_state=5)
    m = model("als")
    want = ranking_metrics_at_k(m, train, test, K=5, show_progress=False)
    stranger = pd.DataFrame(
        {"user": [N_USERS + 3], "item": pd.array([2], "Int64"), "weight": [1.0]}
    )
    test_rows = pd.concat([rows(test), stranger], ignore_index=True)
    with pytest.raises(Exception, match="not users of the model"):
        tspark.ranking_metrics_at_k(
            m, engine.frame(rows(train), 2), engine.frame(test_rows, 2), K=5
        )
    got = tspark.ranking_metrics_at_k(
        m, engine.frame(rows(train), 2), engine.frame(test_rows, 2), K=5, unknown="skip"
    )
    for key in want:
        assert abs(got[key] - want[key]) <= 1e-9, key
    with pytest.raises(TypeError, match="test must be a Spark DataFrame"):
        tspark.ranking_metrics_at_k(m, engine.frame(rows(train), 1), rows(test))


def test_missing_pyspark_names_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pyspark", None)
    with pytest.raises(ImportError, match=r"tacitrec\[spark\]"):
        tspark.recommend(model("als"), None)


def test_scorer_built_once_per_call():
    pytest.importorskip("pyspark")
    m = model("als")
    first = tspark._scorer("call-a", m, {"N": 3})
    assert tspark._scorer("call-a", m, {"N": 3}) is first
    assert tspark._scorer("call-b", m, {"N": 3}) is not first
    for i in range(tspark._SCORERS_KEPT + 2):  # a few calls kept, the oldest let go
        tspark._scorer(f"call-{i}", m, {})
    assert len(tspark._SCORERS) == tspark._SCORERS_KEPT


def test_command_line_writes_parquet_in_original_ids(engine, tmp_path):
    """`tacitrec recommend --engine spark` starts its own local[*] Spark in a child process."""
    distributed_cases.command_line_matches_local(tmp_path, "spark")


# ---- Spark MLlib's ALSModel in and out (a real MLlib ALS in the session above) ----------------
MLLIB = dict(rank=4, maxIter=15, regParam=0.1, alpha=2.0)


def _mllib_rows():
    """Distinct (user, item, rating) rows: ids that are not row indices, ratings 1..5."""
    rng = np.random.default_rng(11)
    mask = rng.random((40, 25)) < 0.3
    mask[np.arange(40), rng.integers(0, 25, 40)] = True  # every user rates something
    mask[rng.integers(0, 40, 25), np.arange(25)] = True  # every item is rated
    u, i = np.nonzero(mask)
    ratings = rng.integers(1, 6, len(u)).astype(np.float32)
    return 3 * u + 100, 7 * i + 5, ratings


@pytest.fixture(scope="module")
def mllib_fit(engine, tmp_path_factory):
    from pyspark.ml.recommendation import ALS

    # MLlib checkpoints the factors every checkpointInterval iterations only when the context
    # has a checkpoint directory; without one, 15 iterations of lineage overflowed the JVM's
    # stack now and then, which killed the session for every later Spark test
    engine.session.sparkContext.setCheckpointDir(str(tmp_path_factory.mktemp("checkpoints")))
    users, items, ratings = _mllib_rows()
    frame = engine.session.createDataFrame(
        [(int(a), int(b), float(c)) for a, b, c in zip(users, items, ratings)],
        ["user", "item", "rating"],
    )
    als = ALS(
        implicitPrefs=True,
        userCol="user",
        itemCol="item",
        ratingCol="rating",
        seed=3,
        checkpointInterval=5,
        **MLLIB,
    )
    return als.fit(frame), (users, items, ratings)


def _spark_top(spark_model, N):
    """{user id: [(item id, score)]} of MLlib's recommendForAllUsers."""
    return {
        row["user"]: [(r["item"], r["rating"]) for r in row["recommendations"]]
        for row in spark_model.recommendForAllUsers(N).collect()
    }


def _assert_top_equal(model, spark_top, N):
    ids, scores = model.recommend(
        np.arange(len(model.user_ids_)), None, N=N, filter_already_liked_items=False
    )
    assert sorted(spark_top) == sorted(model.user_ids_.tolist())
    position = {item: i for i, item in enumerate(model.item_ids_.tolist())}
    for u, user in enumerate(model.user_ids_.tolist()):
        theirs = spark_top[user]
        np.testing.assert_allclose(scores[u], [s for _, s in theirs], rtol=0, atol=1e-5)
        # the same items in the same order, except that items of equal score (ties in float32)
        # may come in either order: each of their items scores, by our factors, what our item
        # at that rank scores
        ours_of_theirs = (
            model.user_factors[u] @ model.item_factors[[position[item] for item, _ in theirs]].T
        )
        np.testing.assert_allclose(ours_of_theirs, scores[u], rtol=0, atol=1e-5, err_msg=user)
        exact = np.abs(np.diff(scores[u])) > 1e-5  # ranks r, r+1 not tied
        untied = np.concatenate([[True], exact]) & np.concatenate([exact, [True]])
        assert model.item_ids_[ids[u]][untied].tolist() == [
            item for (item, _), keep in zip(theirs, untied) if keep
        ], user


def _matrix(users, items, ratings):
    import scipy.sparse as sp

    uids, rows = np.unique(users, return_inverse=True)
    iids, cols = np.unique(items, return_inverse=True)
    X = sp.csr_matrix((ratings, (rows, cols)), shape=(len(uids), len(iids)), dtype=np.float32)
    return X, uids, iids


def _mllib_objective(R, U, V, alpha, lam):
    """MLlib's implicit ALS objective in NumPy, dense: sum_ui c_ui (p_ui - u.v)^2 +
    lam (sum_u n_u |u|^2 + sum_i n_i |v|^2), c = 1 + alpha |r|, p = [r > 0]."""
    R = np.asarray(R.todense(), dtype=np.float64)
    U, V = U.astype(np.float64), V.astype(np.float64)
    C = 1.0 + alpha * np.abs(R)
    fit = (C * ((R > 0) - U @ V.T) ** 2).sum()
    n_u, n_i = (R != 0).sum(axis=1), (R != 0).sum(axis=0)
    return fit + lam * (n_u @ (U**2).sum(axis=1) + n_i @ (V**2).sum(axis=1))


def test_mllib_als_model_loads_and_recommends_as_spark(mllib_fit, tmp_path):
    spark_model, (users, items, _) = mllib_fit
    spark_model.write().overwrite().save(str(tmp_path / "mllib"))
    model = tspark.load_als_model(tmp_path / "mllib")
    assert model.factors == MLLIB["rank"]
    assert model.user_ids_.tolist() == sorted(set(users.tolist()))
    assert model.item_ids_.tolist() == sorted(set(items.tolist()))
    theirs = {r["id"]: r["features"] for r in spark_model.userFactors.collect()}
    np.testing.assert_array_equal(model.user_factors[3], theirs[int(model.user_ids_[3])])
    _assert_top_equal(model, _spark_top(spark_model, 6), 6)
    assert model.spark_columns_ == {"userCol": "user", "itemCol": "item"}


def test_our_als_saved_for_mllib_recommends_the_same(engine, tmp_path):
    from pyspark.ml.recommendation import ALSModel

    import tacitrec

    X, uids, iids = _matrix(*_mllib_rows())
    model = tacitrec.AlternatingLeastSquares(factors=5, iterations=4, random_state=0)
    model.fit(X, show_progress=False)
    model.set_ids(uids, iids)
    tspark.save_als_model(model, tmp_path / "ours")
    loaded = ALSModel.load(str(tmp_path / "ours"))
    assert loaded.rank == 5
    _assert_top_equal(model, _spark_top(loaded, 7), 7)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        tspark.save_als_model(model, tmp_path / "ours")
    tspark.save_als_model(model, tmp_path / "ours", overwrite=True)
    again = tspark.load_als_model(tmp_path / "ours")  # and back: the same arrays and ids
    np.testing.assert_array_equal(again.item_factors, model.item_factors)
    np.testing.assert_array_equal(again.user_ids_, uids)


def _mllib_sweep(R, U, V, alpha, lam):
    """One ALS iteration of MLlib's implicit normal equations, in NumPy: each user, then each
    item, solves (V^T C_u V + lam n_u I) x_u = V^T C_u p_u."""
    C, P = 1.0 + alpha * np.abs(R), (R > 0).astype(np.float64)
    U, V = U.astype(np.float64).copy(), V.astype(np.float64).copy()
    for A, B, W, T in ((U, V, C, P), (V, U, C.T, P.T)):
        n = (W > 1).sum(axis=1)
        for r in range(len(A)):
            G = (B.T * W[r]) @ B + lam * n[r] * np.eye(B.shape[1])
            A[r] = np.linalg.solve(G, (B.T * W[r]) @ T[r])
    return U, V


def test_mllib_objective_reached_by_our_als(mllib_fit):
    """Our ALS on mllib_confidence's values with count-scaled regularisation minimises MLlib's
    objective: from the same number of iterations its loss is no worse than MLlib's, and MLlib's
    own updates (NumPy), continued from MLlib's factors until they settle, reach our loss to
    1%; the first of them changes MLlib's loss by little (MLlib was minimising it)."""
    import tacitrec

    spark_model, rows_ = mllib_fit
    X, uids, iids = _matrix(*rows_)
    alpha, lam = MLLIB["alpha"], MLLIB["regParam"]
    ours = tacitrec.AlternatingLeastSquares(
        factors=MLLIB["rank"],
        regularization=lam,
        alpha=1.0,
        regularization_exponent=1.0,
        iterations=MLLIB["maxIter"],
        solver="cholesky",
        random_state=0,
    )
    ours.fit(tspark.mllib_confidence(X, alpha=alpha), show_progress=False)

    def factors(frame, ids):
        by_id = {r["id"]: r["features"] for r in frame.collect()}
        return np.array([by_id[int(i)] for i in ids], dtype=np.float32)

    U, V = factors(spark_model.userFactors, uids), factors(spark_model.itemFactors, iids)
    theirs = _mllib_objective(X, U, V, alpha, lam)
    mine = _mllib_objective(X, ours.user_factors, ours.item_factors, alpha, lam)
    assert mine <= 1.01 * theirs, (mine, theirs)
    R = np.asarray(X.todense(), dtype=np.float64)
    U1, V1 = _mllib_sweep(R, U, V, alpha, lam)
    assert _mllib_objective(X, U1, V1, alpha, lam) <= theirs
    assert theirs - _mllib_objective(X, U1, V1, alpha, lam) <= 0.002 * theirs
    for _ in range(40):
        U1, V1 = _mllib_sweep(R, U1, V1, alpha, lam)
    settled = _mllib_objective(X, U1, V1, alpha, lam)
    assert abs(mine - settled) <= 0.01 * settled, (mine, settled)


def test_mllib_confidence_and_bad_models(tmp_path):
    import scipy.sparse as sp

    import tacitrec

    X = sp.csr_matrix(np.array([[2.0, 0.0, -1.0], [0.0, 0.5, 0.0]]))
    X.data = np.append(X.data[:-1], 0.5)  # stays as given
    C = tspark.mllib_confidence(X, alpha=3.0)
    np.testing.assert_allclose(C.toarray(), [[7.0, 0.0, -4.0], [0.0, 2.5, 0.0]])
    model = tacitrec.AlternatingLeastSquares(factors=2, iterations=1).fit(
        sp.csr_matrix(np.eye(3, dtype=np.float32)), show_progress=False
    )
    model.set_ids(np.array(["a", "b", "c"]), None)
    with pytest.raises(ValueError, match="integer user ids"):
        tspark.save_als_model(model, tmp_path / "m")
    assert not (tmp_path / "m").exists()
    with pytest.raises(TypeError, match="factor model"):
        tspark.save_als_model(tacitrec.CosineRecommender(), tmp_path / "m")
    with pytest.raises(FileNotFoundError, match="not a saved Spark ALSModel"):
        tspark.load_als_model(tmp_path)

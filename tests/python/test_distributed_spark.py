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

"""tacitrec on Spark: recommend and evaluate from Spark DataFrames of interaction rows.

The rows are shuffled by user (``repartition(n, "user")``) and sorted by user within each
partition, then scored with ``mapInArrow`` (Spark 3.3 or later, classic or Spark Connect): each
task streams its partition's Arrow batches, gathered into kernel calls of about
:data:`ROWS_PER_CALL` rows, carrying the rows of the last user of a call over to the next one,
so its memory stays bounded (about ``ROWS_PER_CALL`` rows plus one Arrow batch,
``spark.sql.execution.arrow.maxRecordsPerBatch``, plus one user's rows) and every user is scored
with all its rows.
The local kernels run with ``spark.task.cpus`` threads (``TaskContext.cpus()``; keep
``spark.task.cpus`` equal to the cores an executor gives each task).

The model reaches the Python workers in one of two forms; ``SparkContext.broadcast`` is not
used (Spark Connect lacks it):

* a **model directory path** (``model.save_dir(path)`` on a file system every executor can
  read): each Python worker process opens it memory-mapped once, so a machine holds one copy
  of the arrays in its page cache, whatever the number of tasks. This is the form for large
  models;
* a **model object**: it travels in the function that ``mapInArrow`` ships (pickled once per
  call, unpickled by every task) and each Python worker process builds its scorer from it
  once per call. Convenient for small models; every worker process holds its own copy.

See :mod:`tacitrec.distributed` for the arguments. Needs ``pip install "tacitrec[spark]"``
(pyspark, a Java 17 runtime for Spark 4). Example, on the loopback address::

    import os
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    from pyspark.sql import SparkSession
    spark = (SparkSession.builder.master("local[2]")
             .config("spark.driver.bindAddress", "127.0.0.1")
             .config("spark.driver.host", "127.0.0.1")
             .config("spark.ui.enabled", "false").getOrCreate())
    rows = spark.read.parquet("interactions/")        # user, item[, weight]
    model.save_dir("/shared/models/als")
    from tacitrec.distributed import spark as tspark
    top = tspark.recommend("/shared/models/als", rows, N=10)
    top.write.parquet("recommendations/")
"""

from __future__ import annotations

import functools
import threading
import uuid
from collections import OrderedDict
from typing import Optional

import numpy as np

from . import _local, require


def _sql():
    require("pyspark", "spark")
    return require("pyspark.sql", "spark")


def _task_cpus() -> int:
    """The cores Spark gave this task (``spark.task.cpus``); 1 outside a task."""
    from pyspark import TaskContext

    context = TaskContext.get()
    if context is None:
        return 1
    try:
        return max(1, int(context.cpus()))
    except Exception:  # pragma: no cover - an old Spark without TaskContext.cpus()
        return 1


#: the rows (of whole users) each call of the local kernels gets, about: Arrow batches
#: (``spark.sql.execution.arrow.maxRecordsPerBatch``, 10,000 rows by default) are gathered up
#: to it, since fewer, larger kernel calls cost less (measured: 15% less CPU than one call per
#: 10,000-row batch); a task holds about this many rows plus one batch and one user at a time
ROWS_PER_CALL = 65536

#: scorers built in this Python worker process, by (call token, threads); a few calls kept
_SCORERS: "OrderedDict[tuple, _local.Scorer]" = OrderedDict()
_SCORERS_KEPT = 4
_SCORERS_LOCK = threading.Lock()


def _scorer(token: str, model, options: dict) -> "_local.Scorer":
    """The scorer of call ``token`` in this process, built at its first task here."""
    threads = _task_cpus()
    key = (token, threads)
    with _SCORERS_LOCK:
        scorer = _SCORERS.get(key)
        if scorer is not None:
            _SCORERS.move_to_end(key)
            return scorer
    scorer = _local.Scorer(model, num_threads=threads, **options)
    with _SCORERS_LOCK:
        _SCORERS[key] = scorer
        while len(_SCORERS) > _SCORERS_KEPT:
            _SCORERS.popitem(last=False)
    return scorer


def _whole_users(batches, min_rows: int = 1):
    """Tables of whole users from the Arrow batches of a partition sorted by user: batches are
    gathered until they hold ``min_rows`` rows, then the rows of the last user wait for the
    next batch (they may continue there), the others go. Memory: ``min_rows`` plus one batch
    plus one user's rows."""
    pa = _local.pyarrow()
    import pyarrow.compute as pc

    pending, rows = [], 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        pending.append(batch)
        rows += batch.num_rows
        if rows < min_rows:
            continue
        table = pa.Table.from_batches(pending)
        if len(pending) > 1:
            table = table.combine_chunks()
        user = table.column("user")
        last = user[len(user) - 1]
        tail = int(pc.sum(pc.equal(user, last)).as_py() or 0) if last.is_valid else 0
        done = table.slice(0, len(table) - tail)
        pending = table.slice(len(table) - tail).to_batches() if tail else []
        rows = tail
        if len(done):
            _check_grouped(done.column("user"))
            yield done
    if pending:
        table = pa.Table.from_batches(pending)
        _check_grouped(table.column("user"))
        yield table


def _check_grouped(user) -> None:
    """The rows of each user are together (the partition was sorted by user)."""
    import pyarrow.compute as pc

    user = user.combine_chunks()
    if len(user) < 2 or user.null_count:
        return
    runs = 1 + int(pc.sum(pc.not_equal(user.slice(1), user.slice(0, len(user) - 1))).as_py())
    if runs != pc.count_distinct(user).as_py():
        raise RuntimeError(
            "the rows of a user are not together in the partition: the frame "
            "must reach mapInArrow sorted by user"
        )


def _recommend_batches(batches, token, model, options, schema, min_rows):
    scorer = _scorer(token, model, options)
    for table in _whole_users(batches, min_rows):
        out = scorer.recommend(table)
        if len(out):
            yield from out.cast(schema).to_batches()


def _metric_batches(batches, token, model, K, unknown, min_rows):
    pa = _local.pyarrow()
    scorer = _scorer(token, model, {"unknown": unknown})
    sums = np.zeros(len(_sum_columns()))
    for table in _whole_users(batches, min_rows):
        sums += scorer.metric_sums(table, K)
    yield pa.RecordBatch.from_arrays(
        [pa.array([s], pa.float64()) for s in sums], names=_sum_columns()
    )


def _sum_columns():
    from .. import _core

    return ["users"] + list(_core.METRIC_NAMES)


def _is_frame(frame) -> bool:
    """A classic or Spark Connect DataFrame (separate classes before Spark 4)."""
    if isinstance(frame, _sql().DataFrame):
        return True
    try:
        from pyspark.sql.connect.dataframe import DataFrame as ConnectFrame
    except Exception:  # Spark Connect's client dependencies not installed
        return False
    return isinstance(frame, ConnectFrame)


def _columns(frame, name: str, test: bool = False):
    if not _is_frame(frame):
        raise TypeError(f"{name} must be a Spark DataFrame, got {type(frame).__name__}")
    missing = {"user", "item"} - set(frame.columns)
    if missing:
        raise ValueError(
            f"{name} needs the columns user and item (and optionally weight); "
            f"missing {sorted(missing)}"
        )
    keep = ["user", "item"] + (["weight"] if "weight" in frame.columns and not test else [])
    return frame.select(*keep)


def _by_user(frame, partitions):
    """``frame`` with all the rows of a user in one partition, sorted by user there."""
    if partitions is None:
        shuffled = frame.repartition("user")
    else:
        from .._validation import check_count

        shuffled = frame.repartition(check_count(partitions, "partitions"), "user")
    return shuffled.sortWithinPartitions("user")


def _arrow_schema(frame):
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(frame.schema)


def recommend(
    model,
    interactions,
    N: int = 10,
    filter_already_liked_items: bool = True,
    filter_items=None,
    items=None,
    *,
    unknown: str = "raise",
    user_features=None,
    item_features=None,
    partitions=None,
):
    """The top ``N`` of every user in the Spark DataFrame ``interactions``, as a Spark DataFrame
    of ``user`` (the input's type), ``item`` (string for string ids, long for indices),
    ``rank`` (int) and ``score`` (float); lazy, like every DataFrame: collect it or write it
    (``.write.parquet``). ``partitions``: the number of partitions after the shuffle by user
    (``spark.sql.shuffle.partitions`` by default)."""
    _sql()
    from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

    frame = _columns(interactions, "interactions")
    model = _local.serving_model(model, user_features, item_features)
    options = dict(
        N=N,
        filter_already_liked_items=filter_already_liked_items,
        filter_items=filter_items,
        items=items,
        unknown=unknown,
    )
    # options and id types checked here, before any Spark work; the output schema with them
    empty = _arrow_schema(frame).empty_table()
    out_schema = from_arrow_schema(_local.Scorer(model, **options).recommend(empty).schema)
    work = functools.partial(
        _recommend_batches,
        token=uuid.uuid4().hex,
        model=model,
        options=options,
        schema=to_arrow_schema(out_schema),
        min_rows=ROWS_PER_CALL,
    )
    return _by_user(frame, partitions).mapInArrow(work, out_schema)


def ranking_metrics_at_k(
    model,
    train,
    test,
    K: int = 10,
    *,
    unknown: str = "raise",
    user_features=None,
    item_features=None,
    partitions=None,
):
    """:func:`tacitrec.evaluation.ranking_metrics_at_k` of ``model`` on the Spark DataFrames
    ``train`` and ``test`` (rows of users and items), merged from per-partition sums;
    ``partitions`` as for :func:`recommend`."""
    from ..evaluation import metrics_from_sums
    from .._validation import check_count

    sql = _sql()
    from pyspark.sql import functions as F

    train_rows = _columns(train, "train").withColumn(_local.TEST_COLUMN, F.lit(False))
    test_rows = _columns(test, "test", True).withColumn(_local.TEST_COLUMN, F.lit(True))
    model = _local.serving_model(model, user_features, item_features)
    K = check_count(K, "K")
    scorer = _local.Scorer(model, unknown=unknown)  # options and id types checked here
    rows = train_rows.unionByName(test_rows, allowMissingColumns=True)
    empty = _arrow_schema(rows).empty_table()
    scorer.metric_sums(empty, K)
    schema = sql.types.StructType(
        [sql.types.StructField(c, sql.types.DoubleType(), False) for c in _sum_columns()]
    )
    work = functools.partial(
        _metric_batches,
        token=uuid.uuid4().hex,
        model=model,
        K=K,
        unknown=unknown,
        min_rows=ROWS_PER_CALL,
    )
    parts = _by_user(rows, partitions).mapInArrow(work, schema).collect()
    sums = np.zeros(len(_sum_columns()))
    for row in parts:
        sums += np.array([row[c] for c in _sum_columns()], dtype=np.float64)
    return metrics_from_sums(sums)


# ---- Spark MLlib's ALSModel -----------------------------------------------------------------
#: the class name in an ALSModel's metadata
ALS_MODEL_CLASS = "org.apache.spark.ml.recommendation.ALSModel"


def _metadata_file(path: str) -> str:
    import glob
    import os

    files = sorted(glob.glob(os.path.join(path, "metadata", "part-*")))
    if not files:
        raise FileNotFoundError(f"{path!r} is not a saved Spark ALSModel (no metadata/part-* file)")
    return files[0]


def _factors(path: str, side: str, rank: int):
    """``(ids int64 sorted, factors float32 (n, rank))`` of ``path/<side>Factors``."""
    import os

    pa = _local.pyarrow()
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    folder = os.path.join(path, f"{side}Factors")
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{path!r} is not a saved Spark ALSModel (no {side}Factors/)")
    table = ds.dataset(folder, format="parquet").to_table(columns=["id", "features"])
    ids = table.column("id").combine_chunks()
    features = table.column("features").combine_chunks()
    if ids.null_count or features.null_count:
        raise ValueError(f"{folder!r} holds null ids or factors")
    if len(table) and not pc.all(pc.equal(pc.list_value_length(features), rank)).as_py():
        raise ValueError(f"{folder!r} holds factors whose length is not the rank {rank}")
    values = pc.list_flatten(features).cast(pa.float32()).to_numpy(zero_copy_only=False)
    ids = ids.to_numpy(zero_copy_only=False).astype(np.int64)
    order = np.argsort(ids, kind="stable")
    if len(ids) > 1 and (np.diff(ids[order]) == 0).any():
        raise ValueError(f"{folder!r} holds an id twice")
    return ids[order], np.ascontiguousarray(values.reshape(len(ids), rank)[order])


def load_als_model(path):
    """A Spark MLlib ``ALSModel`` saved with ``model.save(path)`` / ``model.write().save(path)``
    (on a local or mounted file system) as a fitted :class:`~tacitrec.AlternatingLeastSquares`.

    The model's ``factors`` is the MLlib rank; its user and item factors are MLlib's
    ``userFactors`` and ``itemFactors`` with rows sorted by id, and the MLlib ids (int) are its
    original ids, ``model.user_ids_`` and ``model.item_ids_`` (sorted), as ``model.set_ids``
    records them: ``model.recommend`` takes row indices (``np.searchsorted(model.user_ids_,
    id)``), ``recommend_frame`` and :mod:`tacitrec.distributed` take and return the MLlib ids.
    Scores equal MLlib's (``x_u . y_i``). MLlib's estimator parameters (``regParam``,
    ``alpha``, ...) are not part of a saved ``ALSModel``; the model's ``userCol`` and
    ``itemCol`` are kept as ``model.spark_columns_``. Needs pyarrow, not pyspark.
    """
    import json
    import os

    from ..als import AlternatingLeastSquares

    path = os.fspath(path)
    with open(_metadata_file(path), encoding="utf-8") as f:
        meta = json.loads(f.readline())
    if meta.get("class") != ALS_MODEL_CLASS:
        raise ValueError(f"{path!r} holds a {meta.get('class')}, not an {ALS_MODEL_CLASS}")
    rank = meta.get("rank")
    if not isinstance(rank, int) or rank < 1:
        raise ValueError(f"{path!r}: the metadata gives no valid rank ({rank!r})")
    user_ids, user_factors = _factors(path, "user", rank)
    item_ids, item_factors = _factors(path, "item", rank)
    model = AlternatingLeastSquares(factors=rank)
    model.user_factors, model.item_factors = user_factors, item_factors
    model.set_ids(user_ids, item_ids)
    params = dict(meta.get("defaultParamMap", {}), **meta.get("paramMap", {}))
    model.spark_columns_ = {  # type: ignore[attr-defined]
        "userCol": params.get("userCol", "user"),
        "itemCol": params.get("itemCol", "item"),
    }
    return model


def _mllib_ids(model, side: str, n: int) -> np.ndarray:
    ids = getattr(model, f"{side}_ids_", None)
    if ids is None:
        return np.arange(n, dtype=np.int32)
    ids = np.asarray(ids)
    if ids.dtype.kind not in "iu":
        raise ValueError(
            f"MLlib's ALSModel takes integer {side} ids (int32); the model's are "
            f"{ids.dtype}: map them to integers first (model.set_ids)"
        )
    if len(ids) and (ids.min() < -(2**31) or ids.max() > 2**31 - 1):
        raise ValueError(f"MLlib's ALSModel takes int32 {side} ids; the model's exceed that range")
    return ids.astype(np.int32)


def save_als_model(
    model,
    path,
    user_col: Optional[str] = None,
    item_col: Optional[str] = None,
    overwrite: bool = False,
) -> None:
    """Writes a fitted factor model (``AlternatingLeastSquares``, or any model with
    ``user_factors`` / ``item_factors`` scored by their dot product) as a Spark MLlib
    ``ALSModel`` directory that ``pyspark.ml.recommendation.ALSModel.load(path)`` opens:
    ``metadata/`` (one JSON line: class, uid, rank and the ``userCol`` / ``itemCol`` params),
    ``userFactors/`` and ``itemFactors/`` (Parquet, ``id int, features array<float>``).

    Ids are the model's original ids (``model.user_ids_``, ``item_ids_``), which must be
    integers in the int32 range as MLlib's are; row indices when the model has none.
    ``user_col`` / ``item_col``: the ALSModel's column params (default: those of a model read
    by :func:`load_als_model`, else "user" and "item"). ``path`` is on a local or mounted file
    system; an existing directory is replaced only with ``overwrite=True``. Needs pyarrow, not
    pyspark.
    """
    import json
    import os
    import time

    from .._files import replace_dir

    pa = _local.pyarrow()
    import pyarrow.parquet as pq

    try:
        user_factors = np.asarray(model.user_factors, dtype=np.float32)
        item_factors = np.asarray(model.item_factors, dtype=np.float32)
    except AttributeError:
        raise TypeError(
            f"model must be a fitted factor model, got {type(model).__name__}"
        ) from None
    if user_factors.ndim != 2 or user_factors.shape[1] != item_factors.shape[1]:
        raise ValueError("the model's user and item factors must be matrices of equal width")
    from ..base import MatrixFactorizationBase

    if not isinstance(model, MatrixFactorizationBase):
        raise TypeError(
            "model must be a factor model scored by x_u . y_i (AlternatingLeastSquares, ...), "
            f"got {type(model).__name__}"
        )
    rank = int(user_factors.shape[1])
    columns = getattr(model, "spark_columns_", None) or {}
    user_col = user_col or columns.get("userCol", "user")
    item_col = item_col or columns.get("itemCol", "item")
    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path):
        if not overwrite:
            raise FileExistsError(f"{path!r} exists: pass overwrite=True to replace it")

    def write(tmp: str) -> None:
        meta = {
            "class": ALS_MODEL_CLASS,
            "timestamp": int(time.time() * 1000),
            "sparkVersion": "3.0.0",
            "uid": f"ALS_{uuid.uuid4().hex[:12]}",
            "paramMap": {"userCol": user_col, "itemCol": item_col},
            "defaultParamMap": {
                "blockSize": 4096,
                "coldStartStrategy": "nan",
                "itemCol": "item",
                "predictionCol": "prediction",
                "userCol": "user",
            },
            "rank": rank,
        }
        os.makedirs(os.path.join(tmp, "metadata"))
        with open(os.path.join(tmp, "metadata", "part-00000"), "w", encoding="utf-8") as f:
            f.write(json.dumps(meta, separators=(",", ":")) + "\n")
        schema = pa.schema(
            [
                pa.field("id", pa.int32(), nullable=False),
                pa.field("features", pa.list_(pa.field("element", pa.float32(), nullable=False))),
            ]
        )
        for side, factors in (("user", user_factors), ("item", item_factors)):
            ids = _mllib_ids(model, side, len(factors))
            if len(ids) != len(factors):
                raise ValueError(
                    f"the model has {len(ids)} {side} ids for {len(factors)} {side} factors"
                )
            offsets = pa.array(np.arange(len(factors) + 1, dtype=np.int32) * rank)
            features = pa.ListArray.from_arrays(
                offsets, pa.array(factors.reshape(-1)), type=schema.field("features").type
            )
            folder = os.path.join(tmp, f"{side}Factors")
            os.makedirs(folder)
            pq.write_table(
                pa.table([pa.array(ids), features], schema=schema),
                os.path.join(folder, f"part-00000-{uuid.uuid4()}-c000.snappy.parquet"),
                compression="snappy",
            )
        for folder in ("metadata", "userFactors", "itemFactors"):
            open(os.path.join(tmp, folder, "_SUCCESS"), "wb").close()

    replace_dir(path, write)


def mllib_confidence(user_items, alpha: float = 1.0):
    """``user_items`` with MLlib's implicit-feedback confidence, for
    :class:`~tacitrec.AlternatingLeastSquares` to minimise MLlib's objective.

    MLlib's ``ALS(implicitPrefs=True, alpha=a, regParam=lam)`` minimises
    ``sum_ui c_ui (p_ui - x_u . y_i)^2 + lam (sum_u n_u |x_u|^2 + sum_i n_i |y_i|^2)`` with
    ``c_ui = 1 + a |r_ui|`` for a stored rating (1 when missing), ``p_ui = 1`` when
    ``r_ui > 0`` (else 0) and ``n_u``, ``n_i`` the ratings of the user / item. tacitrec's ALS
    follows implicit (a stored value ``v`` *is* the confidence times ``alpha``, its sign the
    preference), so the same objective is::

        X = mllib_confidence(user_items, alpha=a)     # values sign(r) (1 + a |r|)
        AlternatingLeastSquares(factors=rank, regularization=lam, alpha=1.0,
                                regularization_exponent=1.0).fit(X)

    (``regularization_exponent=1`` without ``unobserved_weight`` scales the regularisation
    by each row's stored entries, MLlib's ``n_u``.) Stored zeros carry no confidence in MLlib
    and are dropped here. One difference remains: MLlib treats repeated (user, item) rows as
    separate ratings, tacitrec sums them into one. Returns a new float32 CSR matrix.
    """
    import scipy.sparse as sp

    from .._validation import as_csr, check_nonnegative

    alpha = check_nonnegative(alpha, "alpha")
    c = as_csr(user_items, "user_items").to_scipy()
    X = sp.csr_matrix(c, dtype=np.float32, copy=True)
    X.eliminate_zeros()
    X.data = (np.sign(X.data) * (1.0 + alpha * np.abs(X.data))).astype(np.float32)
    return X

"""The command line's use of the engines: connect (or start a local cluster on the loopback
address), make an engine frame of interaction rows, recommend, write Parquet. Used by
``tacitrec recommend --engine``."""

from __future__ import annotations

import contextlib
import importlib
import os

from . import require

ENGINES = ("ray", "dask", "spark")


def _cores() -> int:
    return max(
        1,
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1),
    )


@contextlib.contextmanager
def _dask(address):
    distributed = require("distributed", "dask")
    dd = require("dask.dataframe", "dask")
    if address:
        client, cluster = distributed.Client(address), None
    else:
        cluster = distributed.LocalCluster(
            n_workers=_cores(),
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        )
        client = distributed.Client(cluster)
    try:
        yield (
            lambda pdf, parts: dd.from_pandas(pdf, npartitions=parts, sort=False),
            lambda frame, out: frame.to_parquet(out, write_index=False),
        )
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


@contextlib.contextmanager
def _ray(address):
    if not address:  # read when ray is imported: every process of a local Ray on 127.0.0.1
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    ray = require("ray", "ray")
    started = not ray.is_initialized()
    if started:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(
                num_cpus=_cores(),
                include_dashboard=False,
                log_to_driver=False,
                _node_ip_address="127.0.0.1",
            )
    try:
        yield (
            lambda pdf, parts: ray.data.from_pandas(pdf).repartition(parts),
            lambda frame, out: frame.write_parquet(out),
        )
    finally:
        if started:
            ray.shutdown()


@contextlib.contextmanager
def _spark(address):
    require("pyspark", "spark")
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("tacitrec").master(address or "local[*]")
    if not address:
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        builder = (
            builder.config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.ui.enabled", "false")
        )
    started = SparkSession.getActiveSession() is None
    spark = builder.config("spark.sql.execution.arrow.pyspark.enabled", "true").getOrCreate()
    try:
        yield (
            lambda pdf, parts: spark.createDataFrame(pdf).repartition(parts),
            lambda frame, out: frame.write.parquet(out),
        )
    finally:
        if started:
            spark.stop()


def recommend_to_parquet(
    engine: str, model, rows, out: str, *, address=None, partitions=None, **options
) -> None:
    """Recommends for the users of the pandas DataFrame ``rows`` (``user, item[, weight]``) on
    ``engine`` and writes the ``user, item, rank, score`` rows to the Parquet folder ``out``."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if os.path.exists(out):
        raise FileExistsError(f"--out {out!r} exists: Parquet output goes to a new folder")
    adapter = importlib.import_module(f"tacitrec.distributed.{engine}")
    session = {"ray": _ray, "dask": _dask, "spark": _spark}[engine]
    with session(address) as (to_frame, write):
        parts = max(1, int(partitions or 2 * _cores()))
        write(adapter.recommend(model, to_frame(rows, parts), **options), out)

"""tacitrec.distributed.dask on a real Dask cluster: a LocalCluster of 2 worker processes with one
thread each, on the loopback address; the shared checks of distributed_cases."""

import pytest

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

import distributed_cases
import tacitrec.distributed.dask as tdask
from distributed_cases import *  # noqa: E402,F401,F403


class _Dask:
    module = tdask

    def frame(self, pdf, partitions):
        return dd.from_pandas(pdf, npartitions=partitions, sort=False)

    def collect(self, result):
        return result.compute()


@pytest.fixture(scope="session")
def engine():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    )
    client = distributed.Client(cluster)
    try:
        yield _Dask()
    finally:
        client.close()
        cluster.close()


def test_workers_use_their_threads(engine):
    """A task on a worker of nthreads=1 runs the kernels with 1 thread, not every core."""
    client = distributed.get_client()
    workers = list(client.scheduler_info()["workers"])
    threads = [
        client.submit(tdask._worker_threads, workers=[w], pure=False).result() for w in workers
    ]
    assert threads == [1] * len(workers) and len(workers) == 2


def test_command_line_writes_parquet_in_original_ids(tmp_path):
    """`tacitrec recommend --engine dask` starts its own local cluster in a child process."""
    distributed_cases.command_line_matches_local(tmp_path, "dask")

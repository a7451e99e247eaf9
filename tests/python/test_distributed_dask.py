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


def test_categorical_ids_and_users_without_history(engine):
    distributed_cases.categorical_ids_match_local(engine)


def test_id_types_between_train_and_test(engine):
    # a string test column against integer training ids was a P2P RuntimeError of the shuffle
    distributed_cases.id_types_between_train_and_test(engine)


def test_local_scheduler_scores_with_all_cores():
    """Outside a worker (the local scheduler) a task's kernels get all cores: 0, not 1."""
    assert tdask._worker_threads() == 0
    scorer = tdask._local.Scorer(distributed_cases.model("als"), num_threads=0)
    assert scorer.model.num_threads == 0


def test_command_line_writes_parquet_in_original_ids(tmp_path):
    """`tacitrec recommend --engine dask` starts its own local cluster in a child process."""
    distributed_cases.command_line_matches_local(tmp_path, "dask")


@pytest.mark.parametrize(
    "num_blocks, options, ship",
    [
        (2, dict(), "auto"),
        ((3, 2), dict(use_cg=False, alpha=3.0, regularization_exponent=1.0), "touched"),
    ],
)
def test_als_fit_equals_the_local_fit(engine, num_blocks, options, ship):
    """``tdask.fit``: the schedule of ``tray.fit`` on Dask futures gives the local factors."""
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp

    from tacitrec import AlternatingLeastSquares

    rng = np.random.default_rng(3)
    df = pd.DataFrame(
        {
            "uid": rng.integers(0, 150, 1500) * 3,
            "sku": np.char.add("s", rng.integers(0, 60, 1500).astype(str)),
            "n": rng.integers(1, 4, 1500).astype(np.float32),
        }
    )
    uids, u = np.unique(df["uid"], return_inverse=True)
    iids, i = np.unique(df["sku"], return_inverse=True)
    X = sp.coo_matrix((df["n"].to_numpy(), (u, i)), shape=(len(uids), len(iids))).tocsr()
    params = dict(factors=5, iterations=3, random_state=2, **options)
    local = AlternatingLeastSquares(**params).fit(X, show_progress=False)
    fitted = tdask.fit(
        AlternatingLeastSquares(**params),
        dd.from_pandas(df, npartitions=3, sort=False),
        user_col="uid",
        item_col="sku",
        weight_col="n",
        num_blocks=num_blocks,
        ship=ship,
        show_progress=False,
    )
    for got, want in (
        (fitted.user_factors, local.user_factors),
        (fitted.item_factors, local.item_factors),
    ):
        assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()
    assert fitted.user_ids_.tolist() == uids.tolist()
    assert fitted.item_ids_.tolist() == iids.tolist()
    if ship == "auto":
        # a categorical column with unused categories, in reverse order: the items its rows
        # use, sorted (its unused category was an item, and the factors differed)
        skus = pd.Categorical(df["sku"], categories=["unused", *iids[::-1]])
        again = tdask.fit(
            AlternatingLeastSquares(**params),
            dd.from_pandas(df.assign(sku=skus), npartitions=3, sort=False),
            user_col="uid",
            item_col="sku",
            weight_col="n",
            num_blocks=num_blocks,
            show_progress=False,
        )
        assert again.item_ids_.tolist() == iids.tolist()
        assert np.array_equal(again.item_factors, fitted.item_factors)
    with pytest.raises(ValueError, match="item_col='item' is not a column of interactions"):
        tdask.fit(AlternatingLeastSquares(), dd.from_pandas(df, npartitions=1), user_col="uid")


def test_als_fit_survives_a_worker_killed_mid_fit(engine):
    """A killer thread SIGKILLs the process of the first worker the scheduler shows solving a
    block; the nanny starts a new one, the scheduler reruns the lost tasks from their lineage
    (the driver's values went in as tasks, not scattered data) and the fit still equals the
    local one. Runs last in this module: it waits for the cluster to have 2 workers again."""
    import os

    from als_fit_cases import als_rows, assert_equal_fit, fit_while_killing, local_fit
    from tacitrec import AlternatingLeastSquares

    client = distributed.get_client()
    df = als_rows(n=60000, users=4000, items=1500, seed=2)
    params = dict(factors=48, iterations=3, random_state=5, use_cg=False)
    local, X, uids, iids = local_fit(df, num_threads=1, **params)
    pids = {}  # {worker address: its process}, looked up before each try

    def fit():
        pids.clear()
        pids.update(client.run(os.getpid))
        return tdask.fit(
            AlternatingLeastSquares(**params),
            dd.from_pandas(df, npartitions=3, sort=False),
            user_col="uid",
            item_col="sku",
            weight_col="clicks",
            num_blocks=2,
            show_progress=False,
        )

    def solving():
        return [
            (address, pids[address])
            for address, keys in client.processing().items()
            if any(str(k).startswith("solve-") for k in keys) and address in pids
        ]

    try:
        fitted, killed = fit_while_killing(fit, solving, pause=0.005)
    finally:
        client.wait_for_workers(2, timeout=120)
    assert killed not in client.scheduler_info()["workers"]  # its replacement has another port
    assert_equal_fit(fitted, local, X, uids, iids)

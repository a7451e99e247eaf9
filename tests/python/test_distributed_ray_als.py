"""tacitrec.distributed.ray.fit: ALS across the workers of the session's local Ray (the
``ray_session`` fixture of conftest.py). The fitted factors must equal a local ``fit`` of the
same rows from the same seed for any number of blocks, both solvers, every confidence option
and either way of shipping the fixed side; a worker killed mid-fit costs a retried task, not
the result; bad arguments are errors naming them."""

import os

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # before ray is imported

import signal
import threading
import time

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

import tacitrec.distributed.ray as tray
from tacitrec import AlternatingLeastSquares, BayesianPersonalizedRanking


def _rows(n=2500, users=200, items=90, seed=0):
    """Interaction rows with integer user ids (scattered) and string item ids, some pairs
    repeated (summed by both fits)."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "uid": rng.integers(0, users, n) * 7 + 3,
            "sku": np.char.add("sku", rng.integers(0, items, n).astype(str)),
            "clicks": rng.integers(1, 5, n).astype(np.float32),
        }
    )


def _local(df, **params):
    """The local fit of the same rows, ids numbered in sorted order."""
    uids, u = np.unique(df["uid"].to_numpy(), return_inverse=True)
    iids, i = np.unique(df["sku"].to_numpy(), return_inverse=True)
    X = sp.coo_matrix((df["clicks"].to_numpy(), (u, i)), shape=(len(uids), len(iids))).tocsr()
    model = AlternatingLeastSquares(**params).fit(X, show_progress=False)
    return model, X, uids, iids


def _dataset(df, blocks=3):
    chunks = np.array_split(np.arange(len(df)), blocks)
    return ray.data.from_pandas([df.iloc[c].reset_index(drop=True) for c in chunks])


def _assert_equal_fit(fitted, local, X, uids, iids):
    for got, want in (
        (fitted.user_factors, local.user_factors),
        (fitted.item_factors, local.item_factors),
    ):
        assert got.shape == want.shape
        assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()
    np.testing.assert_array_equal(fitted.user_ids_, uids)
    np.testing.assert_array_equal(fitted.item_ids_, iids)
    users = np.arange(0, X.shape[0], 7)
    ids, _ = fitted.recommend(users, X[users], N=5)
    want, _ = local.recommend(users, X[users], N=5)
    np.testing.assert_array_equal(ids, want)


_BASE = dict(factors=6, iterations=4, random_state=11, regularization=0.05)


@pytest.mark.parametrize(
    "num_blocks, options, ship",
    [
        (1, dict(), "auto"),
        (2, dict(), "touched"),
        (3, dict(), "whole"),
        (1, dict(use_cg=False), "whole"),
        (2, dict(solver="cholesky", alpha=4.0), "touched"),
        ((3, 2), dict(use_cg=False, unobserved_weight=0.2, regularization_exponent=1.0), "auto"),
        (3, dict(regularization_exponent=1.0, init_std=0.1, cg_steps=2), "touched"),
    ],
)
def test_fit_equals_the_local_fit(ray_session, num_blocks, options, ship):
    df = _rows()
    local, X, uids, iids = _local(df, num_threads=1, **_BASE, **options)
    seen = []
    fitted = tray.fit(
        AlternatingLeastSquares(**_BASE, **options),
        _dataset(df),
        user_col="uid",
        item_col="sku",
        weight_col="clicks",
        num_blocks=num_blocks,
        ship=ship,
        show_progress=False,
        callback=lambda it, elapsed, loss: seen.append((it, loss)),
    )
    _assert_equal_fit(fitted, local, X, uids, iids)
    assert seen == [(it, None) for it in range(_BASE["iterations"])]
    info = fitted.fit_info_
    blocks = (num_blocks, num_blocks) if isinstance(num_blocks, int) else num_blocks
    assert (info["user"]["blocks"], info["item"]["blocks"]) == blocks
    assert sum(info["user"]["rows"]) == len(uids) and sum(info["user"]["nnz"]) == X.nnz
    if ship != "auto":
        assert all(
            t == (ship == "touched") for t in info["user"]["touched"] + info["item"]["touched"]
        )


def test_unweighted_rows_weigh_one(ray_session):
    df = _rows(seed=1)
    local, X, uids, iids = _local(df.assign(clicks=np.float32(1)), num_threads=1, **_BASE)
    fitted = tray.fit(
        AlternatingLeastSquares(**_BASE),
        _dataset(df),
        user_col="uid",
        item_col="sku",
        num_blocks=2,
        show_progress=False,
    )
    _assert_equal_fit(fitted, local, X, uids, iids)


def _solve_workers():
    """Pids of the Ray workers running a block solve (their process title names the task)."""
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmd = fh.read()
        except OSError:
            continue
        if cmd.startswith(b"ray::solve"):
            pids.append(int(pid))
    return pids


def test_a_worker_killed_mid_fit_costs_a_retry_not_the_result(ray_session):
    """A killer thread SIGKILLs the first worker process it finds solving a block; Ray runs
    that task again from the same object-store inputs and the fit still equals the local one."""
    df = _rows(n=60000, users=4000, items=1500, seed=2)
    params = dict(factors=48, iterations=3, random_state=5, use_cg=False)
    local, X, uids, iids = _local(df, num_threads=1, **params)
    killed, stop = [], threading.Event()

    def killer():
        while not stop.is_set() and not killed:
            for pid in _solve_workers():
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                except ProcessLookupError:
                    continue
                break
            time.sleep(0.002)

    for _attempt in range(3):  # a fit whose solves all ended between two looks runs again
        stop.clear()
        thread = threading.Thread(target=killer, daemon=True)
        thread.start()
        try:
            fitted = tray.fit(
                AlternatingLeastSquares(**params),
                _dataset(df),
                user_col="uid",
                item_col="sku",
                weight_col="clicks",
                num_blocks=2,
                show_progress=False,
            )
        finally:
            stop.set()
            thread.join()
        if killed:
            break
    assert killed, "no block solve was seen running: nothing was killed"
    assert (
        not os.path.exists(f"/proc/{killed[0]}/cmdline")
        or b"ray::solve" not in open(f"/proc/{killed[0]}/cmdline", "rb").read()
    )
    _assert_equal_fit(fitted, local, X, uids, iids)


def test_bad_arguments_name_themselves(ray_session):
    df = _rows(n=200)
    ds = _dataset(df, 1)
    cols = dict(user_col="uid", item_col="sku", show_progress=False)
    with pytest.raises(
        TypeError, match="model must be an unfitted tacitrec AlternatingLeastSquares"
    ):
        tray.fit(BayesianPersonalizedRanking(), ds, **cols)
    fitted, *_ = _local(df, **_BASE)
    with pytest.raises(ValueError, match="model is already fitted"):
        tray.fit(fitted, ds, **cols)
    with pytest.raises(ValueError, match="ials\\+\\+"):
        tray.fit(AlternatingLeastSquares(solver="ials++"), ds, **cols)
    with pytest.raises(ValueError, match="calculate_training_loss"):
        tray.fit(AlternatingLeastSquares(calculate_training_loss=True), ds, **cols)
    with pytest.raises(ValueError, match="factors"):
        tray.fit(AlternatingLeastSquares(factors=0), ds, **cols)
    with pytest.raises(ValueError, match="user_col='user' is not a column of interactions"):
        tray.fit(AlternatingLeastSquares(), ds, item_col="sku", show_progress=False)
    with pytest.raises(ValueError, match="weight_col='w' is not a column"):
        tray.fit(AlternatingLeastSquares(), ds, weight_col="w", **cols)
    with pytest.raises(TypeError, match="interactions must be a ray.data.Dataset"):
        tray.fit(AlternatingLeastSquares(), df, **cols)
    with pytest.raises(ValueError, match="ship must be one of"):
        tray.fit(AlternatingLeastSquares(), ds, ship="some", **cols)
    with pytest.raises(ValueError, match="num_blocks must be at least 1"):
        tray.fit(AlternatingLeastSquares(), ds, num_blocks=0, **cols)
    with pytest.raises(ValueError, match="must be different columns"):
        tray.fit(AlternatingLeastSquares(), ds, weight_col="sku", **cols)
    notes = ray.data.from_pandas(df.assign(note="x"))
    with pytest.raises(ValueError, match="weight_col='note' must hold numbers"):
        tray.fit(AlternatingLeastSquares(), notes, weight_col="note", **cols)
    nulls = ray.data.from_pandas(df.assign(uid=df["uid"].astype(float).where(df.index > 0)))
    with pytest.raises(ValueError, match="user_col='uid' holds 1 null"):
        tray.fit(AlternatingLeastSquares(), nulls, **cols)


def test_blocks_hold_about_equal_work():
    from tacitrec.distributed import _als

    np.testing.assert_array_equal(_als.bounds(np.ones(10), 3), [0, 4, 7, 10])
    # one heavy row: a block of its own, the others still get a row each
    np.testing.assert_array_equal(_als.bounds(np.array([100.0, 1, 1, 1, 1]), 3), [0, 1, 2, 5])
    np.testing.assert_array_equal(_als.bounds(np.array([1.0, 1, 1, 1, 100]), 3), [0, 3, 4, 5])
    np.testing.assert_array_equal(_als.bounds(np.ones(2), 5), [0, 1, 2])
    costs = _als.row_costs(np.random.default_rng(0).zipf(1.5, 1000) % 500, 64)
    edges = _als.bounds(costs, 4)
    sums = [costs[a:b].sum() for a, b in zip(edges[:-1], edges[1:])]
    assert max(sums) - min(sums) <= 2 * costs.max()

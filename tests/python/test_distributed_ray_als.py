"""tacitrec.distributed.ray.fit: ALS across the workers of the session's local Ray (the
``ray_session`` fixture of conftest.py). The fitted factors must equal a local ``fit`` of the
same rows from the same seed for any number of blocks, both solvers, every confidence option
and either way of shipping the fixed side; a worker killed mid-fit costs a retried task, not
the result; bad arguments are errors naming them."""

import os

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # before ray is imported

import numpy as np
import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

import tacitrec.distributed.ray as tray
from als_fit_cases import als_rows, assert_equal_fit, fit_while_killing, local_fit
from tacitrec import AlternatingLeastSquares, BayesianPersonalizedRanking


def _dataset(df, blocks=3):
    chunks = np.array_split(np.arange(len(df)), blocks)
    return ray.data.from_pandas([df.iloc[c].reset_index(drop=True) for c in chunks])


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
    df = als_rows()
    local, X, uids, iids = local_fit(df, num_threads=1, **_BASE, **options)
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
    assert_equal_fit(fitted, local, X, uids, iids)
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
    df = als_rows(seed=1)
    local, X, uids, iids = local_fit(df.assign(clicks=np.float32(1)), num_threads=1, **_BASE)
    fitted = tray.fit(
        AlternatingLeastSquares(**_BASE),
        _dataset(df),
        user_col="uid",
        item_col="sku",
        num_blocks=2,
        show_progress=False,
    )
    assert_equal_fit(fitted, local, X, uids, iids)


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
    df = als_rows(n=60000, users=4000, items=1500, seed=2)
    params = dict(factors=48, iterations=3, random_state=5, use_cg=False)
    local, X, uids, iids = local_fit(df, num_threads=1, **params)
    fitted, killed = fit_while_killing(
        lambda: tray.fit(
            AlternatingLeastSquares(**params),
            _dataset(df),
            user_col="uid",
            item_col="sku",
            weight_col="clicks",
            num_blocks=2,
            show_progress=False,
        ),
        lambda: [(pid, pid) for pid in _solve_workers()],
        pause=0.002,
    )
    assert (
        not os.path.exists(f"/proc/{killed}/cmdline")
        or b"ray::solve" not in open(f"/proc/{killed}/cmdline", "rb").read()
    )
    assert_equal_fit(fitted, local, X, uids, iids)


def test_bad_arguments_name_themselves(ray_session):
    df = als_rows(n=200)
    ds = _dataset(df, 1)
    cols = dict(user_col="uid", item_col="sku", show_progress=False)
    with pytest.raises(
        TypeError, match="model must be an unfitted tacitrec AlternatingLeastSquares"
    ):
        tray.fit(BayesianPersonalizedRanking(), ds, **cols)
    fitted, *_ = local_fit(df, **_BASE)
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

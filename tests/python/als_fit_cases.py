"""What the distributed ALS fit tests of every engine share (test_distributed_ray_als.py,
test_distributed_dask.py): interaction rows in original ids, the local fit they must equal, the
comparison, and a fit run while a worker solving a block is killed."""

import os
import signal
import threading
import time

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tacitrec import AlternatingLeastSquares


def als_rows(n=2500, users=200, items=90, seed=0):
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


def local_fit(df, **params):
    """The local fit of the same rows, ids numbered in sorted order: ``(model, X, uids,
    iids)``."""
    uids, u = np.unique(df["uid"].to_numpy(), return_inverse=True)
    iids, i = np.unique(df["sku"].to_numpy(), return_inverse=True)
    X = sp.coo_matrix((df["clicks"].to_numpy(), (u, i)), shape=(len(uids), len(iids))).tocsr()
    model = AlternatingLeastSquares(**params).fit(X, show_progress=False)
    return model, X, uids, iids


def assert_equal_fit(fitted, local, X, uids, iids):
    """The distributed fit's factors equal the local ones (to float rounding), its ids are the
    sorted original ids, and both recommend the same items."""
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


def fit_while_killing(fit, victims, pause):
    """``(fitted, killed)``: the result of ``fit()``, run while a killer thread looks every
    ``pause`` seconds for a worker solving a block (``victims()``: ``(name, pid)`` pairs) and
    SIGKILLs the first it finds, and the name of the one killed. A fit whose solves all ended
    between two looks runs again (3 tries); none killed fails the test."""
    killed, stop = [], threading.Event()

    def killer():
        while not stop.is_set() and not killed:
            for name, pid in victims():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    continue
                killed.append(name)
                break
            time.sleep(pause)

    for _attempt in range(3):
        stop.clear()
        thread = threading.Thread(target=killer, daemon=True)
        thread.start()
        try:
            fitted = fit()
        finally:
            stop.set()
            thread.join()
        if killed:
            break
    assert killed, "no block solve was seen running: nothing was killed"
    return fitted, killed[0]

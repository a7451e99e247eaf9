"""Shared helpers of the side-by-side benchmarks (peers are optional dev dependencies)."""

from __future__ import annotations

import os
import platform
import time

import numpy as np
import scipy.sparse as sp


def power_law_user_items(n_users: int, n_items: int, mean_per_user: float, seed: int = 0,
                         item_skew: float = 0.8, user_skew: float = 1.8) -> sp.csr_matrix:
    """Users with power-law activity (Zipf counts) choosing items with power-law popularity; binary
    CSR float32 with about ``mean_per_user`` distinct items per user (repeat draws of popular items
    collapse, so the draw count is corrected once)."""
    X = _draw(n_users, n_items, mean_per_user, seed, item_skew, user_skew)
    scale = mean_per_user * n_users / max(X.nnz, 1)
    return _draw(n_users, n_items, mean_per_user * scale, seed, item_skew, user_skew)


def _draw(n_users, n_items, mean_per_user, seed, item_skew, user_skew):
    rng = np.random.default_rng(seed)
    pop = 1.0 / np.arange(1, n_items + 1) ** item_skew
    pop = rng.permutation(pop / pop.sum())
    raw = np.minimum(rng.zipf(user_skew, n_users), 200).astype(np.float64)
    counts = np.clip(np.rint(raw * mean_per_user / raw.mean()), 1, n_items).astype(np.int64)
    rows = np.repeat(np.arange(n_users), counts)
    cols = rng.choice(n_items, size=counts.sum(), p=pop)
    X = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_users, n_items))
    X.sum_duplicates()
    X.data[:] = 1.0
    return X


def best_of(fn, repeat: int = 5):
    """(min seconds, result of the last call) over ``repeat`` calls."""
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), float(np.median(times)), out


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, " \
           f"Python {platform.python_version()}"


DATA = os.environ.get("TACITREC_DATA",
                      os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data"))


def _index(values):
    uniq, inv = np.unique(values, return_inverse=True)
    return inv, len(uniq)


def load_real(name: str):
    """users x items CSR float32 of a benchmark dataset in ``DATA``, or None when absent.
    ``ml-100k``: ratings >= 4 as 1; ``lastfm-2k``: play counts as weights."""
    if name == "ml-100k":
        path = os.path.join(DATA, "ml-100k", "ml-100k.inter")
        if not os.path.exists(path):
            return None
        raw = np.loadtxt(path, delimiter="\t", skiprows=1, usecols=(0, 1, 2))
        raw = raw[raw[:, 2] >= 4]
        values = np.ones(len(raw), dtype=np.float32)
    elif name == "lastfm-2k":
        path = os.path.join(DATA, "lastfm-2k", "user_artists.dat")
        if not os.path.exists(path):
            return None
        raw = np.loadtxt(path, delimiter="\t", skiprows=1)
        values = raw[:, 2].astype(np.float32)
    else:
        raise ValueError(name)
    users, n_users = _index(raw[:, 0].astype(np.int64))
    items, n_items = _index(raw[:, 1].astype(np.int64))
    X = sp.csr_matrix((values, (users, items)), shape=(n_users, n_items))
    X.sum_duplicates()
    return X


def peak_rss_mb() -> float:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

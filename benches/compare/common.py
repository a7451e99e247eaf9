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

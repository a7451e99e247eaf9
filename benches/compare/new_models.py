"""Timing of the issue-16 models on synthetic data of the target shapes (2 threads):

* EASE: fit on 10,000 items (target: under 10 s);
* the spectral filters with a 256-dimensional SVD on 30,000 users x 40,000 items x 800,000
  interactions, fit plus scoring every user (top 20, liked items removed; target: under 60 s).

Usage: python benches/compare/new_models.py [ease] [gf-cf] [bspm] [chebycf] [--threads N]
Popularity is Zipf-like (as in check-in and movie data), users' lengths vary.
"""

import argparse
import time

import numpy as np
import scipy.sparse as sp

from tacitrec import EASERecommender, SpectralFilterRecommender


def synthetic(n_users, n_items, nnz, seed=0):
    rng = np.random.default_rng(seed)
    item_p = 1.0 / np.arange(1, n_items + 1) ** 0.8
    item_p /= item_p.sum()
    user_p = rng.lognormal(0.0, 1.0, n_users)
    user_p /= user_p.sum()
    rows = rng.choice(n_users, size=int(nnz * 1.15), p=user_p)
    cols = rng.permutation(n_items)[rng.choice(n_items, size=rows.size, p=item_p)]
    X = sp.csr_matrix((np.ones(rows.size, np.float32), (rows, cols)), shape=(n_users, n_items))
    X.data[:] = 1
    return X


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="*", default=["ease", "gf-cf", "bspm", "chebycf"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--factors", type=int, default=256)
    args = ap.parse_args()
    if "ease" in args.models:
        X = synthetic(60_000, 10_000, 3_000_000, seed=1)
        t = time.perf_counter()
        EASERecommender(num_threads=args.threads).fit(X, show_progress=False)
        print(
            f"EASE fit, {X.shape[0]:,} users x {X.shape[1]:,} items x {X.nnz:,}: "
            f"{time.perf_counter() - t:.1f} s"
        )
    X = synthetic(30_000, 40_000, 800_000, seed=2)
    users = np.arange(X.shape[0])
    for method in ("gf-cf", "bspm", "chebycf"):
        if method not in args.models:
            continue
        t, c = time.perf_counter(), time.process_time()
        m = SpectralFilterRecommender(
            method=method, factors=args.factors, num_threads=args.threads
        ).fit(X, show_progress=False)
        fit, fit_cpu = time.perf_counter() - t, time.process_time() - c
        m.recommend(users, X, N=20)
        total, total_cpu = time.perf_counter() - t, time.process_time() - c
        # process CPU seconds (all threads) as well: on a shared machine the wall time also
        # counts other jobs' share of the cores
        print(
            f"{method} (k={args.factors}), {X.shape[0]:,} x {X.shape[1]:,} x {X.nnz:,}: "
            f"fit {fit:.1f} s ({fit_cpu:.1f} CPU s), fit + scoring every user {total:.1f} s "
            f"({total_cpu:.1f} CPU s)",
            flush=True,
        )


if __name__ == "__main__":
    main()

"""Quality of the issue-16 models against ALS and BM25 on MovieLens-100K (rating >= 4, 0/1) and
Last.fm-2K (0/1 artists), every model tuned the same way: a grid on a validation split carved from
the training split (tacitrec.model_selection), the best setting refit on the whole training split
and scored once on the test split (ndcg@10, liked items removed).

Usage: python benches/compare/quality_new_models.py [ml-100k] [lastfm-2k] [--data DIR]
Skips a data set whose folder is missing (the data is not part of the repository).
"""

import argparse
import os
import time

import numpy as np
import scipy.sparse as sp

from tacitrec import (
    AlternatingLeastSquares,
    BM25Recommender,
    EASERecommender,
    RP3BetaRecommender,
    SpectralFilterRecommender,
)
from tacitrec.evaluation import ranking_metrics_at_k, train_test_split
from tacitrec.model_selection import grid_search, validation_split


def load(name, root):
    if name == "ml-100k":
        path = os.path.join(root, "ml-100k", "ml-100k.inter")
        raw = np.loadtxt(path, skiprows=1, usecols=(0, 1, 2))
        raw = raw[raw[:, 2] >= 4]
    else:
        path = os.path.join(root, "lastfm-2k", "user_artists.dat")
        raw = np.loadtxt(path, skiprows=1)
    if not os.path.exists(path):
        return None
    users, u = np.unique(raw[:, 0], return_inverse=True)
    items, i = np.unique(raw[:, 1], return_inverse=True)
    X = sp.csr_matrix((np.ones(len(u), np.float32), (u, i)), shape=(len(users), len(items)))
    X.data[:] = 1
    return X


def spectral(method, **fixed):
    return lambda **kw: SpectralFilterRecommender(method=method, **fixed, **kw)


GRIDS = {
    "ALS": (
        lambda **kw: AlternatingLeastSquares(random_state=0, **kw),
        {
            "iterations": [30],
            "factors": [32, 64, 128],
            "regularization": [0.01, 0.1, 1.0],
            "alpha": [1.0, 10.0],
        },
    ),
    "BM25": (BM25Recommender, {"K": [20, 50, 100, 200], "K1": [1.2, 100.0], "B": [0.5, 0.8]}),
    "EASE": (EASERecommender, {"regularization": [10.0, 50.0, 100.0, 200.0, 500.0, 1000.0]}),
    "RP3beta": (
        RP3BetaRecommender,
        {"K": [50, 100, 200], "alpha": [0.5, 0.8, 1.0], "beta": [0.2, 0.4, 0.6]},
    ),
    "GF-CF": (
        spectral("gf-cf"),
        {"factors": [16, 32, 64, 128, 256], "ideal_weight": [0.0, 0.1, 0.3, 0.5]},
    ),
    "BSPM": (
        spectral("bspm"),
        {
            "factors": [32, 64, 128, 256],
            "ideal_weight": [0.1, 0.2, 0.3],
            "sharpen_time": [0.5, 1.0, 2.5],
        },
    ),
    "ChebyCF": (
        spectral("chebycf"),
        {
            "factors": [32, 64, 256],
            "ideal_weight": [0.1, 0.2],
            "flatness": [1.5, 5.0, 15.0],
            "degree_power": [0.0, 0.2, 0.4],
        },
    ),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("datasets", nargs="*", default=["ml-100k", "lastfm-2k"])
    ap.add_argument(
        "--data",
        default=os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data"),
    )
    ap.add_argument("--models", default=",".join(GRIDS))
    args = ap.parse_args()
    for name in args.datasets:
        X = load(name, args.data)
        if X is None:
            print(f"{name}: not found under {args.data}, skipped")
            continue
        train, test = train_test_split(X, 0.8, random_state=0)
        fit_part, validation = validation_split(train, 0.2, random_state=0)
        print(f"{name}: {X.shape[0]} users x {X.shape[1]} items, {X.nnz} interactions")
        for model in args.models.split(","):
            make, grid = GRIDS[model]
            t = time.perf_counter()
            search = grid_search(
                make, grid, fit_part, validation, metric="ndcg", K=10, show_progress=False
            )
            best = search.refit(train)
            score = ranking_metrics_at_k(best, train, test, K=10, show_progress=False)["ndcg"]
            print(
                f"  {model:8s} ndcg@10 {score:.4f}  (validation {search.best_score:.4f}, "
                f"best {search.best_params}, {time.perf_counter() - t:.0f} s)",
                flush=True,
            )


if __name__ == "__main__":
    main()

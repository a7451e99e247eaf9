"""Command line: ``python -m tacitrec`` (or the ``tacitrec`` script).

``demo`` (the default) generates a seeded synthetic dataset, fits the popularity baseline, BM25
item-item kNN and ALS, evaluates them on a held-out split and prints example recommendations.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import List, Optional

import numpy as np

from .als import AlternatingLeastSquares
from .datasets import synthetic
from .evaluation import ranking_metrics_at_k, train_test_split
from .knn import BM25Recommender
from .popularity import PopularityRecommender


def demo(args) -> int:
    data = synthetic(n_users=args.users, n_items=args.items, random_state=args.seed)
    X = data.user_items
    print(f"synthetic data: {X.shape[0]} users x {X.shape[1]} items, {X.nnz} interactions "
          f"(seed {args.seed})")
    train, test = train_test_split(X, 0.8, random_state=args.seed)
    rows = []
    models = [
        ("popularity", PopularityRecommender(num_threads=args.threads)),
        ("popularity (weighted)", PopularityRecommender(weighted=True, num_threads=args.threads)),
        ("bm25 knn (K=50)", BM25Recommender(K=50, num_threads=args.threads)),
        ("als (64 factors)", AlternatingLeastSquares(factors=64, regularization=0.05, alpha=2.0,
                                                     iterations=15, random_state=args.seed,
                                                     num_threads=args.threads)),
    ]
    for name, model in models:
        t0 = time.perf_counter()
        model.fit(train, show_progress=True)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        metrics = ranking_metrics_at_k(model, train, test, K=args.k, show_progress=True,
                                       num_threads=args.threads)
        rows.append((name, fit_s, time.perf_counter() - t0, metrics))

    keys = ["precision", "recall", "map", "ndcg", "auc", "mrr", "hit_rate"]
    print(f"\nmetrics at K={args.k} on the held-out 20%:")
    print(f"{'model':<24}{'fit s':>8}{'eval s':>8}" + "".join(f"{k:>10}" for k in keys))
    for name, fit_s, eval_s, m in rows:
        print(f"{name:<24}{fit_s:>8.3f}{eval_s:>8.3f}" + "".join(f"{m[k]:>10.4f}" for k in keys))

    users = np.arange(3)
    for name, model in (models[0], models[-1]):
        ids, scores = model.recommend(users, train[users], N=5)
        print(f"\nexample recommendations ({name}, already-seen items removed):")
        for u, row, sc in zip(users, ids, scores):
            shown = ", ".join(f"{i} ({s:.3g})" for i, s in zip(row, sc))
            print(f"  user {u}: {shown}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="tacitrec", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    d = sub.add_parser("demo", help="fit and evaluate on generated data")
    for p in (parser, d):
        p.add_argument("--users", type=int, default=5000, help="synthetic users (default 5000)")
        p.add_argument("--items", type=int, default=2000, help="synthetic items (default 2000)")
        p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
        p.add_argument("-k", type=int, default=10, help="cut-off K of the metrics (default 10)")
        p.add_argument("--threads", type=int, default=0, help="threads, 0 = all cores")
    args = parser.parse_args(argv)
    return demo(args)


if __name__ == "__main__":
    sys.exit(main())

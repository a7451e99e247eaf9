"""``tacitrec demo``: fits popularity, BM25 kNN, ALS and LightFM (with features) on generated data
with planted structure, or on a file or data set given with ``--data``, and prints their metrics
on a held-out 20%, example recommendations and, on generated data, a cold-start recommendation.
"""

from __future__ import annotations

import os
import time
from typing import Any, Dict, List, Tuple

import numpy as np
import scipy.sparse as sp

from . import _io
from .als import AlternatingLeastSquares
from .cli import METRICS, CliError, read, reader_options
from .evaluation import ranking_metrics_at_k, train_test_split
from .knn import BM25Recommender
from .lightfm import LightFM
from .popularity import PopularityRecommender


def add_parser(subparsers) -> None:
    """The ``demo`` command and its options."""
    d = subparsers.add_parser(
        "demo",
        help="fit and evaluate models on generated data",
        description="Generates seeded data with planted structure and "
        "user/item features (or reads --data), fits popularity, BM25 kNN, "
        "ALS and LightFM WARP with the features, and prints metrics on a "
        "held-out 20%% and example recommendations.",
    )
    d.add_argument(
        "--data",
        metavar="PATH",
        help="an interaction file, or a MovieLens / "
        "Last.fm folder or archive, instead of generated data",
    )
    d.add_argument("--users", type=int, default=20000, help="generated users (default 20000)")
    d.add_argument("--items", type=int, default=5000, help="generated items (default 5000)")
    d.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    d.add_argument("-k", type=int, default=10, help="cut-off K of the metrics (default 10)")
    d.add_argument("--epochs", type=int, default=20, help="LightFM epochs (default 20)")
    d.add_argument("--threads", type=int, default=0, help="threads, 0 = all cores (default)")
    reader_options(d)


def _data(args):
    """(name, user_items, user_features, item_features, synthetic data or None)."""
    from .datasets import load_lastfm, load_movielens, synthetic

    if args.data is None:
        s = synthetic(n_users=args.users, n_items=args.items, random_state=args.seed)
        return (
            f"synthetic data (seed {args.seed})",
            s.user_items,
            _io.with_identity(s.user_features),
            _io.with_identity(s.item_features),
            s,
        )
    if os.path.isfile(args.data) and not args.data.lower().endswith(".zip"):
        interactions = read(args.data, args)
        return os.path.basename(args.data), interactions.matrix, None, None, None
    errors = []
    for load in (load_movielens, load_lastfm):
        try:
            d = load(args.data)
        except ValueError as e:
            errors.append(str(e))
            continue
        X = d.user_items
        if args.min_weight is not None:
            X = X.multiply(X >= args.min_weight).tocsr()
            X.eliminate_zeros()
        uf = None if d.user_features is None else _io.with_identity(d.user_features)
        itf = None if d.item_features is None else _io.with_identity(d.item_features)
        return os.path.basename(os.path.normpath(args.data)), X.astype(np.float32), uf, itf, None
    raise CliError(
        f"--data {args.data!r} is neither an interaction file nor a dataset folder "
        "the loaders know: " + "; ".join(errors)
    )


def run(args) -> int:
    """``tacitrec demo``."""
    name, X, Fu, Fi, planted = _data(args)
    print(f"{name}: {X.shape[0]} users x {X.shape[1]} items, {X.nnz} interactions")
    train, test = train_test_split(X, 0.8, random_state=args.seed)
    feats = {k: v for k, v in (("user_features", Fu), ("item_features", Fi)) if v is not None}
    threads = args.threads
    lightfm_name = "lightfm warp" + (" + features" if feats else "")
    models: List[Tuple[str, Any, Dict[str, Any]]] = [  # (label, model, fit/score keywords)
        ("popularity", PopularityRecommender(num_threads=threads), {}),
        ("bm25 knn (K=50)", BM25Recommender(K=50, num_threads=threads), {}),
        (
            "als (64 factors)",
            AlternatingLeastSquares(
                factors=64,
                regularization=0.05,
                alpha=2.0,
                iterations=15,
                random_state=args.seed,
                num_threads=threads,
            ),
            {},
        ),
        (
            lightfm_name,
            LightFM(no_components=32, loss="warp", random_state=args.seed, num_threads=threads),
            feats,
        ),
    ]
    rows = []
    for label, model, fkw in models:
        t0 = time.perf_counter()
        if isinstance(model, LightFM):
            model.fit(train, epochs=args.epochs, num_threads=threads, verbose=True, **fkw)
        else:
            model.fit(train, show_progress=True)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        metrics = ranking_metrics_at_k(
            model, train, test, K=args.k, show_progress=True, num_threads=threads, **fkw
        )
        rows.append((label, fit_s, time.perf_counter() - t0, metrics))

    print(f"\nmetrics at K={args.k} on the held-out 20%:")
    print(f"{'model':<26}{'fit s':>8}{'eval s':>8}" + "".join(f"{k:>10}" for k in METRICS))
    for label, fit_s, eval_s, m in rows:
        print(
            f"{label:<26}{fit_s:>8.3f}{eval_s:>8.3f}" + "".join(f"{m[k]:>10.4f}" for k in METRICS)
        )

    users = np.arange(min(3, X.shape[0]))
    for label, model, fkw in (models[0], models[2], models[3]):
        ids, scores = model.recommend(users, train[users], N=5, **fkw)
        print(f"\nexample recommendations ({label}, already-seen items removed):")
        for u, row, sc in zip(users, ids, scores):
            shown = ", ".join(f"{i} ({s:.3g})" for i, s in zip(row, sc) if i >= 0)
            print(f"  user {u}: {shown}")
    if planted is not None:
        _cold_start(models[3][1], planted, Fi)
    return 0


def _cold_start(model: LightFM, d, Fi) -> None:
    """Recommends to a user who is not in the training data, described by one feature."""
    n_users, n_features = d.user_features.shape
    taste = int(np.bincount(d.user_cluster).argmax())
    row = np.zeros((1, n_users + n_features), dtype=np.float32)
    row[0, n_users + taste] = 1.0  # no identity feature: only the taste feature is known
    ids, _ = model.recommend(
        0,
        None,
        N=10,
        filter_already_liked_items=False,
        user_features=sp.csr_matrix(row),
        item_features=Fi,
    )
    hits = int((d.item_cluster[ids] == taste).sum())
    print(
        f"\ncold start (lightfm): a new user known only by the feature "
        f"'{d.user_feature_names[taste]}' gets {', '.join(map(str, ids))}; {hits} of 10 are "
        f"from cluster {taste} (a random item is with probability "
        f"{np.mean(d.item_cluster == taste):.2f})"
    )

"""Item-item kNN: tacitrec against implicit 0.7.3 in one run.

    python benches/compare/knn.py [--threads 2] [--repeat 3] [--skip-speed] [--skip-quality]
                                  [--json PATH] [--quick]

Speed and memory (synthetic power-law data, 80,000 users x 10,000 items x ~4M interactions, K=100):
fit time of each weighting (best of ``--repeat``, each fit in a forked process) with the fit's
peak resident memory above the data, batch recommend of 20,000 users (N=10, liked filtered), and
the bytes of the fitted similarity. Quality (when ../shared/data exists): precision@10 and
ndcg@10 on MovieLens-100K (rating >= 4) and Last.fm-2K (play counts), 80/20 ``train_test_split``
with seed 42, K=50, both libraries scored by tacitrec's evaluator. ``--quick``: a tenth of the
synthetic data and 1 repeat.
"""

from __future__ import annotations

import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(__file__))

import numpy as np

from common import (
    best_of,
    cli,
    forked,
    load_real,
    machine,
    parse,
    peer,
    record,
    synthetic,
)

KINDS = ["ItemItemRecommender", "CosineRecommender", "TFIDFRecommender", "BM25Recommender"]


class ImplicitAdapter:
    """Serves an implicit kNN model through tacitrec's evaluator: implicit's recommend can return
    liked items (scored 0) and fewer than N ids; the evaluator takes its lists as they are."""

    def __init__(self, model, n_items):
        self.model, self.n_items = model, n_items

    def _shape(self):
        return None, self.n_items

    def recommend(self, userid, user_items, N=10, filter_already_liked_items=True, **_):
        ids, scores = self.model.recommend(
            userid,
            user_items.astype(np.float64),  # the evaluator hands peers a scipy matrix
            N=N,
            filter_already_liked_items=filter_already_liked_items,
        )
        return np.asarray(ids), np.asarray(scores)


def sim_bytes(m) -> int:
    return m.data.nbytes + m.indices.nbytes + m.indptr.nbytes


def speed(args):
    import implicit
    import implicit.nearest_neighbours as inn
    import tacitrec

    X, data = synthetic(args.quick)
    X64 = X.astype(np.float64)  # implicit's ItemItemRecommender rejects float32
    peer_name = f"implicit {implicit.__version__}"
    print(
        f"\n## speed: {X.shape[0]} users x {X.shape[1]} items, {X.nnz:,} interactions, "
        f"K={args.K}, {args.threads} threads"
    )
    users = np.arange(min(20_000, X.shape[0]))
    rows = X[users]
    rows64 = rows.astype(np.float64)

    def fit(model, x):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(x, show_progress=False)
        return sim_bytes(model.similarity)

    # forked fits first: the thread pools of in-process fits would not survive a fork
    fits = {
        kind: [
            forked(
                lambda lib=lib, x=x: fit(lib(K=args.K, num_threads=args.threads), x), args.repeat
            )
            for lib, x in ((getattr(tacitrec, kind), X), (getattr(inn, kind), X64))
        ]
        for kind in KINDS
    }
    print(
        "| model | fit tacitrec s | fit implicit s | fit speed-up | recommend tacitrec users/s "
        "| recommend implicit users/s | recommend speed-up | similarity MB tacitrec / implicit "
        "| fit peak MB tacitrec / implicit |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for kind in KINDS:
        (o_sim, t_fit, o_mb), (p_sim, p_fit, p_mb) = fits[kind]
        ours = getattr(tacitrec, kind)(K=args.K, num_threads=args.threads)
        peer = getattr(inn, kind)(K=args.K, num_threads=args.threads)
        fit(ours, X)
        fit(peer, X64)
        t_rec, _, _ = best_of(lambda m=ours: m.recommend(users, rows, N=10), args.repeat)
        p_rec, _, _ = best_of(lambda m=peer: m.recommend(users, rows64, N=10), args.repeat)
        model = kind.removesuffix("Recommender")
        for section, case, metric, o, p in (
            ("speed", "fit", "seconds", t_fit, p_fit),
            (
                "speed",
                f"recommend {len(users):,} users, N=10",
                "users_per_s",
                len(users) / t_rec,
                len(users) / p_rec,
            ),
            ("memory", "fit, peak above data", "peak_mb", o_mb, p_mb),
            ("memory", "similarity matrix", "mb", o_sim / 2**20, p_sim / 2**20),
        ):
            record(section, model, case, metric, o, p, peer_name, data)
        mb = "-" if o_mb is None else f"{o_mb:.0f} / {p_mb:.0f}"
        print(
            f"| {kind} | {t_fit:.3f} | {p_fit:.3f} | {p_fit / t_fit:.1f}x | "
            f"{len(users) / t_rec:,.0f} | {len(users) / p_rec:,.0f} | {p_rec / t_rec:.1f}x | "
            f"{o_sim / 2**20:.1f} / {p_sim / 2**20:.1f} | {mb} |",
            flush=True,
        )


def quality(args):
    import implicit
    import implicit.nearest_neighbours as inn
    import tacitrec
    from tacitrec.evaluation import ranking_metrics_at_k, train_test_split

    for name in ("ml-100k", "lastfm-2k"):
        X = load_real(name)
        if X is None:
            print(f"\n{name}: data folder absent, skipped")
            continue
        train, test = train_test_split(X, 0.8, random_state=42)
        print(
            f"\n## quality: {name} ({X.shape[0]} users x {X.shape[1]} items, {X.nnz} "
            f"interactions), K=50, 80/20 split seed 42"
        )
        print(
            "| model | p@10 tacitrec | p@10 implicit | ratio | ndcg@10 tacitrec | "
            "ndcg@10 implicit | ratio |"
        )
        print("|---|---|---|---|---|---|---|")
        for kind in KINDS + ["PearsonRecommender"]:
            ours = getattr(tacitrec, kind)(K=50, num_threads=args.threads)
            ours.fit(train, show_progress=False)
            m = ranking_metrics_at_k(ours, train, test, K=10, show_progress=False)
            p = None
            if hasattr(inn, kind):
                peer = getattr(inn, kind)(K=50, num_threads=args.threads)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    peer.fit(train.astype(np.float64), show_progress=False)  # it needs float64
                    p = ranking_metrics_at_k(
                        ImplicitAdapter(peer, X.shape[1]), train, test, K=10, show_progress=False
                    )
            for metric in ("precision", "ndcg"):
                record(
                    "quality",
                    kind.removesuffix("Recommender"),
                    "K=50 neighbours",
                    f"{metric}@10",
                    m[metric],
                    p and p[metric],
                    f"implicit {implicit.__version__}",
                    name,
                )
            if p is None:
                print(f"| {kind} | {m['precision']:.4f} | - | - | {m['ndcg']:.4f} | - | - |")
                continue
            print(
                f"| {kind} | {m['precision']:.4f} | {p['precision']:.4f} | "
                f"{m['precision'] / p['precision']:.3f} | {m['ndcg']:.4f} | {p['ndcg']:.4f} | "
                f"{m['ndcg'] / p['ndcg']:.3f} |"
            )


def main():
    ap = cli(__doc__)
    ap.add_argument("--K", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-quality", action="store_true")
    args = parse(ap)
    if args.quick:
        args.repeat = 1
    implicit = peer("implicit")
    import tacitrec

    print(f"machine: {machine()}; tacitrec {tacitrec.__version__}, implicit {implicit.__version__}")
    if not args.skip_speed:  # first: it forks
        speed(args)
    if not args.skip_quality:
        quality(args)


if __name__ == "__main__":
    main()

"""Item-item kNN: tacitrec against implicit 0.7.3 in one run.

    python benches/compare/knn.py [--threads 2] [--skip-speed] [--skip-quality]

Speed and memory (synthetic power-law data, 80,000 users x 10,000 items x ~4M interactions, K=100):
fit time of each weighting, batch recommend of 20,000 users (N=10, liked filtered), and the bytes
of the fitted similarity. Quality (when ../shared/data exists): precision@10 and ndcg@10 on
MovieLens-100K (rating >= 4) and Last.fm-2K (play counts), 80/20 ``train_test_split`` with seed
42, K=50, both libraries scored by tacitrec's evaluator.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402

from common import best_of, load_real, machine, power_law_user_items  # noqa: E402

KINDS = ["ItemItemRecommender", "CosineRecommender", "TFIDFRecommender", "BM25Recommender"]


class ImplicitAdapter:
    """Serves an implicit kNN model through tacitrec's evaluator: implicit's recommend can return
    liked items (scored 0) and fewer than N ids; the evaluator takes its lists as they are."""

    def __init__(self, model, n_items):
        self.model, self.n_items = model, n_items

    def _shape(self):
        return None, self.n_items

    def recommend(self, userid, user_items, N=10, filter_already_liked_items=True, **_):
        ids, scores = self.model.recommend(userid, user_items.to_scipy().astype(np.float64), N=N,
                                           filter_already_liked_items=filter_already_liked_items)
        return np.asarray(ids), np.asarray(scores)


def sim_bytes(m) -> int:
    return m.data.nbytes + m.indices.nbytes + m.indptr.nbytes


def speed(args):
    import implicit.nearest_neighbours as inn
    import tacitrec

    X = power_law_user_items(80_000, 10_000, 50, seed=3)
    print(f"\n## speed: {X.shape[0]} users x {X.shape[1]} items, {X.nnz:,} interactions, "
          f"K={args.K}, {args.threads} threads")
    users = np.arange(20_000)
    rows = X[users]
    rows64 = rows.astype(np.float64)
    print("| model | fit tacitrec s | fit implicit s | fit speed-up | recommend tacitrec users/s "
          "| recommend implicit users/s | recommend speed-up | similarity MB tacitrec / implicit |")
    print("|---|---|---|---|---|---|---|---|")
    for kind in KINDS:
        ours = getattr(tacitrec, kind)(K=args.K, num_threads=args.threads)
        peer = getattr(inn, kind)(K=args.K, num_threads=args.threads)
        X64 = X.astype(np.float64)  # implicit's ItemItemRecommender rejects float32
        t_fit, _, _ = best_of(lambda: ours.fit(X, show_progress=False), args.repeat)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p_fit, _, _ = best_of(lambda: peer.fit(X64, show_progress=False), args.repeat)
        t_rec, _, _ = best_of(lambda: ours.recommend(users, rows, N=10), args.repeat)
        p_rec, _, _ = best_of(lambda: peer.recommend(users, rows64, N=10), 1)
        print(f"| {kind} | {t_fit:.3f} | {p_fit:.3f} | {p_fit / t_fit:.1f}x | "
              f"{len(users) / t_rec:,.0f} | {len(users) / p_rec:,.0f} | {p_rec / t_rec:.1f}x | "
              f"{sim_bytes(ours.similarity) / 2**20:.1f} / {sim_bytes(peer.similarity) / 2**20:.1f} |")


def quality(args):
    import implicit.nearest_neighbours as inn
    import tacitrec
    from tacitrec.evaluation import ranking_metrics_at_k, train_test_split

    for name in ("ml-100k", "lastfm-2k"):
        X = load_real(name)
        if X is None:
            print(f"\n{name}: data folder absent, skipped")
            continue
        train, test = train_test_split(X, 0.8, random_state=42)
        print(f"\n## quality: {name} ({X.shape[0]} users x {X.shape[1]} items, {X.nnz} "
              f"interactions), K=50, 80/20 split seed 42")
        print("| model | p@10 tacitrec | p@10 implicit | ratio | ndcg@10 tacitrec | "
              "ndcg@10 implicit | ratio |")
        print("|---|---|---|---|---|---|---|")
        for kind in KINDS + ["PearsonRecommender"]:
            ours = getattr(tacitrec, kind)(K=50, num_threads=args.threads)
            ours.fit(train, show_progress=False)
            m = ranking_metrics_at_k(ours, train, test, K=10, show_progress=False)
            if not hasattr(inn, kind):
                print(f"| {kind} | {m['precision']:.4f} | - | - | {m['ndcg']:.4f} | - | - |")
                continue
            peer = getattr(inn, kind)(K=50, num_threads=args.threads)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                peer.fit(train.astype(np.float64), show_progress=False)  # it needs float64
                p = ranking_metrics_at_k(ImplicitAdapter(peer, X.shape[1]), train, test, K=10,
                                         show_progress=False)
            print(f"| {kind} | {m['precision']:.4f} | {p['precision']:.4f} | "
                  f"{m['precision'] / p['precision']:.3f} | {m['ndcg']:.4f} | {p['ndcg']:.4f} | "
                  f"{m['ndcg'] / p['ndcg']:.3f} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--K", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-quality", action="store_true")
    args = ap.parse_args()
    try:
        import implicit
    except ImportError:
        sys.exit("implicit is not installed: pip install implicit==0.7.3")
    import tacitrec
    print(f"machine: {machine()}; tacitrec {tacitrec.__version__}, implicit {implicit.__version__}")
    if not args.skip_quality:
        quality(args)
    if not args.skip_speed:
        speed(args)


if __name__ == "__main__":
    main()

"""BPR and LMF: tacitrec against implicit 0.7.3 in one run.

    python benches/compare/bpr_lmf.py [--threads 2] [--skip-speed] [--skip-quality]

Quality (when ../shared/data exists): same hyper-parameters on both libraries, averaged over seeds
0, 1, 2, tacitrec's evaluator for both: precision@10 and ndcg@10 on MovieLens-100K (rating >= 4)
and Last.fm-2K (play counts), 80/20 ``train_test_split`` with seed 42. BPR factors=64,
iterations=100; LMF factors=30, iterations=30. tacitrec's variants are listed separately.
Speed: seconds per epoch (BPR) and per iteration (LMF), best of the epochs run, on synthetic
power-law data, 80,000 users x 10,000 items x ~4M interactions, at 32, 64 and 128 factors.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402

from common import load_real, machine, power_law_user_items  # noqa: E402

SEEDS = (0, 1, 2)


def _peer(kind, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "bpr":
            from implicit.cpu.bpr import BayesianPersonalizedRanking
            return BayesianPersonalizedRanking(**kw)
        from implicit.cpu.lmf import LogisticMatrixFactorization
        return LogisticMatrixFactorization(**kw)


def _ours(kind, **kw):
    import tacitrec
    cls = (tacitrec.BayesianPersonalizedRanking if kind == "bpr"
           else tacitrec.LogisticMatrixFactorization)
    return cls(**kw)


VARIANTS = {
    "bpr": [("default (stratified, redraw)", {}),
            ("max_redraws=0 (skip, as implicit)", dict(max_redraws=0)),
            ("deterministic=False (hogwild, as implicit)", dict(deterministic=False))],
    "lmf": [("default (max_negatives=auto)", {}),
            ("max_negatives=None (neg_prop x positives)", dict(max_negatives=None))],
}
PARAMS = {"bpr": dict(factors=64, iterations=100), "lmf": dict(factors=30, iterations=30)}


def quality(args):
    import tacitrec
    from tacitrec.evaluation import ranking_metrics_at_k, train_test_split

    def metrics(model, train, test):
        m = ranking_metrics_at_k(model, train, test, K=10, show_progress=False)
        return np.array([m["precision"], m["ndcg"]])

    print(f"\n## quality (mean of seeds {SEEDS}, tacitrec's evaluator for both)")
    print("| data | model | variant | p@10 tacitrec / implicit | ndcg@10 tacitrec / implicit |")
    print("|---|---|---|---|---|")
    for name in ("ml-100k", "lastfm-2k"):
        X = load_real(name)
        if X is None:
            print(f"| {name} | data folder absent, skipped | | | |")
            continue
        train, test = train_test_split(X, 0.8, random_state=42)
        for kind in ("bpr", "lmf"):
            peer = []
            for seed in SEEDS:
                p = _peer(kind, random_state=seed, num_threads=args.threads, **PARAMS[kind])
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    p.fit(train.astype(np.float32), show_progress=False)
                pm = tacitrec.MatrixFactorizationBase()
                pm.user_factors, pm.item_factors = p.user_factors, p.item_factors
                peer.append(metrics(pm, train, test))
            peer = np.mean(peer, axis=0)
            for label, extra in VARIANTS[kind]:
                ours = np.mean([metrics(_ours(kind, random_state=seed, num_threads=args.threads,
                                              **PARAMS[kind], **extra)
                                        .fit(train, show_progress=False), train, test)
                                for seed in SEEDS], axis=0)
                r = ours / peer
                print(f"| {name} | {kind.upper()} | {label} | {ours[0]:.4f} / {peer[0]:.4f} "
                      f"({r[0]:.3f}) | {ours[1]:.4f} / {peer[1]:.4f} ({r[1]:.3f}) |")


def _epoch_seconds(kind, model, X, ours):
    times = []
    if kind == "bpr":
        cb = lambda e, s, c, k: times.append(s)  # noqa: E731
    else:
        cb = lambda e, s, *rest: times.append(s)  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, show_progress=False, callback=cb)
    return min(times)


def speed(args):
    X = power_law_user_items(80_000, 10_000, 50, seed=3)
    print(f"\n## speed: {X.shape[0]:,} users x {X.shape[1]:,} items, {X.nnz:,} interactions, "
          f"{args.threads} threads, seconds per epoch/iteration (best of {args.epochs})")
    print("| model | factors | tacitrec variant | tacitrec s | implicit s | speed-up |")
    print("|---|---|---|---|---|---|")
    for kind in ("bpr", "lmf"):
        for factors in (32, 64, 128):
            kw = dict(factors=factors, iterations=args.epochs, num_threads=args.threads,
                      random_state=0)
            peer = _epoch_seconds(kind, _peer(kind, **kw), X, False)
            variants = VARIANTS[kind] if factors == 64 else VARIANTS[kind][:1]
            for label, extra in variants:
                ours = _epoch_seconds(kind, _ours(kind, **kw, **extra), X, True)
                print(f"| {kind.upper()} | {factors} | {label} | {ours:.3f} | {peer:.3f} | "
                      f"{peer / ours:.2f}x |", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-quality", action="store_true")
    args = ap.parse_args()
    try:
        import implicit
    except ImportError:
        sys.exit("implicit is not installed: pip install implicit==0.7.3")
    print(f"# BPR / LMF: tacitrec vs implicit {implicit.__version__} ({machine()})")
    if not args.skip_quality:
        quality(args)
    if not args.skip_speed:
        speed(args)


if __name__ == "__main__":
    main()

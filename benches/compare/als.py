"""Implicit ALS: tacitrec against implicit 0.7.3 in one run.

    python benches/compare/als.py [--threads 2] [--skip-speed] [--skip-quality] [--skip-scaling]

Quality (when ../shared/data exists): same hyper-parameters and seed in both libraries,
tacitrec's evaluator for both: MovieLens-100K (rating >= 4, 80/20 split seed 42, factors=64,
regularization=0.05, iterations=15) and Last.fm-2K (bm25_weight(K1=100, B=0.8) of the play counts,
factors=64), precision@10, ndcg@10 and the training loss after 15 iterations.
Speed: seconds per iteration (best of the iterations) on synthetic power-law data, 80,000 users x
10,000 items x ~4M interactions, CG at 64 and 128 factors and Cholesky at 64, with peak memory;
then the growth of the CG time from ~1M to ~16M interactions. implicit runs with one BLAS thread
(its advice).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import warnings

sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402

from common import load_real, machine, power_law_user_items  # noqa: E402


def _implicit(**kw):
    from implicit.cpu.als import AlternatingLeastSquares
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return AlternatingLeastSquares(**kw)


def quality(args):
    import tacitrec
    from tacitrec.evaluation import ranking_metrics_at_k, train_test_split
    from tacitrec.knn import bm25_weight
    from threadpoolctl import threadpool_limits

    cases = [("ml-100k", dict(factors=64, regularization=0.05, iterations=15), False),
             ("lastfm-2k", dict(factors=64, iterations=15), True)]
    print("\n## quality (same seed 0 and hyper-parameters, tacitrec's evaluator for both)")
    print("| data | solver | p@10 tacitrec / implicit | ndcg@10 tacitrec / implicit | "
          "loss tacitrec / implicit |")
    print("|---|---|---|---|---|")
    for name, params, bm25 in cases:
        X = load_real(name)
        if X is None:
            print(f"| {name} | data folder absent, skipped | | | |")
            continue
        train, test = train_test_split(X, 0.8, random_state=42)
        fit_on = bm25_weight(train.T, K1=100, B=0.8).T.tocsr() if bm25 else train
        for use_cg in (True, False):
            kw = dict(params, use_cg=use_cg, random_state=0, calculate_training_loss=True,
                      num_threads=args.threads)
            ours, losses = tacitrec.AlternatingLeastSquares(**kw), []
            ours.fit(fit_on, show_progress=False, callback=lambda i, s, l: losses.append(l))
            peer, plosses = _implicit(**kw), []
            with threadpool_limits(1, "blas"):
                peer.fit(fit_on.astype(np.float32), show_progress=False,
                         callback=lambda i, s, l: plosses.append(l))
            peer_model = tacitrec.MatrixFactorizationBase()
            peer_model.user_factors, peer_model.item_factors = peer.user_factors, peer.item_factors
            m = ranking_metrics_at_k(ours, train, test, K=10, show_progress=False)
            p = ranking_metrics_at_k(peer_model, train, test, K=10, show_progress=False)
            print(f"| {name} | {'CG' if use_cg else 'Cholesky'} | {m['precision']:.4f} / "
                  f"{p['precision']:.4f} ({m['precision'] / p['precision']:.3f}) | "
                  f"{m['ndcg']:.4f} / {p['ndcg']:.4f} ({m['ndcg'] / p['ndcg']:.3f}) | "
                  f"{losses[-1]:.6f} / {plosses[-1]:.6f} ({losses[-1] / plosses[-1]:.4f}) |")


def _child(args):
    """One library, one configuration, in a fresh process: prints s/it, peak RSS MB, nnz."""
    from threadpoolctl import threadpool_limits

    import scipy.sparse as sp

    from common import peak_rss_mb
    X = sp.load_npz(args.data).tocsr()
    kw = dict(factors=args.factors, use_cg=args.solver == "cg", iterations=args.iterations,
              random_state=0, num_threads=args.threads)
    times = []
    if args.child == "tacitrec":
        import tacitrec
        tacitrec.AlternatingLeastSquares(**kw).fit(
            X, show_progress=False, callback=lambda i, s, l: times.append(s))
    else:
        with threadpool_limits(1, "blas"):
            _implicit(**kw).fit(X, show_progress=False, callback=lambda i, s, l: times.append(s))
    print(f"{min(times):.4f} {peak_rss_mb():.1f} {X.nnz}")


def run_child(lib, factors, solver, users, per_user, threads, iterations):
    import tempfile

    import scipy.sparse as sp
    path = os.path.join(tempfile.gettempdir(), f"tacitrec_als_{users}_{per_user}.npz")
    if not os.path.exists(path):
        sp.save_npz(path, power_law_user_items(users, 10_000, per_user, seed=3))
    out = subprocess.run([sys.executable, __file__, "--child", lib, "--factors", str(factors),
                          "--solver", solver, "--data", path, "--threads", str(threads),
                          "--iterations", str(iterations)],
                         capture_output=True, text=True, check=True)
    secs, mb, nnz = out.stdout.split()
    return float(secs), float(mb), int(nnz)


def speed(args):
    print(f"\n## speed: 80,000 users x 10,000 items, {args.threads} threads, seconds per "
          "iteration (best of 3) and peak resident memory of the process (same data loading in both)")
    print("| solver | factors | tacitrec s/it | implicit s/it | speed-up | peak MB tacitrec / "
          "implicit |")
    print("|---|---|---|---|---|---|")
    for solver, factors in (("cg", 64), ("cg", 128), ("cholesky", 64)):
        o = run_child("tacitrec", factors, solver, 80_000, 50, args.threads, 3)
        p = run_child("implicit", factors, solver, 80_000, 50, args.threads, 3)
        print(f"| {solver} | {factors} | {o[0]:.3f} | {p[0]:.3f} | {p[0] / o[0]:.2f}x | "
              f"{o[1]:.0f} / {p[1]:.0f} |")


def scaling(args):
    print(f"\n## scaling: CG, 64 factors, 10,000 items, {args.threads} threads, s/iteration")
    print("| interactions | tacitrec | implicit |")
    print("|---|---|---|")
    for users in (20_000, 80_000, 320_000):
        o = run_child("tacitrec", 64, "cg", users, 50, args.threads, 2)
        p = run_child("implicit", 64, "cg", users, 50, args.threads, 2)
        print(f"| {o[2]:,} | {o[0]:.3f} | {p[0]:.3f} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-quality", action="store_true")
    ap.add_argument("--skip-scaling", action="store_true")
    ap.add_argument("--child", choices=["tacitrec", "implicit"], help=argparse.SUPPRESS)
    ap.add_argument("--factors", type=int, default=64, help=argparse.SUPPRESS)
    ap.add_argument("--solver", default="cg", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--iterations", type=int, default=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args)
        return
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
    if not args.skip_scaling:
        scaling(args)


if __name__ == "__main__":
    main()

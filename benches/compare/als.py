"""Implicit ALS: tacitrec against implicit 0.7.3 in one run.

    python benches/compare/als.py [--threads 2] [--skip-speed] [--skip-quality] [--skip-scaling]
                                  [--json PATH] [--quick]

Quality (when ../shared/data exists): same hyper-parameters and seed in both libraries,
tacitrec's evaluator for both: MovieLens-100K (rating >= 4, 80/20 split seed 42, factors=64,
regularization=0.05, iterations=15) and Last.fm-2K (bm25_weight(K1=100, B=0.8) of the play counts,
factors=64), precision@10, ndcg@10 and the training loss after 15 iterations.
Speed: seconds per iteration (best of 5 iterations: on a shared machine single iterations vary
by up to 1.5x) on synthetic power-law data, 80,000 users x 10,000 items x ~4M interactions, CG at
64 and 128 factors and Cholesky at 64, with the fit's peak resident memory above the data (each
fit in a forked process); then the growth of the CG time from ~1M to ~16M interactions. The data
are binary and alpha is 1 (both libraries' default), where no entry has an interaction term in
the normal equations (``(c - 1) y y^T``): tacitrec leaves those terms out, implicit computes them.
So CG at 64 factors runs again at alpha = 40, where every entry has one.
implicit runs with one BLAS thread (its advice). ``--quick``: a tenth of the synthetic data,
1 iteration (3 on the real data).
"""

from __future__ import annotations

import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(__file__))

import numpy as np

from common import (
    cli,
    forked,
    load_real,
    machine,
    parse,
    peer,
    record,
    synthetic,
)


def _implicit(**kw):
    from implicit.cpu.als import AlternatingLeastSquares

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return AlternatingLeastSquares(**kw)


def quality(args):
    import implicit
    import tacitrec
    from tacitrec.evaluation import ranking_metrics_at_k, train_test_split
    from tacitrec.knn import bm25_weight
    from threadpoolctl import threadpool_limits

    its = 3 if args.quick else 15
    cases = [
        ("ml-100k", dict(factors=64, regularization=0.05, iterations=its), False),
        ("lastfm-2k", dict(factors=64, iterations=its), True),
    ]
    print("\n## quality (same seed 0 and hyper-parameters, tacitrec's evaluator for both)")
    print(
        "| data | solver | p@10 tacitrec / implicit | ndcg@10 tacitrec / implicit | "
        "loss tacitrec / implicit |"
    )
    print("|---|---|---|---|---|")
    for name, params, bm25 in cases:
        X = load_real(name)
        if X is None:
            print(f"| {name} | data folder absent, skipped | | | |")
            continue
        train, test = train_test_split(X, 0.8, random_state=42)
        fit_on = bm25_weight(train.T, K1=100, B=0.8).T.tocsr() if bm25 else train
        for use_cg in (True, False):
            kw = dict(
                params,
                use_cg=use_cg,
                random_state=0,
                calculate_training_loss=True,
                num_threads=args.threads,
            )
            ours, losses = tacitrec.AlternatingLeastSquares(**kw), []
            ours.fit(
                fit_on,
                show_progress=False,
                callback=lambda i, s, loss, out=losses: out.append(loss),
            )
            peer, plosses = _implicit(**kw), []
            with threadpool_limits(1, "blas"):
                peer.fit(
                    fit_on.astype(np.float32),
                    show_progress=False,
                    callback=lambda i, s, loss, out=plosses: out.append(loss),
                )
            peer_model = tacitrec.MatrixFactorizationBase()
            peer_model.user_factors, peer_model.item_factors = peer.user_factors, peer.item_factors
            m = ranking_metrics_at_k(ours, train, test, K=10, show_progress=False)
            p = ranking_metrics_at_k(peer_model, train, test, K=10, show_progress=False)
            for metric in ("precision", "ndcg"):
                record(
                    "quality",
                    f"ALS ({'CG' if use_cg else 'Cholesky'})",
                    f"64 factors, {its} iterations",
                    f"{metric}@10",
                    m[metric],
                    p[metric],
                    f"implicit {implicit.__version__}",
                    name,
                )
            print(
                f"| {name} | {'CG' if use_cg else 'Cholesky'} | {m['precision']:.4f} / "
                f"{p['precision']:.4f} ({m['precision'] / p['precision']:.3f}) | "
                f"{m['ndcg']:.4f} / {p['ndcg']:.4f} ({m['ndcg'] / p['ndcg']:.3f}) | "
                f"{losses[-1]:.6f} / {plosses[-1]:.6f} ({losses[-1] / plosses[-1]:.4f}) |"
            )


def fit(lib, X, factors, solver, threads, iterations, alpha=1.0):
    """(best seconds per iteration, peak MB) of one fit in a forked process."""
    from threadpoolctl import threadpool_limits

    def run():
        kw = dict(
            factors=factors,
            use_cg=solver == "cg",
            alpha=alpha,
            iterations=iterations,
            random_state=0,
            num_threads=threads,
        )
        times = []
        if lib == "tacitrec":
            import tacitrec

            tacitrec.AlternatingLeastSquares(**kw).fit(
                X, show_progress=False, callback=lambda i, s, loss: times.append(s)
            )
        else:
            with threadpool_limits(1, "blas"):
                _implicit(**kw).fit(
                    X, show_progress=False, callback=lambda i, s, loss: times.append(s)
                )
        return min(times)

    s_per_it, _, mb = forked(run)
    return s_per_it, mb


def _record(model, case, data, o, p):
    import implicit

    peer = f"implicit {implicit.__version__}"
    record("speed", model, f"{case}fit, s/iteration", "seconds", o[0], p[0], peer, data)
    record("memory", model, f"{case}fit, peak above data", "peak_mb", o[1], p[1], peer, data)


def speed(args):
    its = 1 if args.quick else 5
    X, data = synthetic(args.quick)
    print(
        f"\n## speed: {X.shape[0]:,} users x {X.shape[1]:,} items, {args.threads} threads, "
        f"seconds per iteration (best of {its}) and the fit's peak resident memory above the "
        "data"
    )
    print(
        "| solver | factors | tacitrec s/it | implicit s/it | speed-up | peak MB tacitrec / "
        "implicit |"
    )
    print("|---|---|---|---|---|---|")
    for solver, factors, alpha in (
        ("cg", 64, 1.0),
        ("cg", 64, 40.0),
        ("cg", 128, 1.0),
        ("cholesky", 64, 1.0),
    ):
        o = fit("tacitrec", X, factors, solver, args.threads, its, alpha)
        p = fit("implicit", X, factors, solver, args.threads, its, alpha)
        a = "" if alpha == 1.0 else f", alpha={alpha:g}"
        _record(
            f"ALS ({'CG' if solver == 'cg' else 'Cholesky'}, {factors} factors{a})", "", data, o, p
        )
        mb = "-" if o[1] is None else f"{o[1]:.0f} / {p[1]:.0f}"
        print(
            f"| {solver}{a} | {factors} | {o[0]:.3f} | {p[0]:.3f} | {p[0] / o[0]:.2f}x | {mb} |",
            flush=True,
        )


def scaling(args):
    its = 1 if args.quick else 2
    print(f"\n## scaling: CG, 64 factors, {args.threads} threads, s/iteration (best of {its})")
    print("| interactions | tacitrec | implicit |")
    print("|---|---|---|")
    for users in (20_000, 80_000, 320_000):
        X, data = synthetic(args.quick, users=users)
        o = fit("tacitrec", X, 64, "cg", args.threads, its)
        p = fit("implicit", X, 64, "cg", args.threads, its)
        _record("ALS (CG, 64 factors)", "scaling: ", data, o, p)
        print(f"| {X.nnz:,} | {o[0]:.3f} | {p[0]:.3f} |", flush=True)


def main():
    ap = cli(__doc__)
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-quality", action="store_true")
    ap.add_argument("--skip-scaling", action="store_true")
    args = parse(ap)
    implicit = peer("implicit")
    import tacitrec

    print(f"machine: {machine()}; tacitrec {tacitrec.__version__}, implicit {implicit.__version__}")
    if not args.skip_speed:  # the forked fits first: in-process thread pools do not survive a fork
        speed(args)
    if not args.skip_scaling:
        scaling(args)
    if not args.skip_quality:
        quality(args)


if __name__ == "__main__":
    main()

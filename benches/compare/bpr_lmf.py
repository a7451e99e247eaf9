"""BPR and LMF: tacitrec against implicit 0.7.3 in one run.

    python benches/compare/bpr_lmf.py [--threads 2] [--epochs 3] [--skip-speed] [--skip-quality]
                                      [--seeds 10] [--bpr-iterations 100] [--json PATH] [--quick]

Quality (when ../shared/data exists): implicit 0.7.3's default hyper-parameters on both libraries
(BPR: factors=100, learning_rate=0.01, regularization=0.01, iterations=100; LMF: factors=30,
learning_rate=1.0, regularization=0.6, iterations=30, neg_prop=30), seeds 0..9 for both in the
same run (``--seeds N``: 0..N-1), tacitrec's evaluator for both: mean and standard deviation over
the seeds of precision@10 and ndcg@10 on MovieLens-100K (rating >= 4) and Last.fm-2K (play
counts), 80/20 ``train_test_split`` with seed 42; for BPR also the share of samples trained (not
skipped for a negative the user has), from each library's callback. tacitrec's variants are
listed separately. ``--bpr-iterations 25,50,100`` repeats BPR at each length (the redraw
trade-off in tacitrec.bpr's docstring). implicit runs with 1 BLAS thread.
Speed: seconds per epoch (BPR) and per iteration (LMF), best of the epochs run, on synthetic
power-law data, 80,000 users x 10,000 items x ~4M interactions, at 32, 64 and 128 factors, with
the fit's peak resident memory above the data (each fit in a forked process). ``--quick``: a
tenth of the synthetic data, 1 epoch, seed 0 only and a tenth of the iterations on the real data.
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

    cls = (
        tacitrec.BayesianPersonalizedRanking
        if kind == "bpr"
        else tacitrec.LogisticMatrixFactorization
    )
    return cls(**kw)


VARIANTS = {
    "bpr": [
        ("default (stratified, skip as implicit)", {}),
        ("max_redraws=10 (stratified, redraw)", dict(max_redraws=10)),
        ("deterministic=False (hogwild, as implicit)", dict(deterministic=False)),
    ],
    "lmf": [
        ("default (max_negatives=auto)", {}),
        ("max_negatives=None (neg_prop x positives)", dict(max_negatives=None)),
    ],
}
#: implicit 0.7.3's defaults (tacitrec's are the same), passed to both libraries explicitly
PARAMS = {
    "bpr": dict(factors=100, learning_rate=0.01, regularization=0.01, iterations=100),
    "lmf": dict(factors=30, learning_rate=1.0, regularization=0.6, iterations=30, neg_prop=30),
}


def _model(kind, label, factors=None):
    """The records' model name: "BPR (64 factors, max_redraws=10)"; no suffix for the default."""
    parts = ([f"{factors} factors"] if factors else []) + (
        [] if label.startswith("default") else [label.split(" (")[0]]
    )
    return kind.upper() + (f" ({', '.join(parts)})" if parts else "")


def _fit(kind, make, train, test, seed, threads, peer_lib, kw):
    """(precision@10, ndcg@10, share of the samples trained: BPR, else NaN) of one fit."""
    import tacitrec
    from tacitrec.evaluation import ranking_metrics_at_k
    from threadpoolctl import threadpool_limits

    stats = []
    callback = lambda *a: stats.append(a)  # noqa: E731  BPR: (epoch, s, correct, skipped)
    with warnings.catch_warnings(), threadpool_limits(1, "blas"):
        warnings.simplefilter("ignore")
        model = make(random_state=seed, num_threads=threads, **kw)
        if peer_lib:
            model.fit(train.astype(np.float32), show_progress=False, callback=callback)
            fitted = tacitrec.MatrixFactorizationBase()
            fitted.user_factors, fitted.item_factors = model.user_factors, model.item_factors
        else:
            fitted = model.fit(train, show_progress=False, callback=callback)
    m = ranking_metrics_at_k(fitted, train, test, K=10, show_progress=False)
    trained = 1.0 - np.mean([a[3] for a in stats]) / train.nnz if kind == "bpr" else np.nan
    return m["precision"], m["ndcg"], trained


def quality(args):
    import implicit
    import tacitrec  # noqa: F401
    from tacitrec.evaluation import train_test_split

    seeds = list(range(1 if args.quick else args.seeds))
    lengths = {
        "bpr": [int(x) for x in args.bpr_iterations.split(",")],
        "lmf": [PARAMS["lmf"]["iterations"]],
    }
    print(
        f"\n## quality (seeds {seeds[0]}..{seeds[-1]}: mean +- sd, tacitrec's evaluator for both;"
        " trained: share of the samples not skipped, tacitrec / implicit)"
    )
    print(
        "| data | model | iterations | variant | p@10 tacitrec / implicit (ratio) | "
        "ndcg@10 tacitrec / implicit (ratio) | trained |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in ("ml-100k", "lastfm-2k"):
        X = load_real(name)
        if X is None:
            print(f"| {name} | data folder absent, skipped | | | | | |")
            continue
        train, test = train_test_split(X, 0.8, random_state=42)
        for kind in ("bpr", "lmf"):
            for iterations in lengths[kind]:
                kw = dict(PARAMS[kind], iterations=max(1, iterations // (10 if args.quick else 1)))
                peer = np.array(
                    [
                        _fit(
                            kind,
                            lambda kind=kind, **k: _peer(kind, **k),
                            train,
                            test,
                            seed,
                            args.threads,
                            True,
                            kw,
                        )
                        for seed in seeds
                    ]
                )
                for label, extra in VARIANTS[kind]:
                    ours = np.array(
                        [
                            _fit(
                                kind,
                                lambda kind=kind, extra=extra, **k: _ours(kind, **k, **extra),
                                train,
                                test,
                                seed,
                                args.threads,
                                False,
                                kw,
                            )
                            for seed in seeds
                        ]
                    )
                    _report(name, kind, label, kw, seeds, ours, peer, implicit.__version__)


def _report(name, kind, label, kw, seeds, ours, peer, version):
    mo, mp = ours.mean(axis=0), peer.mean(axis=0)
    sd = lambda a: a.std(axis=0, ddof=1) if len(a) > 1 else np.zeros(a.shape[1])  # noqa: E731
    so, sp = sd(ours), sd(peer)
    trained = "" if np.isnan(mo[2]) else f"{mo[2]:.1%} / {mp[2]:.1%}"
    cells = [
        f"{mo[k]:.4f} +- {so[k]:.4f} / {mp[k]:.4f} +- {sp[k]:.4f} ({mo[k] / mp[k]:.3f})"
        for k in (0, 1)
    ]
    print(
        f"| {name} | {kind.upper()} | {kw['iterations']} | {label} | {cells[0]} | {cells[1]} | "
        f"{trained} |",
        flush=True,
    )
    for k, metric in enumerate(("precision@10", "ndcg@10")):
        case = (
            f"{kw['factors']} factors, {kw['iterations']} iterations, mean of "
            f"{len(seeds)} seeds (sd {so[k]:.4f} / {sp[k]:.4f})"
            + (f", {trained} of samples trained" if trained else "")
        )
        record(
            "quality", _model(kind, label), case, metric, mo[k], mp[k], f"implicit {version}", name
        )


def _epoch_seconds(kind, make, X):
    """(best seconds per epoch, peak MB) of the fit of ``make()`` in a forked process."""

    def run():
        times = []
        if kind == "bpr":
            cb = lambda e, s, c, k: times.append(s)  # noqa: E731
        else:
            cb = lambda e, s, *rest: times.append(s)  # noqa: E731
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            make().fit(X, show_progress=False, callback=cb)
        return min(times)

    secs, _, mb = forked(run)
    return secs, mb


def speed(args):
    import implicit

    X, data = synthetic(args.quick)
    print(
        f"\n## speed: {X.shape[0]:,} users x {X.shape[1]:,} items, {X.nnz:,} interactions, "
        f"{args.threads} threads, seconds per epoch/iteration (best of {args.epochs}), the "
        "fit's peak resident memory above the data"
    )
    print(
        "| model | factors | tacitrec variant | tacitrec s | implicit s | speed-up | "
        "peak MB tacitrec / implicit |"
    )
    print("|---|---|---|---|---|---|---|")
    for kind in ("bpr", "lmf"):
        unit = "epoch" if kind == "bpr" else "iteration"
        for factors in (32, 64, 128):
            kw = dict(
                factors=factors, iterations=args.epochs, num_threads=args.threads, random_state=0
            )
            peer = _epoch_seconds(kind, lambda kind=kind, kw=kw: _peer(kind, **kw), X)
            variants = VARIANTS[kind] if factors == 64 else VARIANTS[kind][:1]
            # uncapped LMF does another amount of work than implicit (which caps): no pair
            variants = [v for v in variants if "max_negatives" not in v[1]]
            for label, extra in variants:
                ours = _epoch_seconds(
                    kind, lambda kind=kind, kw=kw, extra=extra: _ours(kind, **kw, **extra), X
                )
                for section, case, metric, i in (
                    ("speed", f"fit, s/{unit}", "seconds", 0),
                    ("memory", "fit, peak above data", "peak_mb", 1),
                ):
                    record(
                        section,
                        _model(kind, label, factors),
                        case,
                        metric,
                        ours[i],
                        peer[i],
                        f"implicit {implicit.__version__}",
                        data,
                    )
                mb = "-" if ours[1] is None else f"{ours[1]:.0f} / {peer[1]:.0f}"
                print(
                    f"| {kind.upper()} | {factors} | {label} | {ours[0]:.3f} | {peer[0]:.3f} | "
                    f"{peer[0] / ours[0]:.2f}x | {mb} |",
                    flush=True,
                )


def main():
    ap = cli(__doc__)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-quality", action="store_true")
    ap.add_argument("--seeds", type=int, default=10, help="quality: seeds 0..N-1 (default 10)")
    ap.add_argument(
        "--bpr-iterations",
        default="100",
        help="quality: comma-separated BPR lengths (default 100, implicit's)",
    )
    args = parse(ap)
    if args.quick:
        args.epochs = 1
    implicit = peer("implicit")
    print(f"# BPR / LMF: tacitrec vs implicit {implicit.__version__} ({machine()})")
    if not args.skip_speed:  # first: it forks, and in-process thread pools do not survive a fork
        speed(args)
    if not args.skip_quality:
        quality(args)


if __name__ == "__main__":
    main()

"""BPR and LMF: tacitrec against implicit 0.7.3 in one run.

    python benches/compare/bpr_lmf.py [--threads 2] [--epochs 3] [--skip-speed] [--skip-quality]
                                      [--json PATH] [--quick]

Quality (when ../shared/data exists): same hyper-parameters on both libraries, averaged over seeds
0, 1, 2, tacitrec's evaluator for both: precision@10 and ndcg@10 on MovieLens-100K (rating >= 4)
and Last.fm-2K (play counts), 80/20 ``train_test_split`` with seed 42. BPR factors=64,
iterations=100; LMF factors=30, iterations=30. tacitrec's variants are listed separately.
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

import numpy as np  # noqa: E402

from common import (cli, forked, load_real, machine, parse, peer, record,  # noqa: E402
                    synthetic)

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


def _model(kind, label, factors=None):
    """The records' model name: "BPR (64 factors, max_redraws=0)"; no suffix for the default."""
    parts = ([f"{factors} factors"] if factors else []) + (
        [] if label.startswith("default") else [label.split(" (")[0]])
    return kind.upper() + (f" ({', '.join(parts)})" if parts else "")


def quality(args):
    import implicit
    import tacitrec
    from tacitrec.evaluation import ranking_metrics_at_k, train_test_split

    def metrics(model, train, test):
        m = ranking_metrics_at_k(model, train, test, K=10, show_progress=False)
        return np.array([m["precision"], m["ndcg"]])

    seeds = SEEDS[:1] if args.quick else SEEDS
    params = {k: dict(v, iterations=v["iterations"] // (10 if args.quick else 1))
              for k, v in PARAMS.items()}
    print(f"\n## quality (mean of seeds {seeds}, tacitrec's evaluator for both)")
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
            for seed in seeds:
                p = _peer(kind, random_state=seed, num_threads=args.threads, **params[kind])
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    p.fit(train.astype(np.float32), show_progress=False)
                pm = tacitrec.MatrixFactorizationBase()
                pm.user_factors, pm.item_factors = p.user_factors, p.item_factors
                peer.append(metrics(pm, train, test))
            peer = np.mean(peer, axis=0)
            for label, extra in VARIANTS[kind]:
                ours = np.mean([metrics(_ours(kind, random_state=seed, num_threads=args.threads,
                                              **params[kind], **extra)
                                        .fit(train, show_progress=False), train, test)
                                for seed in seeds], axis=0)
                r = ours / peer
                for metric, o, pv in zip(("precision@10", "ndcg@10"), ours, peer):
                    record("quality", _model(kind, label),
                           f"{params[kind]['factors']} factors, {params[kind]['iterations']} "
                           f"iterations, mean of seeds {','.join(map(str, seeds))}", metric, o, pv,
                           f"implicit {implicit.__version__}", name)
                print(f"| {name} | {kind.upper()} | {label} | {ours[0]:.4f} / {peer[0]:.4f} "
                      f"({r[0]:.3f}) | {ours[1]:.4f} / {peer[1]:.4f} ({r[1]:.3f}) |")


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
    print(f"\n## speed: {X.shape[0]:,} users x {X.shape[1]:,} items, {X.nnz:,} interactions, "
          f"{args.threads} threads, seconds per epoch/iteration (best of {args.epochs}), the "
          "fit's peak resident memory above the data")
    print("| model | factors | tacitrec variant | tacitrec s | implicit s | speed-up | "
          "peak MB tacitrec / implicit |")
    print("|---|---|---|---|---|---|---|")
    for kind in ("bpr", "lmf"):
        unit = "epoch" if kind == "bpr" else "iteration"
        for factors in (32, 64, 128):
            kw = dict(factors=factors, iterations=args.epochs, num_threads=args.threads,
                      random_state=0)
            peer = _epoch_seconds(kind, lambda: _peer(kind, **kw), X)
            variants = VARIANTS[kind] if factors == 64 else VARIANTS[kind][:1]
            # uncapped LMF does another amount of work than implicit (which caps): no pair
            variants = [v for v in variants if "max_negatives" not in v[1]]
            for label, extra in variants:
                ours = _epoch_seconds(kind, lambda: _ours(kind, **kw, **extra), X)
                for section, case, metric, i in (("speed", f"fit, s/{unit}", "seconds", 0),
                                                 ("memory", "fit, peak above data", "peak_mb", 1)):
                    record(section, _model(kind, label, factors), case, metric, ours[i],
                           peer[i], f"implicit {implicit.__version__}", data)
                mb = "-" if ours[1] is None else f"{ours[1]:.0f} / {peer[1]:.0f}"
                print(f"| {kind.upper()} | {factors} | {label} | {ours[0]:.3f} | {peer[0]:.3f} | "
                      f"{peer[0] / ours[0]:.2f}x | {mb} |", flush=True)


def main():
    ap = cli(__doc__)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-quality", action="store_true")
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

"""Validation ndcg@10 by epoch for LightFM 1.17 and tacitrec's LightFM with each regularisation
(``regularization="decay"``, LightFM's global weight decay done right, and ``"l2"``, a penalty
on the rows each example touches) on Last.fm-2K, one thread.

    python benches/compare/lightfm_decay.py [--library tacitrec|LightFM] [--modes decay,l2]
        [--configs bpr:24:0.10:4.5e-5,warp:24:0.05:1e-3] [--epochs 5,10,20,30,50,75,100]

    python benches/compare/lightfm_decay.py --speed [--size 20000,10000,50] [--threads 1,2]
        [--losses bpr,warp] [--alpha 1e-4] [--tag after]

The split is tuned_quality.py's: 80/20 of the interactions (seed 42), then 80/20 of the
training part (seed 0); models fit on the first part of the training split and are scored on
the validation part with their training items excluded. Each line printed is one JSON record.

``--speed``: CPU seconds per epoch (process time, all threads; the median of ``--rounds``
3-epoch fits from the same start) on power-law synthetic data (``--size`` users, items, mean
interactions per user), 32 components, alpha 1e-4 on both sides, for each regularisation this
tacitrec has (a build without the option runs as ``l2``, tagged ``--tag``), or LightFM 1.17's
(``--library LightFM``). Run it once per
build with PYTHONPATH pointing at each build's package, alternating, to compare builds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

_HERE = os.path.abspath(os.path.dirname(__file__))
sys.path.insert(0, _HERE)

from common import load_real  # noqa: E402
from tuned_quality import Wrapped, _binary  # noqa: E402  (drops _HERE from sys.path)


def speed(args):
    import inspect

    import numpy as np
    import tacitrec
    from common import power_law_user_items

    n_users, n_items, per_user = (int(float(v)) for v in args.size.split(","))
    X = power_law_user_items(n_users, n_items, per_user, seed=0)
    has_option = "regularization" in inspect.signature(tacitrec.LightFM.__init__).parameters
    modes = args.modes.split(",") if has_option else ["l2"]
    peer = args.library == "LightFM"
    if peer:
        import lightfm

        modes = ["LightFM 1.17"]
    for threads in (int(t) for t in args.threads.split(",")):
        for loss in args.losses.split(","):
            times = {m: [] for m in modes}
            for _ in range(args.rounds):
                for mode in modes:  # interleaved
                    common = dict(
                        no_components=32,
                        loss=loss,
                        item_alpha=args.alpha,
                        user_alpha=args.alpha,
                        random_state=0,
                    )
                    if peer:
                        m = lightfm.LightFM(**common)
                        m.fit_partial(X, epochs=0)
                    else:
                        kw = {"regularization": mode} if has_option else {}
                        m = tacitrec.LightFM(**common, **kw).fit(X, epochs=0)
                    t = time.process_time()
                    m.fit_partial(X, epochs=3, num_threads=threads)
                    times[mode].append((time.process_time() - t) / 3)
            for mode in modes:
                print(
                    json.dumps(
                        dict(
                            tag=args.tag,
                            regularization=mode,
                            loss=loss,
                            threads=threads,
                            size=f"{n_users}x{n_items}x{X.nnz}",
                            cpu_s_per_epoch=round(float(np.median(times[mode])), 4),
                            all=[round(v, 4) for v in times[mode]],
                        )
                    ),
                    flush=True,
                )


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--speed", action="store_true")
    ap.add_argument("--size", default="20000,10000,50")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--losses", default="bpr,warp")
    ap.add_argument("--alpha", type=float, default=1e-4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tag", default="")
    ap.add_argument("--library", default="tacitrec")
    ap.add_argument("--modes", default="decay,l2", help="tacitrec's regularization values")
    ap.add_argument("--configs", default="bpr:24:0.10:4.5e-5,warp:24:0.05:1e-5,warp:24:0.05:1e-3")
    ap.add_argument("--epochs", default="5,10,20,30,50,75,100")
    ap.add_argument("--dataset", default="lastfm-2k")
    args = ap.parse_args()
    if args.speed:
        speed(args)
        return

    from tacitrec.evaluation import ranking_metrics_at_k, train_test_split
    from tacitrec.model_selection import validation_split

    X = load_real(args.dataset)
    if X is None:
        print(f"{args.dataset}: not found, skipped")
        return
    X = _binary(X)
    train, _ = train_test_split(X, 0.8, random_state=42)
    fit_part, validation = validation_split(train, 0.2, by="interaction", random_state=0)
    fit_part = _binary(fit_part)
    checks = sorted(int(e) for e in args.epochs.split(","))
    for config in args.configs.split(","):
        loss, d, lr, alpha = config.split(":")
        kw = dict(
            loss=loss,
            no_components=int(d),
            learning_rate=float(lr),
            item_alpha=float(alpha),
            user_alpha=float(alpha),
            random_state=0,
        )
        if args.library == "LightFM":
            import lightfm

            runs = [("LightFM 1.17", lambda kw=kw: lightfm.LightFM(**kw))]
        else:
            import tacitrec

            runs = [
                (f"tacitrec {m}", lambda m=m, kw=kw: tacitrec.LightFM(regularization=m, **kw))
                for m in args.modes.split(",")
                if m
            ]
        for label, make in runs:
            model = make()
            wrapped = Wrapped(model, "binary")
            curve, cpu = {}, 0.0
            done = 0
            for e in checks:
                t = time.process_time()
                model.fit_partial(fit_part, epochs=e - done, num_threads=1)
                cpu += time.process_time() - t
                done = e
                m = ranking_metrics_at_k(wrapped, fit_part, validation, K=10, show_progress=False)
                curve[e] = round(float(m["ndcg"]), 4)
            print(
                json.dumps(
                    dict(
                        library=label,
                        config=config,
                        ndcg10=curve,
                        cpu_s_per_epoch=round(cpu / done, 3),
                    )
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()

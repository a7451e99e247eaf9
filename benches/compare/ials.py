"""iALS (Rendle, Zhang & Koren 2022) and the iALS++ solver (Rendle et al. 2021) against today's ALS.

    python benches/compare/ials.py [--threads 2] [--factors 128 256 512] [--skip-speed]
                                   [--skip-quality] [--quick]

Speed: CPU seconds per epoch (process time of all threads, the lower of 2 epochs; the machine is
shared, so CPU time rather than wall time) of the CG (3 steps), Cholesky and iALS++ (block 128
and 32) solvers at each ``--factors`` on synthetic power-law data (20,000 users x 5,000 items,
~0.6M interactions), all on the paper's objective (unobserved_weight=0.1,
regularization_exponent=1, regularization=0.003, init_std=0.1), and that objective after the 2
epochs (same start for every solver; lower is better).

Quality: ndcg@10 with tacitrec's evaluator on MovieLens-100K (rating >= 4) and Last.fm-2K, 80/20
split (seed 42). Today's ALS with the settings of ``als.py`` (64 factors, 15 iterations; Last.fm
bm25-weighted) against iALS as the paper sets it up (binary data, alpha=1, init_std=0.1,
regularization_exponent=1, 15 epochs, Cholesky), with unobserved_weight, regularization and
factors chosen on a validation split carved from the training data (never the test split), then
refit on the whole training data and scored once on test.
"""

from __future__ import annotations

import itertools
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))


from common import cli, load_real, parse, power_law_user_items

PAPER = dict(unobserved_weight=0.1, regularization=0.003, regularization_exponent=1.0, init_std=0.1)


def speed(args):
    import tacitrec
    from tacitrec import _core

    users, items = (2000, 500) if args.quick else (20000, 5000)
    X = power_law_user_items(users, items, 30, seed=0)
    print(
        f"\n## iALS++ speed: {X.shape[0]} x {X.shape[1]} x {X.nnz} interactions, "
        f"{args.threads} threads, CPU seconds per epoch (objective after 2 epochs)"
    )
    solvers = [("cg", 128), ("cholesky", 128), ("ials++", 128), ("ials++", 32)]
    print(
        "| factors | "
        + " | ".join(f"{s}" + (f" (block {b})" if s == "ials++" else "") for s, b in solvers)
        + " |"
    )
    print("|---" * (len(solvers) + 1) + "|")
    for d in args.factors:
        cells = []
        for solver, block in solvers:
            if solver == "cholesky" and d > args.max_cholesky:
                cells.append("skipped")
                continue
            m = tacitrec.AlternatingLeastSquares(
                factors=d,
                iterations=2,
                solver=solver,
                block_size=block,
                random_state=0,
                num_threads=args.threads,
                **PAPER,
            )
            cpu, last = [], [time.process_time()]

            def cb(i, s, loss, cpu=cpu, last=last):
                now = time.process_time()
                cpu.append(now - last[0])
                last[0] = now

            last[0] = time.process_time()
            m.fit(X, show_progress=False, callback=cb)
            loss = _core.als_loss(
                m._confidence(X, "X"),
                m.user_factors,
                m.item_factors,
                args.threads,
                regularization=PAPER["regularization"],
                unobserved_weight=PAPER["unobserved_weight"],
                regularization_exponent=PAPER["regularization_exponent"],
            )
            cells.append(f"{min(cpu):.2f} s ({loss:.5f})")
            print(f"  d={d} {solver} block={block}: {cells[-1]}", file=sys.stderr, flush=True)
        print(f"| {d} | " + " | ".join(cells) + " |", flush=True)


def _ndcg(model, train, test):
    from tacitrec.evaluation import ranking_metrics_at_k

    return ranking_metrics_at_k(model, train, test, K=10, show_progress=False)["ndcg"]


def quality(args):
    import tacitrec
    from tacitrec.evaluation import train_test_split
    from tacitrec.knn import bm25_weight

    its = 3 if args.quick else 15
    grid = dict(
        unobserved_weight=[0.03, 0.1, 0.3, 1.0],
        regularization=[1e-3, 3e-3, 1e-2],
        factors=[64, 128],
    )
    if args.quick:
        grid = dict(unobserved_weight=[0.1], regularization=[3e-3], factors=[64])
    print("\n## iALS quality: ndcg@10 on test (80/20 split, seed 42)")
    print("| data | today's ALS (CG / Cholesky) | iALS, paper's recipe (chosen on validation) |")
    print("|---|---|---|")
    for name, bm25 in (("ml-100k", False), ("lastfm-2k", True)):
        X = load_real(name)
        if X is None:
            print(f"| {name} | data absent | |")
            continue
        train, test = train_test_split(X, 0.8, random_state=42)
        today = []
        fit_on = bm25_weight(train.T, K1=100, B=0.8).T.tocsr() if bm25 else train
        base = dict(factors=64, iterations=its, random_state=0, num_threads=args.threads)
        if name == "ml-100k":
            base["regularization"] = 0.05
        for use_cg in (True, False):
            m = tacitrec.AlternatingLeastSquares(use_cg=use_cg, **base).fit(
                fit_on, show_progress=False
            )
            today.append(_ndcg(m, train, test))
        binary = train.copy()
        binary.data[:] = 1.0
        fit_part, valid = train_test_split(binary, 0.9, random_state=1)
        best = None
        for w, reg, d in itertools.product(*grid.values()):
            kw = dict(
                PAPER,
                unobserved_weight=w,
                regularization=reg,
                factors=d,
                iterations=its,
                solver="cholesky",
                random_state=0,
                num_threads=args.threads,
            )
            v = _ndcg(
                tacitrec.AlternatingLeastSquares(**kw).fit(fit_part, show_progress=False),
                fit_part,
                valid,
            )
            if best is None or v > best[0]:
                best = (v, kw)
        m = tacitrec.AlternatingLeastSquares(**best[1]).fit(binary, show_progress=False)
        ours = _ndcg(m, train, test)
        chosen = {k: best[1][k] for k in ("factors", "unobserved_weight", "regularization")}
        print(
            f"| {name} | {today[0]:.4f} / {today[1]:.4f} | {ours:.4f} "
            f"({ours / max(today):.3f}x the better; {chosen}) |",
            flush=True,
        )


def main():
    ap = cli(__doc__)
    ap.add_argument("--factors", type=int, nargs="+", default=[128, 256, 512])
    ap.add_argument(
        "--max-cholesky",
        type=int,
        default=512,
        help="skip the Cholesky solver above this many factors",
    )
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-quality", action="store_true")
    args = parse(ap)
    if not args.skip_speed:
        speed(args)
    if not args.skip_quality:
        quality(args)


if __name__ == "__main__":
    main()

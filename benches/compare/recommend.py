"""Batched recommend: tacitrec against implicit 0.7.3 holding the same factors, in one run.

    python benches/compare/recommend.py [--users 20000] [--items 10000] [--factors 64] [--threads 2]
                                        [--repeat 5] [--json PATH] [--quick]

Both libraries get identical random factors and the same power-law ``user_items`` (about 50
items per user); each call is ``recommend(userids, user_items[userids], N=10)`` with liked items
filtered. Checks that the top-10 lists agree (up to exact score ties), then reports users per
second (best and median of 5) and the ratios. implicit runs twice: with OpenBLAS threading as
installed (what a user gets by default; implicit warns about it) and limited to one BLAS thread
as implicit recommends (its fastest setting). implicit is a dev dependency:
``pip install implicit==0.7.3``.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import numpy as np

from common import (
    best_of,
    cli,
    data_label,
    machine,
    parse,
    power_law_user_items,
    record,
)


def main() -> None:
    ap = cli(__doc__)
    ap.add_argument("--users", type=int, default=20000)
    ap.add_argument("--items", type=int, default=10000)
    ap.add_argument("--factors", type=int, default=64)
    ap.add_argument("--per-user", type=float, default=50.0)
    ap.add_argument("--repeat", type=int, default=5)
    args = parse(ap)
    if args.quick:
        args.users, args.items, args.repeat = args.users // 10, args.items // 10, 1

    import tacitrec
    from tacitrec import MatrixFactorizationBase

    rng = np.random.default_rng(0)
    U = rng.standard_normal((args.users, args.factors)).astype(np.float32)
    V = rng.standard_normal((args.items, args.factors)).astype(np.float32)
    X = power_law_user_items(args.users, args.items, args.per_user, seed=1)
    userids = np.arange(args.users)
    rows = X[userids]
    print(f"machine: {machine()}; threads: {args.threads}")
    print(
        f"data: {args.users} users x {args.items} items, {args.factors} factors, "
        f"{X.nnz / args.users:.1f} liked items per user"
    )
    model, case = f"MF serving ({args.factors} factors)", f"recommend {args.users:,} users, N=10"

    ours = MatrixFactorizationBase(num_threads=args.threads)
    ours.user_factors, ours.item_factors = U, V
    t_ours, med_ours, (ids, scores) = best_of(
        lambda: ours.recommend(userids, rows, N=10), args.repeat
    )
    print(
        f"tacitrec {tacitrec.__version__}: {args.users / t_ours:12,.0f} users/s "
        f"(best {t_ours:.3f} s, median {med_ours:.3f} s)"
    )

    try:
        import implicit
        from implicit.cpu.als import AlternatingLeastSquares
    except ImportError:
        print("implicit is not installed (pip install implicit==0.7.3): no comparison")
        return
    import warnings

    from threadpoolctl import threadpool_limits

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # implicit's OpenBLAS threading advice
        peer = AlternatingLeastSquares(factors=args.factors, num_threads=args.threads)
    peer.user_factors, peer.item_factors = U, V
    results = {}
    for label, limit in (("default BLAS threads", None), ("1 BLAS thread", 1)):
        with threadpool_limits(limits=limit, user_api="blas"):
            results[label] = best_of(lambda: peer.recommend(userids, rows, N=10), args.repeat)
        t_peer, med_peer, _ = results[label]
        print(
            f"implicit {implicit.__version__} ({label}): {args.users / t_peer:12,.0f} users/s "
            f"(best {t_peer:.3f} s, median {med_peer:.3f} s); tacitrec is "
            f"{t_peer / t_ours:.1f}x faster (median {med_peer / med_ours:.1f}x)"
        )
        record(
            "speed",
            model,
            f"{case} (implicit: {label})",
            "users_per_s",
            args.users / t_ours,
            args.users / t_peer,
            f"implicit {implicit.__version__}",
            data_label(X),
        )
    _, _, (pids, pscores) = results["1 BLAS thread"]

    # Agreement: same ids, or the same score where the order differs only by an exact tie.
    same = ids == pids
    tie_ok = np.isclose(scores, pscores, rtol=1e-5, atol=1e-5)
    agree = np.mean(same | tie_ok)
    print(f"top-10 agreement: {np.mean(same):.4%} identical ids, {agree:.4%} up to ties")
    if agree < 0.9999:
        sys.exit("top-10 lists disagree")


if __name__ == "__main__":
    main()

"""Exact top-k with the int8 first pass: tacitrec's batch recommend with the pass (default), with
the full f32 path (``TACITREC_EXACT_TOPK=full``) and implicit 0.7.3 (1 BLAS thread), in one run.

    python benches/compare/topk_first_pass.py [--users 20000] [--items 10000 100000]
                                              [--factors 64] [--threads 2] [--repeat 3]

Times are CPU seconds of the process (``time.process_time``: all threads), best of ``--repeat``,
because the machine is shared; ratios come from the same run. Checks that both tacitrec paths
return identical ids and score bits. Then reports how many items per user the first pass's bound
lets through to exact rescoring (a NumPy model of the kernel's bound, same formula) on Gaussian
factors and on ALS factors trained on MovieLens-100K and Last.fm-2K when ../shared/data exists.
"""

from __future__ import annotations

import os
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(__file__))
import numpy as np

from common import power_law_user_items

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data")


def cpu_best(fn, repeat):
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.process_time()
        out = fn()
        best = min(best, time.process_time() - t)
    return best, out


def speed(users, items, factors, threads, repeat):
    from tacitrec import MatrixFactorizationBase

    rng = np.random.default_rng(0)
    U = rng.standard_normal((users, factors)).astype(np.float32)
    V = rng.standard_normal((items, factors)).astype(np.float32)
    X = power_law_user_items(users, items, 50.0, seed=1)
    uid = np.arange(users)
    rows = X[uid]
    ours = MatrixFactorizationBase(num_threads=threads)
    ours.user_factors, ours.item_factors = U, V
    os.environ.pop("TACITREC_EXACT_TOPK", None)
    t_fp, (i1, s1) = cpu_best(lambda: ours.recommend(uid, rows, N=10), repeat)
    os.environ["TACITREC_EXACT_TOPK"] = "full"
    t_full, (i2, s2) = cpu_best(lambda: ours.recommend(uid, rows, N=10), repeat)
    os.environ.pop("TACITREC_EXACT_TOPK")
    same = np.array_equal(i1, i2) and np.array_equal(s1.view(np.int32), s2.view(np.int32))
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        peer = AlternatingLeastSquares(factors=factors, num_threads=threads)
    peer.user_factors, peer.item_factors = U, V
    with threadpool_limits(limits=1, user_api="blas"):
        t_imp, _ = cpu_best(lambda: peer.recommend(uid, rows, N=10), max(1, repeat - 1))
    print(
        f"{users:,} users x {items:,} items x {factors}: CPU s first pass {t_fp:.3f}, "
        f"full f32 {t_full:.3f}, implicit (1 BLAS thread) {t_imp:.3f}; first pass is "
        f"{t_full / t_fp:.2f}x the full path, {t_imp / t_fp:.2f}x implicit "
        f"(full path {t_imp / t_full:.2f}x implicit); identical: {same}"
    )
    if not same:
        sys.exit("the first pass changed the results")


def quantize(X, steps=False):
    """The kernel's int8 quantisation and its bound terms (N, D): per row (queries), or, with
    ``steps``, items sorted by decreasing largest magnitude in steps of 32 sharing the step's
    largest scale (the rows come back in the original order)."""
    X = X.astype(np.float64)
    m = np.abs(X).max(1, keepdims=True)
    if steps:
        order = np.argsort(-m[:, 0], kind="stable")
        sm = m[order, 0]
        step_max = np.maximum.reduceat(sm, np.arange(0, len(sm), 32))
        m = np.empty_like(m)
        m[order, 0] = np.repeat(step_max, 32)[: len(sm)]
    s = np.where(m > 0, (m.astype(np.float32) / np.float32(127)), 0).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        Q = np.where(m > 0, np.minimum(np.floor(np.abs(X) * (127 / m) + 0.5), 127), 0)
    Q = Q * np.sign(X)
    Xq = Q * s
    N = np.sqrt(np.maximum((X**2).sum(1), (Xq**2).sum(1)))
    D = np.sqrt(((X - Xq) ** 2).sum(1))
    return Q, s[:, 0], N, D


def survivors(U, V, k=10, users=2000):
    """Items per user whose a + b reaches the k-th largest a - b (what is rescored exactly)."""
    U = U[:users]
    Qu, su, Nu, Du = quantize(U)
    Qv, sv, Nv, Dv = quantize(V, steps=True)
    A = (Qu @ Qv.T) * su[:, None] * sv[None, :]
    B = Du[:, None] * Nv[None, :] + Nu[:, None] * Dv[None, :]
    L, H = A - B, A + B
    T = -np.partition(-L, k - 1, axis=1)[:, k - 1]
    n = (H >= T[:, None]).sum(1)
    return n.mean(), np.percentile(n, 99), n.max()


def candidates(factors):
    rng = np.random.default_rng(0)
    for items in (10000, 100000):
        U = rng.standard_normal((2000, factors)).astype(np.float32)
        V = rng.standard_normal((items, factors)).astype(np.float32)
        mean, p99, mx = survivors(U, V)
        print(
            f"Gaussian {items:,} items x {factors}: rescored per user mean {mean:.1f}, "
            f"p99 {p99:.0f}, max {mx} (k=10)"
        )
    if not os.path.isdir(DATA):
        print("no ../shared/data: trained-factor candidate counts skipped")
        return
    from tacitrec import AlternatingLeastSquares
    from tacitrec.datasets import load_lastfm, load_movielens

    for name, load in (
        (
            "MovieLens-100K (rating >= 4)",
            lambda: load_movielens(os.path.join(DATA, "ml-100k"), min_rating=4),
        ),
        ("Last.fm-2K (play counts)", lambda: load_lastfm(os.path.join(DATA, "lastfm-2k"))),
    ):
        X = load().user_items
        model = AlternatingLeastSquares(
            factors=factors, iterations=15, random_state=0, num_threads=2
        )
        model.fit(X, show_progress=False)
        U, V = model.user_factors, model.item_factors
        mean, p99, mx = survivors(U, V, users=U.shape[0])
        norms = np.linalg.norm(V, axis=1)
        print(
            f"ALS on {name}: {V.shape[0]:,} items, item norm max/median "
            f"{norms.max() / np.median(norms):.1f}; rescored per user mean {mean:.1f}, "
            f"p99 {p99:.0f}, max {mx} (k=10)"
        )


def main():
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=20000)
    ap.add_argument("--items", type=int, nargs="+", default=[10000, 100000])
    ap.add_argument("--factors", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-speed", action="store_true")
    args = ap.parse_args()
    if not args.skip_speed:
        for items in args.items:
            speed(args.users, items, args.factors, args.threads, args.repeat)
    candidates(args.factors)


if __name__ == "__main__":
    main()

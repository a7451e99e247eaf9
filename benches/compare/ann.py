"""Approximate serving (``model.approximate()``) against tacitrec's exact batch recommend, one run.

    python benches/compare/ann.py [--items 1000000] [--factors 64] [--users 5000] [--threads 2]
                                  [--png benches/compare/ann_recall.png] [--implicit] [--quick]

Item factors are trained-like (``ann_libraries.trained_like``: a shared mean direction and
log-normal norms, as ALS factors on MovieLens and Last.fm have); users are drawn the same way
with narrower norms, and each has a power-law history of liked items (about 50). The exact path is
``model.recommend(users, user_items[users], N=10)`` (tacitrec's batched Rust top-k); the
approximate one is the same call on ``model.approximate()`` at a sweep of ``ef_search``. Reports
the index build (wall and CPU time, memory), recall@10 against the exact top-10 (unfiltered, and
with liked items removed, where every row must still hold 10 items), users per second (wall,
best of 3) and CPU microseconds per user, and draws the recall / speed curve. ``--implicit`` also
runs implicit's approximate ALS wrappers (faiss, annoy, nmslib where installed) on the same
factors and counts the rows that come back short of N.
"""

from __future__ import annotations

import os
import resource
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from ann_libraries import trained_like
from common import machine, power_law_user_items

EFS = (16, 24, 32, 48, 64, 96, 128, 256)


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def timed(fn, repeat=3):
    """(best wall seconds, CPU seconds of that run, result)."""
    best, best_cpu, out = np.inf, np.inf, None
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        w, cpu = time.perf_counter() - t, time.process_time() - c
        if w < best:
            best, best_cpu = w, cpu
    return best, best_cpu, out


def recall(got: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(np.intersect1d(g[g >= 0], t[t >= 0])) for g, t in zip(got, truth))
    return hits / max(int((truth >= 0).sum()), 1)


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--factors", type=int, default=64)
    ap.add_argument("--users", type=int, default=5000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--M", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=128)
    ap.add_argument("--png", default=os.path.join(os.path.dirname(__file__), "ann_recall.png"))
    ap.add_argument("--json", help="write the measurements to this file")
    ap.add_argument("--implicit", action="store_true")
    ap.add_argument(
        "--implicit-filter",
        type=float,
        default=0.01,
        help="the share of the items in filter_items for the filtered call of implicit's wrappers",
    )
    ap.add_argument(
        "--implicit-backends",
        default="faiss,annoy,nmslib",
        help="which of implicit's wrappers to run (nmslib's pip wheel builds slowly at 1M items)",
    )
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.items, args.users = 50_000, 1000

    from tacitrec import MatrixFactorizationBase

    print(f"machine: {machine()}; threads: {args.threads}")
    V = trained_like(args.items, args.factors, seed=1)
    U = trained_like(args.users, args.factors, seed=2, norm_sigma=0.5)
    X = power_law_user_items(args.users, args.items, 50.0, seed=3)
    users = np.arange(args.users)
    model = MatrixFactorizationBase(num_threads=args.threads)
    model.user_factors, model.item_factors = U, V
    print(
        f"data: {args.items:,} items x {args.factors} factors (trained-like), {args.users:,} "
        f"users, {X.nnz / args.users:.1f} liked items per user"
    )

    # exact: tacitrec's batched top-k, unfiltered and with liked items removed
    exact = {}
    for label, kw in (("all", dict(filter_already_liked_items=False)), ("liked", {})):
        ui = X if label == "liked" else None
        w, c, res = timed(lambda ui=ui, kw=kw: model.recommend(users, ui, N=10, **kw))
        exact[label] = {"wall": w, "cpu": c, "ids": res[0]}
        print(
            f"exact ({label:5s}): {args.users / w:,.0f} users/s, "
            f"{1e6 * c / args.users:,.0f} CPU us/user"
        )

    # the index
    rss0 = rss_mb()
    t, c = time.perf_counter(), time.process_time()
    index = model.approximate(M=args.M, ef_construction=args.ef_construction)
    build_wall, build_cpu = time.perf_counter() - t, time.process_time() - c
    index_mb = index.memory_usage / 2**20
    print(
        f"build (M={args.M}, ef_construction={args.ef_construction}): {build_wall:.1f} s wall, "
        f"{build_cpu:.1f} s CPU; index {index_mb:.0f} MB (RSS +{rss_mb() - rss0:.0f} MB); "
        f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )

    rows = []
    for ef in EFS:
        index.ef_search = ef
        r = {"ef": ef}
        for label, kw in (("all", dict(filter_already_liked_items=False)), ("liked", {})):
            ui = X if label == "liked" else None
            index.recommend(users[:64], None if ui is None else ui[:64], N=10, **kw)  # warm-up
            w, c, res = timed(lambda ui=ui, kw=kw: index.recommend(users, ui, N=10, **kw))
            ids = res[0]
            short = int(((ids >= 0).sum(axis=1) < 10).sum())
            r[label] = {
                "recall": recall(ids, exact[label]["ids"]),
                "users_per_s": args.users / w,
                "cpu_us": 1e6 * c / args.users,
                "speedup": exact[label]["wall"] / w,
                "cpu_speedup": exact[label]["cpu"] / c,
                "short_rows": short,
            }
        rows.append(r)
        a, f = r["all"], r["liked"]
        print(
            f"ef_search {ef:4d}: recall@10 {a['recall']:.3f} | {a['users_per_s']:9,.0f} users/s "
            f"({a['speedup']:5.1f}x exact; CPU {a['cpu_us']:6.1f} us, {a['cpu_speedup']:5.1f}x) | "
            f"liked removed: recall {f['recall']:.3f}, {f['users_per_s']:9,.0f} users/s "
            f"({f['speedup']:5.1f}x; CPU {f['cpu_us']:6.1f} us, {f['cpu_speedup']:5.1f}x), rows "
            f"short of 10: {f['short_rows']}",
            flush=True,
        )

    if args.json:
        import json

        with open(args.json, "w") as fh:
            json.dump(
                {
                    "items": args.items,
                    "factors": args.factors,
                    "users": args.users,
                    "threads": args.threads,
                    "M": args.M,
                    "ef_construction": args.ef_construction,
                    "build_wall_s": build_wall,
                    "build_cpu_s": build_cpu,
                    "index_mb": index_mb,
                    "exact": {k: {"wall": v["wall"], "cpu": v["cpu"]} for k, v in exact.items()},
                    "rows": rows,
                },
                fh,
                indent=1,
            )
    if args.png:
        draw(rows, exact, args)
    if args.implicit:
        index.ef_search = 32
        run_implicit(U, V, X, users, exact, args, index)


def draw(rows, exact, args) -> None:
    """Recall against speed-up over the exact path, by CPU time (robust on a shared machine) and
    by wall-clock time (what a user waits for; noisy on a loaded machine)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for label, color, name in (("all", "C0", "all items"), ("liked", "C1", "liked items removed")):
        xs = [r[label]["recall"] for r in rows]
        ax.plot(
            xs,
            [r[label]["cpu_speedup"] for r in rows],
            "o-",
            color=color,
            label=f"{name}, CPU time",
        )
        ax.plot(
            xs,
            [r[label]["speedup"] for r in rows],
            "x:",
            color=color,
            alpha=0.6,
            label=f"{name}, wall clock",
        )
        if label == "all":
            for r, x in zip(rows, xs):
                ax.annotate(
                    f"ef {r['ef']}",
                    (x, r[label]["cpu_speedup"]),
                    textcoords="offset points",
                    xytext=(4, 4),
                    fontsize=8,
                )
    ax.axhline(20, color="red", lw=0.8, label="20x the exact path")
    ax.axvline(0.95, color="red", lw=0.8, ls="--")
    ax.axhline(1, color="grey", lw=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("recall@10 against the exact top-10")
    ax.set_ylabel("speed-up over tacitrec's exact batch recommend")
    ax.set_title(
        f"model.approximate(): {args.items:,} items x {args.factors} factors, {args.users:,} "
        f"users, {args.threads} threads",
        fontsize=10,
    )
    ax.legend(fontsize=8, loc="lower left")
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(args.png, dpi=110)
    print(f"wrote {args.png}")


def run_implicit(U, V, X, users, exact, args, index) -> None:
    """implicit 0.7.3's approximate ALS wrappers on the same factors: filtered batch recommend,
    how many rows come back short of N, recall against the exact filtered top-10."""
    try:
        import implicit.approximate_als as approx
    except ImportError:
        print("implicit not installed: its wrappers skipped")
        return
    n = min(len(users), 1000)  # implicit loops over users in Python when filtering
    users = users[:n]
    n_filter = int(V.shape[0] * args.implicit_filter)
    filt = np.random.default_rng(4).choice(V.shape[0], n_filter, replace=False)
    for backend, name, cls_name in (
        ("faiss", "faiss (IVF)", "FaissAlternatingLeastSquares"),
        ("annoy", "annoy", "AnnoyAlternatingLeastSquares"),
        ("nmslib", "nmslib (HNSW)", "NMSLibAlternatingLeastSquares"),
    ):
        if backend not in args.implicit_backends.split(","):
            continue
        cls = getattr(approx, cls_name, None)
        try:
            # fit with 0 iterations keeps the factors it is given and builds the index
            model = cls(factors=U.shape[1], iterations=0, num_threads=args.threads, use_gpu=False)
            model.model.user_factors, model.model.item_factors = U.copy(), V.copy()
            t, c = time.perf_counter(), time.process_time()
            model.fit(X, show_progress=False)
            bw, bc = time.perf_counter() - t, time.process_time() - c
        except Exception as e:  # the backend library is missing, or the wrapper's API differs
            print(f"implicit {name}: skipped ({type(e).__name__}: {e})")
            continue
        w, c, res = timed(lambda m=model: m.recommend(users, X[users], N=10), repeat=1)
        ids = np.asarray(res[0])
        short = int(((ids >= 0).sum(axis=1) < 10).sum()) if ids.ndim == 2 else -1
        # a list: implicit's faiss wrapper tests ``if filter_items:``, which an array fails
        _, _, res_f = timed(
            lambda m=model: m.recommend(users, X[users], N=10, filter_items=filt.tolist()),
            repeat=1,
        )
        ids_f = np.asarray(res_f[0])
        short_f = int(((ids_f >= 0).sum(axis=1) < 10).sum()) if ids_f.ndim == 2 else -1
        print(
            f"implicit {name}: build {bw:.1f} s ({bc:.1f} s CPU); liked removed: recall "
            f"{recall(ids, exact['liked']['ids'][:n]):.3f}, {n / w:,.0f} users/s, rows "
            f"short of 10: {short} of {n}; with {n_filter:,} items in filter_items too: "
            f"{short_f} of {n} short",
            flush=True,
        )
    ours = index.recommend(users, X[users], N=10, filter_items=filt)[0]
    print(
        f"tacitrec approximate (ef_search {index.ef_search}), liked and the same filter_items "
        f"removed: {int(((ours >= 0).sum(axis=1) < 10).sum())} of {n} rows short of 10"
    )


if __name__ == "__main__":
    main()

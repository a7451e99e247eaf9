"""ALS across Ray workers against the local fit (issue 15 section 2's benchmark).

    python3 benches/compare/als_distributed.py [--users 480000] [--items 30000] [--per-user 40]
        [--factors 64] [--iterations 3] [--workers 2] [--solver cg] [--json F]

Power-law histories (geometric counts with mean ``--per-user``, Zipf item popularity, binary
values) are fitted twice from the same seed:

* local: ``AlternatingLeastSquares(num_threads=--workers).fit(X)`` on the in-memory CSR;
* Ray: ``tacitrec.distributed.ray.fit`` of the same rows (a Ray Dataset of ``user, item`` rows,
  from pandas) on a local Ray of ``--workers`` CPUs, one single-threaded task per block, one
  block per worker.

Reported per iteration (the median over iterations): wall seconds, and CPU seconds of every
process involved (the driver and, for Ray, every process it started: workers, raylet, GCS),
which is the fairer figure on a shared machine; for Ray also the one-off setup (ids, blocks)
and the bytes shipped per iteration as ``fit_info_`` counts them (an upper bound: every task's
inputs counted as coming from another node). The factors of the two fits are compared.

The projection for 1B interactions (``--project``) scales the measured CPU seconds per
interaction and per row of the Ray run to N machines; it is a projection, not a measurement:
see the printed assumptions.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

import numpy as np
import scipy.sparse as sp

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]


def histories(n_users, n_items, per_user, seed=0):
    rng = np.random.default_rng(seed)
    counts = np.minimum(rng.geometric(1.0 / per_user, n_users), n_items)
    pop = 1.0 / np.arange(1, n_items + 1)
    items = rng.choice(n_items, size=int(counts.sum()), p=pop / pop.sum()).astype(np.int32)
    users = np.repeat(np.arange(n_users, dtype=np.int64), counts)
    X = sp.csr_matrix((np.ones(len(items), np.float32), (users, items)), shape=(n_users, n_items))
    X.sum_duplicates()
    X.data[:] = 1.0
    # only users and items with a row (the distributed fit numbers the ids that occur)
    X = X[np.diff(X.indptr) > 0]
    X = X.tocsc()[:, np.diff(X.tocsc().indptr) > 0].tocsr()
    return X


def cpu_seconds(procs) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except Exception:  # a process that exited
            pass
    return total


def tree():
    import psutil

    me = psutil.Process()
    return [me] + me.children(recursive=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=480_000)
    ap.add_argument("--items", type=int, default=30_000)
    ap.add_argument("--per-user", type=float, default=40.0)
    ap.add_argument("--factors", type=int, default=64)
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--solver", default="cg")
    ap.add_argument("--json")
    ap.add_argument("--project-users", type=float, default=30e6)
    ap.add_argument("--project-items", type=float, default=2e6)
    ap.add_argument("--cores", type=int, default=16, help="cores per machine (projection)")
    ap.add_argument("--gbit", type=float, default=10.0, help="network per machine (projection)")
    args = ap.parse_args()

    import pandas as pd
    import ray

    from tacitrec import AlternatingLeastSquares
    from tacitrec.distributed import ray as tray

    X = histories(args.users, args.items, args.per_user)
    print(f"{X.shape[0]} users x {X.shape[1]} items, {X.nnz} interactions", flush=True)
    params = dict(
        factors=args.factors,
        iterations=args.iterations,
        random_state=1,
        use_cg=args.solver == "cg",
    )
    result = dict(vars(args), users_kept=X.shape[0], items_kept=X.shape[1], nnz=int(X.nnz))

    def timed_fit(run):
        wall, cpu = [], []
        procs = tree()
        last = [time.perf_counter(), cpu_seconds(procs)]

        def cb(it, elapsed, loss):
            now, c = time.perf_counter(), cpu_seconds(tree())
            wall.append(now - last[0])
            cpu.append(c - last[1])
            last[0], last[1] = now, c

        start = time.perf_counter()
        model = run(cb, last)
        return model, wall, cpu, time.perf_counter() - start

    def local_run(cb, last):
        last[0], last[1] = time.perf_counter(), cpu_seconds(tree())
        m = AlternatingLeastSquares(num_threads=args.workers, **params)
        return m.fit(X, show_progress=False, callback=cb)

    local, lw, lc, ltotal = timed_fit(local_run)
    result["local"] = dict(wall=lw, cpu=lc, total=ltotal)
    print(f"local: {np.median(lw):.2f} s/iteration wall, {np.median(lc):.2f} CPU s", flush=True)

    ray.init(
        num_cpus=args.workers,
        include_dashboard=False,
        object_store_memory=3 * 2**30,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
        configure_logging=False,
    )
    try:
        coo = X.tocoo()
        frame = pd.DataFrame({"user": coo.row.astype(np.int64), "item": coo.col.astype(np.int64)})
        chunks = np.array_split(np.arange(len(frame)), 4 * args.workers)
        ds = ray.data.from_pandas([frame.iloc[c].reset_index(drop=True) for c in chunks])
        del frame, coo
        # what the idle cluster's own processes (raylet, GCS, idle workers) burn per second
        procs = tree()
        c0, t0 = cpu_seconds(procs), time.perf_counter()
        time.sleep(5.0)
        idle = (cpu_seconds(procs) - c0) / (time.perf_counter() - t0)
        result["ray_idle_cpu_per_s"] = idle
        setup = {}

        def ray_run(cb, last):
            t0, c0 = time.perf_counter(), cpu_seconds(tree())
            first = [True]

            def on_iter(it, elapsed, loss):
                if first[0]:  # the setup ended where the first iteration began
                    setup["wall"] = time.perf_counter() - elapsed - t0
                    first[0] = False
                cb(it, elapsed, loss)

            last[0], last[1] = t0, c0
            m = AlternatingLeastSquares(**params)
            return tray.fit(m, ds, num_blocks=args.workers, show_progress=False, callback=on_iter)

        fitted, rw, rc, rtotal = timed_fit(ray_run)
        # the first callback's interval includes the setup: take it from the iteration's own time
        rw, rc = rw[1:] or rw, rc[1:] or rc
        info = fitted.fit_info_
        result["ray"] = dict(
            wall=rw, cpu=rc, total=rtotal, setup_wall=setup.get("wall"), fit_info=info
        )
        err = max(
            np.abs(fitted.user_factors - local.user_factors).max()
            / np.abs(local.user_factors).max(),
            np.abs(fitted.item_factors - local.item_factors).max()
            / np.abs(local.item_factors).max(),
        )
        result["max_relative_difference"] = float(err)
        print(
            f"ray: {np.median(rw):.2f} s/iteration wall, {np.median(rc):.2f} CPU s, setup "
            f"{setup.get('wall', float('nan')):.1f} s, {info['bytes_per_iteration'] / 2**20:.1f} "
            f"MiB shipped/iteration (users get {info['user']['mode']}, items get "
            f"{info['item']['mode']}); factors differ by {err:.2e} (relative)",
            flush=True,
        )
    finally:
        ray.shutdown()
    lw_, lc_ = np.median(result["local"]["wall"]), np.median(result["local"]["cpu"])
    rw_, rc_ = np.median(result["ray"]["wall"]), np.median(result["ray"]["cpu"])
    print()
    print("| fit | s / iteration (wall) | CPU s / iteration | MiB shipped / iteration |")
    print("|---|---|---|---|")
    print(f"| local, {args.workers} threads | {lw_:.2f} | {lc_:.2f} | - |")
    mib = result["ray"]["fit_info"]["bytes_per_iteration"] / 2**20
    print(
        f"| Ray, {args.workers} workers x 1 thread | {rw_:.2f} ({rw_ / lw_:.2f}x) | "
        f"{rc_:.2f} ({rc_ / lc_:.2f}x) | {mib:.1f} |"
    )
    idle = result["ray_idle_cpu_per_s"]
    work = rc_ - idle * rw_
    print(
        f"\nthe idle cluster burns {idle:.3f} CPU s/s: {work:.2f} CPU s/iteration of work "
        f"({work / lc_:.2f}x the local fit's)"
    )
    project(args, result, work / X.nnz)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1, default=float)


def project(args, result, cpu_per_interaction):
    """A projection, not a measurement: 1B interactions on N machines of ``--cores`` cores (one
    single-threaded worker and block per core per side), with the measured CPU seconds per
    interaction spread evenly over the cores, plus each machine receiving the whole other side
    in both half-iterations (the "whole side" mode, an upper bound of what is shipped) over a
    ``--gbit`` network, computation and transfers not overlapped."""
    nnz, users, items, f = 1e9, args.project_users, args.project_items, args.factors
    rows = []
    print(
        f"\nprojection (not measured): 1B interactions, {users / 1e6:.0f}M users, "
        f"{items / 1e6:.0f}M items, {f} factors, {args.cores} cores and {args.gbit:.0f} Gbit/s "
        f"per machine, {cpu_per_interaction * 1e9:.0f} CPU ns per interaction (measured)"
    )
    print("| machines | compute s / iteration | network s / iteration | s / iteration |")
    print("|---|---|---|---|")
    for n in (4, 8, 16, 32, 64):
        compute = cpu_per_interaction * nnz / (n * args.cores)
        shipped = (users + items) * f * 4 * (n - 1) / n
        network = shipped / (args.gbit * 1e9 / 8)
        rows.append(dict(machines=n, compute=compute, network=network))
        print(f"| {n} | {compute:.1f} | {network:.1f} | {compute + network:.1f} |")
    result["projection"] = dict(rows=rows, cpu_per_interaction=cpu_per_interaction)


if __name__ == "__main__":
    main()

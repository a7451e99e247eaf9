"""Recommending on Ray, Dask and Spark against the local call (issue 14's benchmark).

    python3 benches/compare/distributed.py [--users 1000000] [--items 100000] [--factors 64]
        [--per-user 20] [--engines dask,ray,spark] [--growth 1,2,4] [--workers 2] [--json F]

A factor model with Gaussian factors (users x factors, items x factors) is saved as a model
directory; power-law histories (geometric counts with mean ``--per-user``, Zipf item
popularity) are written as a Parquet folder of ``user, item`` rows. Measured, top 10 with the
liked items removed:

* local: ``model.recommend`` of every user from the in-memory CSR, 2 threads, in batches of
  100,000 users (the reference);
* each engine, on a local cluster of ``--workers`` single-threaded workers bound to 127.0.0.1:
  read the Parquet rows, ``tacitrec.distributed.<engine>.recommend(model_dir, rows)``, write
  the result as Parquet (the nightly job end to end), timed as a whole; ``ray-sort`` is Ray
  with the rows' dataset asking for a sort shuffle instead of Ray's default hash shuffle;
* memory: the proportional set size (PSS, which splits shared pages between the processes that
  map them) of every process the driver started, sampled every 0.2 s; the peak above the
  cluster's idle baseline, against the model's size;
* growth (``--growth``, first engine only): the same job on 1x, 2x, 4x the users;
* oversubscription (``--oversubscribe``, Dask): the same job with every worker's kernels on all
  the machine's cores instead of the worker's one thread (what a library that ignores the
  engine's allocation does).

Prints a Markdown table and writes the numbers to ``--json``. Engines that are not installed are
skipped. Needs psutil (installed with Dask and Ray).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import sys
import tempfile
import threading
import time

import numpy as np
import scipy.sparse as sp

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
# this file's name would shadow Dask's `distributed` package: take its folder off the path
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
    return X


def write_rows(X, folder, parts):
    import pyarrow as pa
    import pyarrow.parquet as pq

    os.makedirs(folder)
    coo = X.tocoo()
    bounds = np.linspace(0, coo.nnz, parts + 1).astype(np.int64)
    for p in range(parts):
        s = slice(bounds[p], bounds[p + 1])
        pq.write_table(
            pa.table({"user": coo.row[s].astype(np.int64), "item": coo.col[s].astype(np.int64)}),
            os.path.join(folder, f"part-{p:04d}.parquet"),
        )


class PssSampler:
    """Peak of the summed PSS of this process's descendants (the engine's processes), and the
    CPU seconds they and this process spend (each process's last sample; the machine is shared,
    so CPU time is the steadier measure of the work done)."""

    def __init__(self):
        import psutil

        self.psutil, self.peak, self._stop = psutil, 0, threading.Event()
        self.cpu = {}

    def total(self):
        total = 0
        for p in self.psutil.Process().children(recursive=True):
            try:
                total += p.memory_full_info().pss
                t = p.cpu_times()
                self.cpu[p.pid] = t.user + t.system
            except (self.psutil.Error, OSError):
                pass
        return total

    def cpu_seconds(self):
        t = self.psutil.Process().cpu_times()
        return sum(self.cpu.values()) + t.user + t.system

    def __enter__(self):
        self.peak = 0
        self.total()
        self.cpu_start = self.cpu_seconds()

        def run():
            while not self._stop.is_set():
                self.peak = max(self.peak, self.total())
                time.sleep(0.2)

        self._stop.clear()
        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.total()
        self.cpu_used = self.cpu_seconds() - self.cpu_start


def _all_cores():
    import tacitrec.distributed.dask as tdask

    tdask._worker_threads = lambda: 0  # 0: every core of the machine


def run_dask(model_dir, rows_dir, out_dir, workers, sampler, warm, oversubscribe=False):
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    import tacitrec.distributed.dask as tdask

    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
            memory_limit=0,
        ) as cluster,
        Client(cluster) as c,
    ):
        if oversubscribe:
            c.run(_all_cores)
        tdask.recommend(warm[0], dd.read_parquet(warm[1]), N=10).compute()
        base = sampler.total()
        with sampler:
            t = time.perf_counter()
            rows = dd.read_parquet(rows_dir)
            tdask.recommend(model_dir, rows, N=10).to_parquet(out_dir, write_index=False)
            seconds = time.perf_counter() - t
        return seconds, base, sampler.peak


def run_ray(model_dir, rows_dir, out_dir, workers, sampler, warm, sort=False):
    import ray
    from ray.data.context import ShuffleStrategy

    import tacitrec.distributed.ray as tray

    def read(path):
        ds = ray.data.read_parquet(path)
        if sort:  # the shuffle by user as a sort instead of Ray's default (hash) shuffle
            ds.context.shuffle_strategy = ShuffleStrategy.SORT_SHUFFLE_PULL_BASED
        return ds

    ray.init(
        num_cpus=workers,
        include_dashboard=False,
        log_to_driver=False,
        _node_ip_address="127.0.0.1",
        object_store_memory=2 * 1024**3,
    )
    try:
        tray.recommend(warm[0], read(warm[1]), N=10).materialize()
        base = sampler.total()
        with sampler:
            t = time.perf_counter()
            rows = read(rows_dir)
            tray.recommend(model_dir, rows, N=10).write_parquet(out_dir)
            seconds = time.perf_counter() - t
        return seconds, base, sampler.peak
    finally:
        ray.shutdown()


def run_spark(model_dir, rows_dir, out_dir, workers, sampler, warm):
    from pyspark.sql import SparkSession

    import tacitrec.distributed.spark as tspark

    spark = (
        SparkSession.builder.master(f"local[{workers}]")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "4g")
        .config("spark.sql.shuffle.partitions", str(4 * workers))
        .getOrCreate()
    )
    try:
        tspark.recommend(warm[0], spark.read.parquet(warm[1]), N=10).count()
        base = sampler.total()
        with sampler:
            t = time.perf_counter()
            rows = spark.read.parquet(rows_dir)
            tspark.recommend(model_dir, rows, N=10).write.parquet(out_dir)
            seconds = time.perf_counter() - t
        return seconds, base, sampler.peak
    finally:
        spark.stop()


RUNNERS = {
    "dask": (run_dask, ["dask", "distributed"]),
    "ray": (run_ray, ["ray"]),
    "ray-sort": (functools.partial(run_ray, sort=True), ["ray"]),
    "spark": (run_spark, ["pyspark"]),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=1_000_000)
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--factors", type=int, default=64)
    ap.add_argument("--per-user", type=float, default=20.0)
    ap.add_argument("--engines", default="dask,ray,spark")
    ap.add_argument("--growth", default="1,2,4")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--oversubscribe", action="store_true")
    ap.add_argument("--json")
    args = ap.parse_args()

    import importlib.util

    from tacitrec import MatrixFactorizationBase

    engines = [e for e in args.engines.split(",") if e]
    skipped = {
        e: "not installed"
        for e in engines
        if any(importlib.util.find_spec(m) is None for m in RUNNERS[e][1])
    }
    engines = [e for e in engines if e not in skipped]
    growth = [int(g) for g in args.growth.split(",") if g]
    results = {"config": vars(args), "skipped": skipped, "runs": []}
    tmp = tempfile.mkdtemp(prefix="tacitrec-dist-bench-")
    try:
        # a tiny job first: the workers' imports and start-up are the baseline, not the job
        warm = (os.path.join(tmp, "warm-model"), os.path.join(tmp, "warm-rows"))
        tiny = MatrixFactorizationBase()
        tiny.user_factors, tiny.item_factors = np.ones((50, 4)), np.ones((20, 4))
        tiny.save_dir(warm[0])
        write_rows(histories(50, 20, 3.0), warm[1], parts=2)
        rng = np.random.default_rng(1)
        item_factors = rng.standard_normal((args.items, args.factors), dtype=np.float32)
        for scale in growth if engines else [1]:
            n_users = args.users * scale
            model = MatrixFactorizationBase(num_threads=args.workers)
            model.item_factors = item_factors
            model.user_factors = rng.standard_normal((n_users, args.factors), dtype=np.float32)
            model_dir = os.path.join(tmp, f"model-{scale}")
            model.save_dir(model_dir)
            model_bytes = model.user_factors.nbytes + model.item_factors.nbytes
            X = histories(n_users, args.items, args.per_user, seed=scale)
            rows_dir = os.path.join(tmp, f"rows-{scale}")
            write_rows(X, rows_dir, parts=8 * scale)
            users = np.arange(n_users)
            t, c = time.perf_counter(), time.process_time()
            for s in range(0, n_users, 100_000):
                model.recommend(users[s : s + 100_000], X[s : s + 100_000], N=10)
            local, local_cpu = time.perf_counter() - t, time.process_time() - c
            run = {
                "users": n_users,
                "nnz": int(X.nnz),
                "model_mb": model_bytes / 2**20,
                "local_s": local,
                "local_cpu_s": local_cpu,
                "engines": {},
            }
            print(
                f"{n_users} users, {X.nnz} rows: local {local:.1f} s "
                f"({n_users / local:,.0f} users/s)",
                flush=True,
            )
            for engine in engines if scale == growth[0] else engines[:1]:
                out_dir = os.path.join(tmp, f"out-{engine}-{scale}")
                sampler = PssSampler()
                seconds, base, peak = RUNNERS[engine][0](
                    model_dir, rows_dir, out_dir, args.workers, sampler, warm
                )
                run["engines"][engine] = {
                    "seconds": seconds,
                    "ratio": local / seconds,
                    "cpu_s": sampler.cpu_used,
                    "cpu_ratio": local_cpu / sampler.cpu_used,
                    "pss_base_mb": base / 2**20,
                    "pss_above_base_mb": (peak - base) / 2**20,
                }
                print(
                    f"  {engine}: {seconds:.1f} s, {local / seconds:.2f}x local "
                    f"(CPU {sampler.cpu_used:.1f} s against {local_cpu:.1f} s: "
                    f"{local_cpu / sampler.cpu_used:.2f}x); PSS "
                    f"{(peak - base) / 2**20:.0f} MB above the idle cluster "
                    f"(model {model_bytes / 2**20:.0f} MB)",
                    flush=True,
                )
                shutil.rmtree(out_dir, ignore_errors=True)
            if args.oversubscribe and scale == growth[0] and "dask" in engines:
                out_dir = os.path.join(tmp, "out-oversubscribed")
                seconds, _, _ = run_dask(
                    model_dir,
                    rows_dir,
                    out_dir,
                    args.workers,
                    PssSampler(),
                    warm,
                    oversubscribe=True,
                )
                run["dask_all_cores_s"] = seconds
                print(
                    f"  dask, kernels on all cores in every worker: {seconds:.1f} s "
                    f"({local / seconds:.2f}x local)",
                    flush=True,
                )
            results["runs"].append(run)
            shutil.rmtree(rows_dir, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        "\n| users | engine | seconds | vs local 2-thread call | CPU seconds (ratio) | "
        "PSS above idle / model |"
    )
    print("|---|---|---|---|---|---|")
    for run in results["runs"]:
        print(
            f"| {run['users']:,} | local | {run['local_s']:.1f} | 1.00x | "
            f"{run['local_cpu_s']:.1f} | |"
        )
        for engine, r in run["engines"].items():
            print(
                f"| {run['users']:,} | {engine} | {r['seconds']:.1f} | {r['ratio']:.2f}x | "
                f"{r['cpu_s']:.1f} ({r['cpu_ratio']:.2f}x) | "
                f"{r['pss_above_base_mb']:.0f} MB / {run['model_mb']:.0f} MB |"
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())

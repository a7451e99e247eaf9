"""Reading interactions at scale: tacitrec.io.read_interactions against the command line's
previous reader and a pyarrow -> NumPy -> SciPy baseline, on the same generated Parquet files.

Each method runs in a fresh process, which reports its CPU time (user + system, getrusage),
wall time and peak resident memory (VmHWM), so the figures hold on a machine shared with other
jobs; a process that only imports is measured first and its CPU time and memory subtracted.
Rates are rows per CPU-second; "on 2 cores" is twice that, the most two fully used cores give.

    python benches/compare/io.py --rows 50000000 --dir /tmp/io-bench
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time

import numpy as np


def generate(path: str, rows: int, strings: bool, seed: int = 0) -> None:
    """Interaction rows of ``rows / 20`` users (not sorted: rows come in random order) and
    ``rows / 200`` items with power-law popularity, integer weights 1..5, written by pyarrow
    (row groups of 1M rows; string ids dictionary-encoded where Parquet's dictionary fits)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    n_users, n_items = max(rows // 20, 1), max(rows // 200, 1)
    writer = None
    step = 1 << 22
    for start in range(0, rows, step):
        n = min(step, rows - start)
        users = rng.integers(0, n_users, n) * 7 + 1_000_000_000
        items = np.minimum(rng.zipf(1.3, n), n_items) * 13
        weights = rng.integers(1, 6, n).astype(np.float32)
        u, i = pa.array(users), pa.array(items)
        if strings:
            u = pc.binary_join_element_wise("user-", pc.cast(u, pa.string()), "")
            i = pc.binary_join_element_wise("item-", pc.cast(i, pa.string()), "")
        t = pa.table({"user": u, "item": i, "weight": weights})
        if writer is None:
            writer = pq.ParquetWriter(path, t.schema)
        writer.write_table(t, row_group_size=1 << 20)
    writer.close()


def _peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike getrusage's ru_maxrss, not carried
    over from the parent that forked it)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run_method(method: str, path: str, out_dir: str) -> dict:
    t0 = time.perf_counter()
    if method == "imports":  # the process's start-up alone (interpreter, NumPy, pyarrow)
        import pyarrow.dataset  # noqa: F401
        import scipy.sparse  # noqa: F401

        import tacitrec.io  # noqa: F401

        nnz, shape, final = 0, (0, 0), 0
    elif method == "tacitrec":
        from tacitrec import io

        X, uids, iids = io.read_interactions(path, "user", "item", "weight", out_dir=out_dir)
        nnz, shape = X.nnz, X.shape
        final = X.indices.nbytes + X.data.nbytes + X.indptr.nbytes + uids.nbytes + iids.nbytes
    elif method == "tacitrec-ram":
        from tacitrec import io

        X, uids, iids = io.read_interactions(path, "user", "item", "weight")
        nnz, shape = X.nnz, X.shape
        final = X.indices.nbytes + X.data.nbytes + X.indptr.nbytes + uids.nbytes + iids.nbytes
    elif method == "old-cli-reader":
        # the command line's Parquet reader before tacitrec.io (commit 4fd5a93): the whole
        # table read, ids as str, NumPy's unique, SciPy's COO -> CSR
        import pyarrow.parquet as pq
        import scipy.sparse as sp

        from tacitrec import _ids

        t = pq.read_table(path)
        w = np.asarray(t.column("weight").to_numpy(zero_copy_only=False), dtype=np.float64)
        uids, rows = _ids.encode(t.column("user").to_numpy(zero_copy_only=False).astype(str))
        iids, cols = _ids.encode(t.column("item").to_numpy(zero_copy_only=False).astype(str))
        X = sp.csr_matrix((w.astype(np.float32), (rows, cols)), shape=(len(uids), len(iids)))
        X.sum_duplicates()
        nnz, shape, final = X.nnz, X.shape, 0
    elif method == "pyarrow-scipy":
        import pyarrow.parquet as pq
        import scipy.sparse as sp

        t = pq.read_table(path, columns=["user", "item", "weight"])
        uids, rows = np.unique(t.column("user").to_numpy(), return_inverse=True)
        iids, cols = np.unique(t.column("item").to_numpy(), return_inverse=True)
        w = t.column("weight").to_numpy()
        del t
        X = sp.csr_matrix((w, (rows, cols)), shape=(len(uids), len(iids)), dtype=np.float32)
        X.sum_duplicates()
        nnz, shape, final = X.nnz, X.shape, 0
    else:
        raise ValueError(method)
    wall = time.perf_counter() - t0
    r = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "method": method,
        "wall_s": wall,
        "cpu_s": r.ru_utime + r.ru_stime,
        "peak_rss_mb": _peak_rss_mb(),
        "nnz": int(nnz),
        "shape": list(shape),
        "final_mb": final / 2**20,
    }


def measure(method: str, path: str, out_dir: str, rows: int) -> dict:
    shutil.rmtree(out_dir, ignore_errors=True)
    out = subprocess.run(
        [sys.executable, __file__, "--method", method, "--path", path, "--out", out_dir],
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["rows"] = rows
    res["rows_per_cpu_s"] = rows / res["cpu_s"]
    res["rows_per_wall_s"] = rows / res["wall_s"]
    shutil.rmtree(out_dir, ignore_errors=True)
    return res


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=50_000_000)
    p.add_argument("--baseline-rows", type=int, default=10_000_000)
    p.add_argument("--old-rows", type=int, default=2_000_000)
    p.add_argument("--dir", default="/tmp/tacitrec-io-bench")
    p.add_argument("--method")
    p.add_argument("--path")
    p.add_argument("--out")
    a = p.parse_args()
    if a.method:
        print(json.dumps(run_method(a.method, a.path, a.out)))
        return
    os.makedirs(a.dir, exist_ok=True)
    results = []
    try:
        for strings in (False, True):
            kind = "string" if strings else "integer"
            sizes = {"big": a.rows, "base": a.baseline_rows, "old": a.old_rows}
            paths = {}
            for name, n in sizes.items():
                paths[name] = os.path.join(a.dir, f"{kind}-{n}.parquet")
                if not os.path.exists(paths[name]):
                    generate(paths[name], n, strings)
            plan = [
                ("imports", "old"),
                ("tacitrec", "big"),
                ("tacitrec-ram", "big"),
                ("tacitrec", "base"),
                ("pyarrow-scipy", "base"),
                ("tacitrec", "old"),
                ("old-cli-reader", "old"),
            ]
            start = None
            for method, size in plan:
                res = measure(method, paths[size], os.path.join(a.dir, "out"), sizes[size])
                res["ids"] = kind
                if method == "imports":
                    start = res
                    continue
                # rates and memory above the process's start-up
                res["cpu_work_s"] = res["cpu_s"] - start["cpu_s"]
                res["rows_per_cpu_s"] = res["rows"] / res["cpu_work_s"]
                res["rss_above_start_mb"] = res["peak_rss_mb"] - start["peak_rss_mb"]
                results.append(res)
                print(json.dumps(res), flush=True)
    finally:
        shutil.rmtree(a.dir, ignore_errors=True)
    print()
    print(
        "| ids | method | rows | CPU s | rows per CPU-s | on 2 cores | wall s | peak RSS MB "
        "| above start-up | final CSR + ids MB |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['ids']} | {r['method']} | {r['rows'] / 1e6:.0f}M | {r['cpu_work_s']:.1f} | "
            f"{r['rows_per_cpu_s'] / 1e6:.2f}M | {2 * r['rows_per_cpu_s'] / 1e6:.1f}M | "
            f"{r['wall_s']:.1f} | {r['peak_rss_mb']:.0f} | {r['rss_above_start_mb']:.0f} | "
            + (f"{r['final_mb']:.0f} |" if r["final_mb"] else "- |")
        )


if __name__ == "__main__":
    main()

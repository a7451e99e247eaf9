"""Which approximate-search library tacitrec's ``model.approximate()`` should build on: usearch,
faiss-cpu, hnswlib and voyager on the same factors, by recall@10 against the exact top-10, queries
per second, build time and memory (each library in its own process).

    python benches/compare/ann_libraries.py [--items 200000] [--factors 64] [--queries 2000]
                                            [--threads 2] [--libs usearch,faiss,hnswlib,voyager]
                                            [--metrics ip,l2] [--real]

Every library builds an HNSW graph with the same parameters (M = 16 links, ef_construction = 128)
over trained-like item factors (:func:`trained_like`): the inner product either natively (``ip``)
or by the norm-completing transform to Euclidean distance (``l2``: items get the coordinate
``sqrt(max|v|^2 - |v|^2)``, queries 0). ``--real`` also runs ALS factors trained on the real data
sets (MovieLens-100K, Last.fm-2K) when ``shared/data`` has them. Prints one row per (library,
metric, ef); the libraries are optional: a missing one is reported and skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))

EFS = (16, 32, 64, 128, 256)
M, EF_CONSTRUCTION = 16, 128


def trained_like(n: int, f: int, seed: int, norm_sigma: float = 1.0) -> np.ndarray:
    """``n`` x ``f`` float32 rows shaped like ALS factors (measured on MovieLens and Last.fm):
    directions share a mean direction (norm ~0.4 against unit-variance noise, as the real item
    factors' do) and the norms are log-normal with log-sd ``norm_sigma`` (about 1 for the real
    item factors: the largest norm is 10-15x the median)."""
    rng = np.random.default_rng(seed)
    mean = np.random.default_rng(12345).standard_normal(f)
    mean *= 0.45 / np.linalg.norm(mean)
    out = np.empty((n, f), np.float32)
    step = 100_000
    for s in range(0, n, step):
        g = rng.standard_normal((min(step, n - s), f)) / np.sqrt(f) + mean
        g /= np.linalg.norm(g, axis=1, keepdims=True)
        g *= rng.lognormal(0.0, norm_sigma, size=(len(g), 1))
        out[s : s + len(g)] = g
    return out


def norm_completed(V: np.ndarray) -> np.ndarray:
    sq = np.einsum("ij,ij->i", V, V, dtype=np.float64)
    extra = np.sqrt(np.maximum(sq.max() - sq, 0.0)).astype(np.float32)
    return np.ascontiguousarray(np.hstack([V, extra[:, None]]))


def with_zero(Q: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.hstack([Q, np.zeros((len(Q), 1), np.float32)]))


# ---- one library per process -------------------------------------------------------------------
def _rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _build(lib: str, X: np.ndarray, metric: str, threads: int):
    d = X.shape[1]
    if lib == "usearch":
        from usearch.index import Index

        index = Index(
            ndim=d,
            metric="ip" if metric == "ip" else "l2sq",
            dtype="f32",
            connectivity=M,
            expansion_add=EF_CONSTRUCTION,
        )
        index.add(np.arange(len(X), dtype=np.uint64), X, threads=threads)
        return index
    if lib == "faiss":
        import faiss

        faiss.omp_set_num_threads(threads)
        index = faiss.IndexHNSWFlat(
            d, M, faiss.METRIC_INNER_PRODUCT if metric == "ip" else faiss.METRIC_L2
        )
        index.hnsw.efConstruction = EF_CONSTRUCTION
        index.add(X)
        return index
    if lib == "hnswlib":
        import hnswlib

        index = hnswlib.Index(space="ip" if metric == "ip" else "l2", dim=d)
        index.init_index(max_elements=len(X), M=M, ef_construction=EF_CONSTRUCTION)
        index.add_items(X, np.arange(len(X)), num_threads=threads)
        return index
    if lib == "voyager":
        import voyager

        space = voyager.Space.InnerProduct if metric == "ip" else voyager.Space.Euclidean
        index = voyager.Index(space, num_dimensions=d, M=M, ef_construction=EF_CONSTRUCTION)
        index.add_items(X, np.arange(len(X)), num_threads=threads)
        return index
    raise ValueError(lib)


def _search(lib: str, index, Q: np.ndarray, k: int, ef: int, threads: int) -> np.ndarray:
    if lib == "usearch":
        index.expansion_search = ef
        return index.search(Q, k, threads=threads).keys.astype(np.int64)
    if lib == "faiss":
        import faiss

        params = faiss.SearchParametersHNSW(efSearch=ef)
        return index.search(Q, k, params=params)[1]
    if lib == "hnswlib":
        index.set_ef(ef)
        return index.knn_query(Q, k, num_threads=threads)[0].astype(np.int64)
    if lib == "voyager":
        return index.query(Q, k, num_threads=threads, query_ef=ef)[0].astype(np.int64)
    raise ValueError(lib)


def worker(args) -> None:
    """Runs in its own process: builds one index and sweeps ef; prints one JSON line."""
    V = np.load(args.items_file)
    Q = np.load(args.queries_file)
    truth = np.load(args.truth_file)
    if args.metric == "l2":
        V, Q = norm_completed(V), with_zero(Q)
    rss0 = _rss_kb()
    t = time.perf_counter()
    c0 = time.process_time()
    index = _build(args.lib, V, args.metric, args.threads)
    build_s, build_cpu = time.perf_counter() - t, time.process_time() - c0
    mem_mb = (_rss_kb() - rss0) / 1024
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows = []
    k = truth.shape[1]
    for ef in EFS:
        _search(args.lib, index, Q[:64], k, ef, args.threads)  # warm-up
        best, best_cpu = np.inf, np.inf
        for _ in range(2):
            t, c = time.perf_counter(), time.process_time()
            got = _search(args.lib, index, Q, k, ef, args.threads)
            best = min(best, time.perf_counter() - t)
            best_cpu = min(best_cpu, time.process_time() - c)
        hits = sum(len(np.intersect1d(g, r)) for g, r in zip(got, truth))
        rows.append(
            {
                "ef": ef,
                "recall": hits / truth.size,
                "qps": len(Q) / best,
                "cpu_us_per_query": 1e6 * best_cpu / len(Q),
            }
        )
    print(
        json.dumps(
            {
                "lib": args.lib,
                "metric": args.metric,
                "build_s": build_s,
                "build_cpu_s": build_cpu,
                "index_mb": mem_mb,
                "peak_mb": peak_mb,
                "rows": rows,
            }
        )
    )


def exact_top(U: np.ndarray, V: np.ndarray, k: int, threads: int) -> np.ndarray:
    from tacitrec import MatrixFactorizationBase

    m = MatrixFactorizationBase(num_threads=threads)
    m.user_factors, m.item_factors = U, V
    return m.recommend(np.arange(len(U)), N=k, filter_already_liked_items=False)[0]


def run_case(label, V, Q, libs, metrics, threads, tmp) -> list:
    truth = exact_top(Q, V, 10, threads)
    paths = {}
    for name, arr in (("items", V), ("queries", Q), ("truth", truth)):
        paths[name] = os.path.join(tmp, f"{name}.npy")
        np.save(paths[name], arr)
    results = []
    for lib in libs:
        for metric in metrics:
            cmd = [
                sys.executable,
                __file__,
                "--worker",
                lib,
                "--metric",
                metric,
                "--threads",
                str(threads),
                "--items-file",
                paths["items"],
                "--queries-file",
                paths["queries"],
                "--truth-file",
                paths["truth"],
            ]
            p = subprocess.run(cmd, capture_output=True, text=True)
            if p.returncode != 0:
                tail = (p.stderr.strip().splitlines() or ["?"])[-1]
                print(f"{label}: {lib} {metric} failed: {tail}", flush=True)
                continue
            res = json.loads(p.stdout.strip().splitlines()[-1])
            res["case"] = label
            results.append(res)
            rows = "  ".join(
                f"ef{r['ef']}: {r['recall']:.3f}/{r['cpu_us_per_query']:.0f}us" for r in res["rows"]
            )
            print(
                f"{label} | {lib:8s} {metric:3s} | build {res['build_s']:.1f}s "
                f"(cpu {res['build_cpu_s']:.1f}s) | index {res['index_mb']:.0f} MB, "
                f"peak {res['peak_mb']:.0f} MB | recall/CPU per query {rows}",
                flush=True,
            )
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--items", type=int, default=200_000)
    ap.add_argument("--factors", type=int, default=64)
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--libs", default="usearch,faiss,hnswlib,voyager")
    ap.add_argument("--metrics", default="ip,l2")
    ap.add_argument("--real", action="store_true")
    ap.add_argument("--json", help="append the results to this file")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--metric", help=argparse.SUPPRESS)
    ap.add_argument("--items-file", help=argparse.SUPPRESS)
    ap.add_argument("--queries-file", help=argparse.SUPPRESS)
    ap.add_argument("--truth-file", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        args.lib = args.worker
        worker(args)
        return
    libs, metrics = args.libs.split(","), args.metrics.split(",")
    results = []
    with tempfile.TemporaryDirectory(prefix="tacitrec-ann-") as tmp:
        V = trained_like(args.items, args.factors, seed=1)
        Q = trained_like(args.queries, args.factors, seed=2, norm_sigma=0.5)
        label = f"trained-like {args.items:,} x {args.factors}"
        results += run_case(label, V, Q, libs, metrics, args.threads, tmp)
        if args.real:
            import tacitrec
            from common import load_real

            for name in ("ml-100k", "lastfm-2k"):
                X = load_real(name)
                if X is None:
                    print(f"{name}: not in shared/data, skipped")
                    continue
                if name == "lastfm-2k":
                    X.data = np.log1p(X.data)
                als = tacitrec.AlternatingLeastSquares(
                    factors=args.factors, iterations=15, random_state=0, num_threads=args.threads
                )
                als.fit(X, show_progress=False)
                label = f"ALS on {name} ({X.shape[1]:,} items)"
                results += run_case(
                    label, als.item_factors, als.user_factors, libs, metrics, args.threads, tmp
                )
    if args.json:
        with open(args.json, "a") as f:
            for r in results:
                f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()

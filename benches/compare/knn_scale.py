"""BM25 item-item kNN at catalogue sizes: one library, one size, one process.

    python benches/compare/knn_scale.py --lib tacitrec|implicit --size 300k,100k,10M
        [--generator powerlaw|clustered] [--threads 2] [--K 100] [--rec-users 50000]
        [--skip-recommend] [--warm-mb MB] [--repeat N]

Prints one JSON line: fit wall and CPU seconds (both threads; the system part of them separately,
mostly page faults: see RESULTS.md on this VM's fresh memory), the fit's peak resident memory
above the data, and recommend (N=10, liked filtered) wall and CPU seconds for the first
``--rec-users`` users; with each, the seconds the hypervisor took from the machine's CPUs
meanwhile (``steal``: other tenants' load, which moves single runs on the VMs of RESULTS.md).
With ``--repeat N`` the fit runs N times in the process (a new model each time): ``fit_cpu``,
``fit_wall`` and ``fit_sys`` are then the medians, ``fit_cpu_all`` lists every fit's CPU seconds
(the first pays for the process's fresh memory and pool), and the peak is the first fit's.
One library per process, so a shell loop can interleave the libraries (and two builds of
tacitrec, through PYTHONPATH) under the same machine load; the data is drawn once per size and
generator and cached in ``--cache`` (default /tmp/tacitrec-knn-scale).

Generators: ``powerlaw`` is the other benchmarks' (common.power_law_user_items: Zipf item
popularity exponent 0.8, Zipf user activity exponent 1.8 capped at 200, binary);
``clustered`` is tacitrec.datasets.synthetic (20 taste clusters, popularity exponent 1.0,
geometric user activity, repeated draws summed into counts).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(__file__))

import numpy as np
import scipy.sparse as sp

# at import: sgd_scale.py imports this module, then takes this folder off sys.path
from common import measured, power_law_user_items  # noqa: E402


def parse_count(s: str) -> int:
    s = s.strip().lower()
    mult = {"k": 1_000, "m": 1_000_000}.get(s[-1], 1)
    return int(float(s.rstrip("km")) * mult)


def data(size: str, generator: str, cache: str) -> sp.csr_matrix:
    users, items, nnz = (parse_count(p) for p in size.split(","))
    os.makedirs(cache, exist_ok=True)
    path = os.path.join(cache, f"{generator}-{users}-{items}-{nnz}.npz")
    if os.path.exists(path):
        return sp.load_npz(path).tocsr()
    per_user = nnz / users
    if generator == "powerlaw":
        X = power_law_user_items(users, items, per_user, seed=3)
    elif generator == "clustered":
        from tacitrec.datasets import synthetic

        X = synthetic(
            n_users=users,
            n_items=items,
            interactions_per_user=max(1, round(per_user)),
            popularity_skew=1.0,
            random_state=3,
        ).user_items.tocsr()
    else:
        raise SystemExit(f"unknown generator {generator!r}")
    X = X.astype(np.float32)
    X.sort_indices()
    sp.save_npz(path + ".tmp.npz", X, compressed=False)
    os.replace(path + ".tmp.npz", path)
    return X


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--lib", required=True, choices=["tacitrec", "implicit"])
    ap.add_argument("--size", default="300k,100k,10M")
    ap.add_argument("--generator", default="powerlaw", choices=["powerlaw", "clustered"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--K", type=int, default=100)
    ap.add_argument("--rec-users", type=int, default=50_000)
    ap.add_argument("--skip-recommend", action="store_true")
    ap.add_argument("--tag", default="", help="label for the output (e.g. before/after)")
    ap.add_argument("--cache", default="/tmp/tacitrec-knn-scale")
    ap.add_argument("--warm-mb", type=int, default=0, help="pre-touch this much memory (MB)")
    ap.add_argument("--repeat", type=int, default=1, help="fits in the process (medians)")
    args = ap.parse_args()

    X = data(args.size, args.generator, args.cache)
    if args.lib == "tacitrec":
        import tacitrec

        model = tacitrec.BM25Recommender(K=args.K, num_threads=args.threads)
        x = X
    else:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        from implicit.nearest_neighbours import BM25Recommender

        model = BM25Recommender(K=args.K, num_threads=args.threads)
        x = X.astype(np.float64)  # implicit's kNN wants float64
    users = np.arange(min(args.rec_users, X.shape[0]))
    rows = x[users]

    def fit():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(x, show_progress=False)

    fits = []
    for r in range(max(1, args.repeat)):
        if r:
            model = type(model)(K=args.K, num_threads=args.threads)
        fits.append(measured(fit, peak=r == 0, warm_mb=args.warm_mb if r == 0 else 0)[1])
    fm = {key: float(np.median([f[key] for f in fits])) for key in ("cpu", "wall", "sys", "steal")}
    fm["peak_mb"] = fits[0]["peak_mb"]
    sim = model.similarity
    out = dict(
        lib=args.lib,
        tag=args.tag,
        size=args.size,
        generator=args.generator,
        shape=list(X.shape),
        nnz=int(X.nnz),
        threads=args.threads,
        fit_wall=fm["wall"],
        fit_cpu=fm["cpu"],
        fit_sys=fm["sys"],
        fit_steal=fm["steal"],
        fit_peak_mb=fm["peak_mb"],
        fit_cpu_all=[round(f["cpu"], 4) for f in fits],
        sim_nnz=int(sim.nnz),
        sim_checksum=float(np.asarray(sim.data, dtype=np.float64).sum()),
    )
    if not args.skip_recommend:
        (ids, _), rm = measured(lambda: model.recommend(users, rows, N=10), peak=False)
        out.update(
            rec_users=len(users),
            rec_wall=rm["wall"],
            rec_cpu=rm["cpu"],
            rec_sys=rm["sys"],
            rec_steal=rm["steal"],
            rec_checksum=int(np.asarray(ids, dtype=np.int64).sum()),
        )
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()

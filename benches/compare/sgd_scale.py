"""BPR, LMF and LightFM warp at catalogue sizes: one library, one model, one size, one process.

    python benches/compare/sgd_scale.py --lib tacitrec|implicit|lightfm --model bpr|lmf|warp
        --size 300k,100k,10M [--generator powerlaw|clustered] [--threads 2] [--epochs N]
        [--factors 64] [--tag before]

Prints one JSON line: the fit's CPU seconds (process time, all threads) and wall seconds, both
per epoch (the whole fit divided by the epochs, setup included), the fit's peak resident memory
above the data, a sampled AUC on the training interactions (50,000 stored (user, item) pairs
against a uniformly drawn item, the same pairs for every library) and a checksum of the factors
(sum of their absolute values, float64), so that two builds of tacitrec can be compared for
identical results. One library per process, so a shell loop can interleave the libraries (and
two builds of tacitrec, through PYTHONPATH) under the same machine load.

The peers: implicit 0.7.3 (BPR, LMF; 1 BLAS thread, ``num_threads`` threads) and LightFM 1.17
(warp; ``num_threads``). Hyper-parameters: each library's defaults (implicit's and tacitrec's are
the same), ``--factors`` factors / components, random_state 0. tacitrec's BPR runs its default
(reproducible, stratified) schedule unless ``--variant hogwild``.

The data comes from knn_scale.py's generators and cache (``powerlaw``, ``clustered``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np

from knn_scale import data, status_mb  # noqa: E402

# the folder's lightfm.py would shadow the peer
sys.path[:] = [p for p in sys.path if os.path.abspath(p) != os.path.dirname(os.path.abspath(__file__))]


def auc_pairs(X, n=50_000, seed=11):
    """(users, positives, negatives): n stored entries and a uniform item each."""
    rng = np.random.default_rng(seed)
    k = rng.integers(0, X.nnz, n)
    users = np.searchsorted(X.indptr, k, side="right") - 1
    return users, X.indices[k], rng.integers(0, X.shape[1], n)


def sampled_auc(U, V, pairs, ub=None, vb=None):
    u, i, j = pairs
    si = np.einsum("ij,ij->i", U[u], V[i])
    sj = np.einsum("ij,ij->i", U[u], V[j])
    if vb is not None:
        si, sj = si + vb[i], sj + vb[j]
    return float(np.mean(si > sj) + 0.5 * np.mean(si == sj))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--lib", required=True, choices=["tacitrec", "implicit", "lightfm"])
    ap.add_argument("--model", required=True, choices=["bpr", "lmf", "warp"])
    ap.add_argument("--size", default="300k,100k,10M")
    ap.add_argument("--generator", default="powerlaw", choices=["powerlaw", "clustered"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--factors", type=int, default=64)
    ap.add_argument("--variant", default="", choices=["", "hogwild"])
    ap.add_argument("--tag", default="", help="label for the output (e.g. before/after)")
    ap.add_argument("--cache", default="/tmp/tacitrec-knn-scale")
    args = ap.parse_args()
    if args.lib != "tacitrec" and (args.model == "warp") != (args.lib == "lightfm"):
        raise SystemExit(f"{args.lib} has no {args.model}")

    X = data(args.size, args.generator, args.cache)
    pairs = auc_pairs(X)
    kw = dict(random_state=0)
    if args.model == "warp":
        if args.lib == "tacitrec":
            import tacitrec as lib
        else:
            import lightfm as lib
        x = X.tocoo()
        model = lib.LightFM(no_components=args.factors, loss="warp", **kw)

        def fit():
            model.fit(x, epochs=args.epochs, num_threads=args.threads)

    else:
        kw.update(factors=args.factors, iterations=args.epochs, num_threads=args.threads)
        if args.variant == "hogwild":
            kw["deterministic"] = False
        if args.lib == "tacitrec":
            import tacitrec

            cls = {
                "bpr": tacitrec.BayesianPersonalizedRanking,
                "lmf": tacitrec.LogisticMatrixFactorization,
            }[args.model]
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from implicit.cpu.bpr import BayesianPersonalizedRanking
                from implicit.cpu.lmf import LogisticMatrixFactorization

            cls = {"bpr": BayesianPersonalizedRanking, "lmf": LogisticMatrixFactorization}[
                args.model
            ]
        model = cls(**kw)
        x = X

        def fit():
            model.fit(x, show_progress=False)

    try:
        import ctypes

        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    base = status_mb("VmRSS")
    c0, t0 = time.process_time(), time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = status_mb("VmHWM") - base
    if args.model == "warp":
        U, V = model.user_embeddings, model.item_embeddings
        ub, vb = model.user_biases, model.item_biases
        auc = sampled_auc(U, V, pairs, ub, vb)
        checksum = float(np.abs(U).sum(dtype=np.float64) + np.abs(V).sum(dtype=np.float64))
    else:
        U, V = np.asarray(model.user_factors), np.asarray(model.item_factors)
        auc = sampled_auc(U, V, pairs)
        checksum = float(np.abs(U).sum(dtype=np.float64) + np.abs(V).sum(dtype=np.float64))
    print(
        json.dumps(
            dict(
                lib=args.lib,
                model=args.model,
                variant=args.variant,
                tag=args.tag,
                size=args.size,
                generator=args.generator,
                shape=list(X.shape),
                nnz=int(X.nnz),
                threads=args.threads,
                factors=args.factors,
                epochs=args.epochs,
                cpu_per_epoch=cpu / args.epochs,
                wall_per_epoch=wall / args.epochs,
                peak_mb=peak,
                auc=auc,
                checksum=checksum,
                load=os.getloadavg()[0],
            )
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()

"""BPR, LMF, LightFM warp (and ALS) at catalogue sizes: one library, model and size per process.

    python benches/compare/sgd_scale.py --lib tacitrec|implicit|lightfm --model bpr|lmf|warp|als
        --size 300k,100k,10M [--generator powerlaw|clustered] [--threads 2] [--epochs N]
        [--factors 64] [--tag before] [--warm-mb MB] [--alpha A]

Prints one JSON line: the fit's CPU seconds (process time, all threads; its system part, mostly
page faults, separately), wall seconds and the seconds the hypervisor took from the machine's
CPUs meanwhile (steal; see common.measured), all per epoch (the whole fit divided by the epochs,
setup included), the fit's peak resident memory above the data, a sampled AUC on the training
interactions (50,000 stored (user, item) pairs against a uniformly drawn item, the same pairs
for every library) and a checksum of the factors (sum of their absolute values, float64), so
that two builds of tacitrec can be compared for identical results. One library per process, so a
shell loop can interleave the libraries (and two builds of tacitrec, through PYTHONPATH) under
the same machine load.

The peers: implicit 0.7.3 (BPR, LMF; 1 BLAS thread, ``num_threads`` threads) and LightFM 1.17
(warp; ``num_threads``). Hyper-parameters: each library's defaults (implicit's and tacitrec's are
the same), ``--factors`` factors / components, random_state 0. ``--alpha`` (ALS only, both
libraries) multiplies the confidences: the generators' data are counts (clustered) or binary
(power-law), and at alpha = 1 an entry of 1 has no interaction term in ALS's normal equations
(``(c - 1) y y^T``), which tacitrec's CG leaves out and implicit computes; alpha = 40 gives every
entry one. tacitrec's BPR runs its default (reproducible, stratified) schedule unless ``--variant
hogwild``; tacitrec's LightFM its default epoch order (users grouped) unless ``--variant
interactions`` (LightFM's: all interactions shuffled).

The data comes from knn_scale.py's generators and cache (``powerlaw``, ``clustered``).

    python benches/compare/sgd_scale.py --report LOG.jsonl [LOG.jsonl ...] [--png PATH]

reads the JSON lines of such runs, and of knn_scale.py's, and prints the markdown tables (median
CPU seconds per epoch of each library and tag at each size and generator, the peer's over
tacitrec's, peak memory; the kNN's fit and recommend by CPU and by wall clock), and with
``--png`` draws every ratio against the number of items (one line per model and generator), the
issue-22 targets dashed.
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

from common import measured  # noqa: E402
from knn_scale import data  # noqa: E402

# the folder's lightfm.py would shadow the peer
sys.path[:] = [
    p for p in sys.path if os.path.abspath(p) != os.path.dirname(os.path.abspath(__file__))
]


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


PEER = {"bpr": "implicit", "lmf": "implicit", "warp": "lightfm", "als": "implicit"}


TARGETS = {"als": 3, "bpr": 3, "lmf": 3, "warp": 5, "knn fit": 3, "knn recommend": 10}


def report(paths, png, ours="after"):
    """The tables of runs in ``paths`` (JSON lines of this script and of knn_scale.py) and, with
    ``png``, the chart of every ratio against the catalogue size, each model's target drawn."""
    from collections import defaultdict
    from statistics import median

    runs = defaultdict(list)
    for path in paths:
        with open(path) as fh:
            for line in fh:
                if line.startswith("{"):
                    r = json.loads(line)
                    r.setdefault("model", "knn")  # knn_scale.py's lines
                    if r.get("alpha", 1.0) != 1.0:
                        r["model"] += f" alpha={r['alpha']:g}"
                    who = r["lib"] if r["lib"] != "tacitrec" else r["tag"] or "tacitrec"
                    runs[(r["model"], r["generator"], tuple(r["shape"]), r["nnz"], who)].append(r)
    cases = sorted({k[:4] for k in runs}, key=lambda k: (k[0], k[1], k[2][1], k[2][0]))
    fmt = lambda v, f="{:.2f}": "-" if v is None else f.format(v)  # noqa: E731
    ratio = lambda a, b: "-" if a is None or b is None else f"{a / b:.1f}x"  # noqa: E731
    size = lambda shape, nnz: f"{shape[0] // 1000}k x {shape[1] // 1000}k x {nnz / 1e6:.1f}M"  # noqa: E731
    points = defaultdict(list)
    print(
        "| model | generator | users x items x nnz | epochs | CPU s/epoch before / after / peer "
        "| peer / after | peer / before | peak MB before / after / peer | AUC after / peer |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for case in cases:
        model, gen, shape, nnz = case
        if model == "knn":
            continue
        base = model.split()[0]
        got = {w: runs.get(case + (w,), []) for w in ("before", ours, PEER[base])}
        cpu = {w: median(r["cpu_per_epoch"] for r in rs) if rs else None for w, rs in got.items()}
        mb = {w: median(r["peak_mb"] for r in rs) if rs else None for w, rs in got.items()}
        peer, after, before = cpu[PEER[base]], cpu[ours], cpu["before"]
        epochs = {r["epochs"] for rs in got.values() for r in rs}
        auc = [got[w][0]["auc"] if got[w] else None for w in (ours, PEER[base])]
        name = "LightFM warp" if model == "warp" else model.replace(base, base.upper())
        print(
            f"| {name} | {gen} | "
            f"{size(shape, nnz)} | "
            f"{'/'.join(map(str, sorted(epochs)))} | {fmt(before)} / {fmt(after)} / {fmt(peer)} | "
            f"{ratio(peer, after)} | {ratio(peer, before)} | "
            f"{fmt(mb['before'], '{:.0f}')} / {fmt(mb[ours], '{:.0f}')} / "
            f"{fmt(mb[PEER[base]], '{:.0f}')} | "
            f"{fmt(auc[0], '{:.3f}')} / {fmt(auc[1], '{:.3f}')} |"
        )
        for tag, val in (("after", after), ("before", before)):
            if peer is not None and val is not None:
                points[(model, gen, tag)].append((shape[1], peer / val))
    knn = [c for c in cases if c[0] == "knn"]
    if knn:
        print()
        print(
            "| BM25 kNN, K=100 | users x items x nnz | fit CPU s, tacitrec / implicit | fit "
            "| recommend CPU s (wall) | by CPU | by wall | fit peak MB | similarity checksums |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
    for case in knn:
        _, gen, shape, nnz = case
        a, p = runs.get(case + (ours,), []), runs.get(case + ("implicit",), [])
        if not a or not p:
            continue
        m = {k: (median(r[k] for r in a), median(r[k] for r in p)) for k in a[0] if "_" in k}
        same = all(
            abs(x["sim_checksum"] - p[0]["sim_checksum"]) <= 1e-6 * abs(p[0]["sim_checksum"])
            for x in a
        )
        print(
            f"| {gen} | {size(shape, nnz)} | {m['fit_cpu'][0]:.2f} / {m['fit_cpu'][1]:.2f} | "
            f"{ratio(m['fit_cpu'][1], m['fit_cpu'][0])} | "
            f"{m['rec_cpu'][0]:.3f} ({m['rec_wall'][0]:.3f}) / "
            f"{m['rec_cpu'][1]:.3f} ({m['rec_wall'][1]:.3f}) | "
            f"{ratio(m['rec_cpu'][1], m['rec_cpu'][0])} | "
            f"{ratio(m['rec_wall'][1], m['rec_wall'][0])} | "
            f"{m['fit_peak_mb'][0]:.0f} / {m['fit_peak_mb'][1]:.0f} | "
            f"{'equal' if same else 'DIFFER'} |"
        )
        for what, key in (
            ("fit", "fit_cpu"),
            ("recommend CPU", "rec_cpu"),
            ("recommend wall", "rec_wall"),
        ):
            points[(f"knn {what}", gen, "after")].append((shape[1], m[key][1] / m[key][0]))
    if png:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharex=True)
        colors = {
            "bpr": "C0", "lmf": "C1", "warp": "C2", "als": "C3",
            "knn fit": "C4", "knn recommend CPU": "C5", "knn recommend wall": "C6",
        }  # fmt: skip
        for (model, gen, tag), pts in sorted(points.items()):
            pts.sort()
            name = {
                "warp": "LightFM warp",
                "knn fit": "fit",
                "knn recommend CPU": "recommend, CPU",
                "knn recommend wall": "recommend, wall",
            }.get(model, model.replace(model.split()[0], model.split()[0].upper()))
            axes[int(model.startswith("knn"))].plot(
                [p[0] for p in pts],
                [p[1] for p in pts],
                color=colors[model.split()[0] if not model.startswith("knn") else model],
                linestyle=":" if tag == "before" else "-." if "alpha" in model else "-",
                marker="o" if gen == "powerlaw" else "s",
                label=f"{name} {gen}" + (" before" if tag == "before" else ""),
            )
        for model, target in TARGETS.items():
            ax = axes[int(model.startswith("knn"))]
            color = colors.get(model, colors.get(model + " wall"))
            ax.axhline(target, color=color, linewidth=0.8, linestyle="--", alpha=0.6)
        for ax, title in zip(axes, ("ALS, BPR, LMF, LightFM warp", "BM25 kNN (K=100)")):
            ax.set_xscale("log")
            ax.set_ylim(bottom=0)
            ax.set_xlabel("items (catalogue size)")
            ax.set_title(title + ": dashed lines are the targets", fontsize=9)
            ax.legend(fontsize=6, ncol=2)
        axes[0].set_ylabel("speed-up over the peer in the same run")
        fig.suptitle(
            "tacitrec against implicit 0.7.3 / LightFM 1.17, 2 threads (CPU s unless 'wall')",
            fontsize=10,
        )
        fig.tight_layout()
        fig.savefig(png, dpi=120)


def main():
    if "--report" in sys.argv:
        ap = argparse.ArgumentParser()
        ap.add_argument("--report", nargs="+", required=True)
        ap.add_argument("--png")
        ap.add_argument("--ours", default="after")
        a = ap.parse_args()
        report(a.report, a.png, a.ours)
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--lib", required=True, choices=["tacitrec", "implicit", "lightfm"])
    ap.add_argument("--model", required=True, choices=["bpr", "lmf", "warp", "als"])
    ap.add_argument("--size", default="300k,100k,10M")
    ap.add_argument("--generator", default="powerlaw", choices=["powerlaw", "clustered"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--factors", type=int, default=64)
    ap.add_argument("--variant", default="", choices=["", "hogwild", "interactions"])
    ap.add_argument("--alpha", type=float, default=1.0, help="ALS: the confidences' multiplier")
    ap.add_argument("--tag", default="", help="label for the output (e.g. before/after)")
    ap.add_argument("--cache", default="/tmp/tacitrec-knn-scale")
    ap.add_argument("--warm-mb", type=int, default=0, help="pre-touch this much memory (MB)")
    args = ap.parse_args()
    if args.lib != "tacitrec" and (args.model == "warp") != (args.lib == "lightfm"):
        raise SystemExit(f"{args.lib} has no {args.model}")
    if args.alpha != 1.0 and args.model != "als":
        raise SystemExit("--alpha is ALS's")

    X = data(args.size, args.generator, args.cache)
    pairs = auc_pairs(X)
    kw = dict(random_state=0)
    if args.model == "warp":
        if args.lib == "tacitrec":
            import tacitrec as lib
        else:
            import lightfm as lib
        x = X.tocoo()
        if args.variant == "interactions":
            kw["order"] = "interactions"
        model = lib.LightFM(no_components=args.factors, loss="warp", **kw)

        def fit():
            model.fit(x, epochs=args.epochs, num_threads=args.threads)

    else:
        kw.update(factors=args.factors, iterations=args.epochs, num_threads=args.threads)
        if args.model == "als":
            kw["alpha"] = args.alpha
        if args.variant == "hogwild":
            kw["deterministic"] = False
        if args.lib == "tacitrec":
            import tacitrec

            cls = {
                "bpr": tacitrec.BayesianPersonalizedRanking,
                "lmf": tacitrec.LogisticMatrixFactorization,
                "als": tacitrec.AlternatingLeastSquares,
            }[args.model]
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from implicit.cpu.als import AlternatingLeastSquares
                from implicit.cpu.bpr import BayesianPersonalizedRanking
                from implicit.cpu.lmf import LogisticMatrixFactorization

            cls = {
                "bpr": BayesianPersonalizedRanking,
                "lmf": LogisticMatrixFactorization,
                "als": AlternatingLeastSquares,
            }[args.model]
        model = cls(**kw)
        x = X

        def fit():
            model.fit(x, show_progress=False, callback=lambda *a: marks.append(time.process_time()))

    marks = []  # process time after each epoch (ALS, BPR, LMF: both libraries' callback)

    def quiet_fit():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit()

    _, m = measured(quiet_fit, warm_mb=args.warm_mb)
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
                alpha=args.alpha,
                tag=args.tag,
                size=args.size,
                generator=args.generator,
                shape=list(X.shape),
                nnz=int(X.nnz),
                threads=args.threads,
                factors=args.factors,
                epochs=args.epochs,
                cpu_per_epoch=m["cpu"] / args.epochs,
                sys_per_epoch=m["sys"] / args.epochs,
                epoch_marks=[round(t - m["cpu_start"], 4) for t in marks],
                wall_per_epoch=m["wall"] / args.epochs,
                steal_per_epoch=m["steal"] / args.epochs,
                peak_mb=m["peak_mb"],
                auc=auc,
                checksum=checksum,
                load=os.getloadavg()[0],
            )
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()

"""Quality with every model tuned the same way: implicit 0.7.3, LightFM 1.17 and tacitrec on
MovieLens-100K (ratings >= 4 as 1) and Last.fm-2K (artist play counts).

    python benches/compare/tuned_quality.py [--datasets ml-100k,lastfm-2k] [--trials 10]
        [--seed 0] [--threads 2] [--models NAME,...] [--library NAME] [--markdown PATH]

Protocol, the same for every model of the three libraries:

* one fixed split of each data set: 80/20 of the interactions at random
  (``tacitrec.evaluation.train_test_split``, seed 42; the split of the report's other quality
  section), scored against all items with each user's training items excluded;
* a validation split carved from the training split only, the same way (80/20 of its
  interactions, ``validation_split(by="interaction")``, seed 0), so that validation measures
  what test measures;
* ``tacitrec.model_selection.random_search``: ``--trials`` settings drawn with the same seed
  from the ranges below, ndcg@10 on validation; iterative models are scored every few
  iterations (epochs) and stop after 3 checks without improvement, the best iteration count
  being part of the setting. Models with the same hyper-parameters in two libraries draw the same
  settings (same ranges, same seed);
* the best setting refit on the whole training split (``SearchResult.refit``) and scored once on
  test: ndcg@10, precision@10, recall@20.

The peers go through the same search code: a thin wrapper gives every model the same ``fit``
(with the per-iteration callback the search uses for early stopping; LightFM one ``fit_partial``
epoch per iteration) and the same ``recommend`` (LightFM 1.17 has none: its user and item
representations score every item, training items removed). Every model sees the same 0/1 matrix
except ALS, whose input weighting is a hyper-parameter (none, log(1 + value), bm25 with K1=100,
B=0.8 as in implicit's Last.fm example); on Last.fm those weight the play counts. Selecting the
best model of a library is by validation ndcg@10, never by test.

The data is not part of the repository: a data set whose folder is missing is skipped.
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
import time
import warnings

_HERE = os.path.abspath(os.path.dirname(__file__))
sys.path.insert(0, _HERE)

import numpy as np
import scipy.sparse as sp

from common import DATA, load_real

# `import lightfm` must find LightFM, not benches/compare/lightfm.py
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

K1_BM25, B_BM25 = 100.0, 0.8  # ALS's bm25 input weighting, as implicit's Last.fm example


# ---- one fit / recommend for every model --------------------------------------------------------
def _scipy(user_items):
    if hasattr(user_items, "to_scipy"):  # tacitrec's evaluator hands rows as its own Csr
        user_items = user_items.to_scipy()
    return sp.csr_matrix(user_items)


def _binary(X):
    X = _scipy(X).astype(np.float32)
    X.data[:] = 1.0
    return X


def _weigh(X, weighting):
    X = _scipy(X).astype(np.float32)
    if weighting == "binary":
        X.data[:] = 1.0
    elif weighting == "log":
        X.data = np.log1p(X.data).astype(np.float32)
    elif weighting == "bm25":
        from tacitrec.knn import bm25_weight

        X = bm25_weight(X.T.tocsr(), K1=K1_BM25, B=B_BM25).T.tocsr().astype(np.float32)
    elif weighting != "none":
        raise ValueError(f"weighting must be binary, none, log or bm25, got {weighting!r}")
    return X


class Wrapped:
    """``inner`` (a model of any of the three libraries) with the interface the search uses:
    ``fit(user_items, show_progress, callback)``, ``iterations`` for iterative models, and
    tacitrec's ``recommend``. ``weighting`` transforms the training matrix given to ``fit``;
    ``recommend`` passes 0/1 rows (the factor models use them only to remove training items)."""

    def __init__(self, inner, weighting="binary", iterations=None, fit_kwargs=None):
        self.inner = inner
        self.weighting = weighting
        if iterations is not None:
            self.iterations = int(iterations)
        self.fit_kwargs = fit_kwargs or {}

    def fit(self, user_items, show_progress=False, callback=None):
        X = _weigh(user_items, self.weighting)
        if hasattr(self.inner, "fit_partial") and hasattr(self, "iterations"):  # LightFM
            fresh = self.inner.fit_partial.__module__.startswith("tacitrec")
            if fresh:
                self.inner.fit(X, epochs=0, **self.fit_kwargs)
            for epoch in range(self.iterations):
                self.inner.fit_partial(X, epochs=1, **self.fit_kwargs)
                if callback is not None:
                    callback(epoch)
            return self
        if callback is None:
            self.inner.fit(X, show_progress=False)
        else:
            self.inner.fit(X, show_progress=False, callback=callback)
        return self

    def recommend(self, userid, user_items, N=10, filter_already_liked_items=True):
        rows = _binary(user_items)
        if hasattr(self.inner, "recommend"):
            return self.inner.recommend(
                userid, rows, N=N, filter_already_liked_items=filter_already_liked_items
            )
        # LightFM 1.17: scores of every item from its representations (what predict computes;
        # the user bias does not change a user's ranking)
        _, users = self.inner.get_user_representations()
        item_bias, items = self.inner.get_item_representations()
        scores = users[np.asarray(userid)] @ items.T + item_bias
        if filter_already_liked_items:
            r, c = rows.nonzero()
            scores[r, c] = -np.inf
        top = np.argpartition(-scores, N - 1, axis=1)[:, :N]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
        ids = np.take_along_axis(top, order, axis=1)
        return ids, np.take_along_axis(scores, ids, axis=1)


# ---- the models and their ranges ---------------------------------------------------------------
def _quiet(cls):
    def make(**kw):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return cls(**kw)

    return make


def _factor(cls, threads, weighting=None):
    """An iterative factor model: ``weighting`` and ``iterations`` go to the wrapper."""

    def make(iterations, weighting=weighting or "binary", **kw):
        return Wrapped(
            _quiet(cls)(iterations=iterations, random_state=0, num_threads=threads, **kw),
            weighting,
            iterations,
        )

    return make


def _lightfm(cls, loss, threads, ours):
    def make(iterations, alpha, **kw):
        extra = {"num_threads": threads} if ours else {}
        model = cls(loss=loss, item_alpha=alpha, user_alpha=alpha, random_state=0, **extra, **kw)
        return Wrapped(model, "binary", iterations, {"num_threads": threads})

    return make


def _plain(cls, threads=None, **fixed):
    def make(**kw):
        extra = {"num_threads": threads} if threads is not None else {}
        return Wrapped(_quiet(cls)(**fixed, **extra, **kw))

    return make


ALS_SPACE = {
    "factors": ("int", 32, 256),
    "regularization": ("log", 1e-3, 10.0),
    "alpha": ("log", 1.0, 50.0),
    "weighting": ["none", "log", "bm25"],
    "iterations": [30],
}
BPR_SPACE = {
    "factors": ("int", 32, 256),
    "learning_rate": ("log", 1e-3, 0.1),
    "regularization": ("log", 1e-4, 0.1),
    "iterations": [300],
}
LMF_SPACE = {
    "factors": ("int", 16, 128),
    "learning_rate": ("log", 0.1, 3.0),
    "regularization": ("log", 0.01, 10.0),
    "neg_prop": ("int", 5, 50),
    "iterations": [100],
}
KNN_SPACE = {"K": ("int", 20, 500)}
BM25_SPACE = {"K": ("int", 20, 500), "K1": ("log", 0.5, 200.0), "B": ("uniform", 0.0, 1.0)}
LIGHTFM_SPACE = {
    "no_components": ("int", 16, 128),
    "learning_rate": ("log", 0.005, 0.2),
    "alpha": ("log", 1e-8, 1e-4),
    "max_sampled": ("int", 10, 100),
    "iterations": [200],
}
SPECTRAL_COMMON = {"factors": ("int", 16, 512), "ideal_weight": ("uniform", 0.0, 1.0)}


def models(threads):
    """name -> (library, make, distributions, eval_every). Pairs that share hyper-parameters
    share their ranges (and so, with the same seed, their drawn settings)."""
    import implicit
    import lightfm
    import tacitrec
    from implicit.cpu.als import AlternatingLeastSquares as iALS_
    from implicit.cpu.bpr import BayesianPersonalizedRanking as iBPR
    from implicit.cpu.lmf import LogisticMatrixFactorization as iLMF
    from implicit.nearest_neighbours import BM25Recommender as iBM25
    from implicit.nearest_neighbours import CosineRecommender as iCos
    from implicit.nearest_neighbours import TFIDFRecommender as iTFIDF

    imp = f"implicit {implicit.__version__}"
    from importlib.metadata import version

    lfm = f"LightFM {version('lightfm')}"
    ours = "tacitrec"
    out = {
        "ALS": (imp, _factor(iALS_, threads), ALS_SPACE, 2),
        "BPR": (imp, _factor(iBPR, threads), BPR_SPACE, 10),
        "LMF": (imp, _factor(iLMF, threads), LMF_SPACE, 5),
        "Cosine kNN": (imp, _plain(iCos, threads), KNN_SPACE, None),
        "TF-IDF kNN": (imp, _plain(iTFIDF, threads), KNN_SPACE, None),
        "BM25 kNN": (imp, _plain(iBM25, threads), BM25_SPACE, None),
        "LightFM warp": (lfm, _lightfm(lightfm.LightFM, "warp", threads, False), LIGHTFM_SPACE, 5),
        "LightFM bpr": (lfm, _lightfm(lightfm.LightFM, "bpr", threads, False), LIGHTFM_SPACE, 5),
        "ALS ": (ours, _factor(tacitrec.AlternatingLeastSquares, threads), ALS_SPACE, 2),
    }
    params = inspect.signature(tacitrec.AlternatingLeastSquares.__init__).parameters
    if "unobserved_weight" in params:  # iALS (Rendle et al. 2022), when ALS has the options
        # the paper's setup: observed pairs weigh 1 (binary data, alpha=1), frequency-scaled
        # regularisation (nu = 1) and initial factors N(0, 0.1 / sqrt(d)) fixed as the paper
        # fixes them; the unobserved weight alpha_0 and lambda searched on log scales
        space = {
            "factors": ("int", 32, 256),
            "regularization": ("log", 1e-3, 0.1),
            "unobserved_weight": ("log", 0.01, 1.0),
            "regularization_exponent": [1.0],
            "init_std": [0.1],
            "alpha": [1.0],
            "weighting": ["none"],
            "iterations": [30],
        }
        out["iALS"] = (ours, _factor(tacitrec.AlternatingLeastSquares, threads), space, 2)
    out.update(
        {
            "BPR ": (ours, _factor(tacitrec.BayesianPersonalizedRanking, threads), BPR_SPACE, 10),
            "LMF ": (ours, _factor(tacitrec.LogisticMatrixFactorization, threads), LMF_SPACE, 5),
            "BM25 kNN ": (ours, _plain(tacitrec.BM25Recommender, threads), BM25_SPACE, None),
            "LightFM warp ": (
                ours,
                _lightfm(tacitrec.LightFM, "warp", threads, True),
                LIGHTFM_SPACE,
                5,
            ),
            "LightFM bpr ": (
                ours,
                _lightfm(tacitrec.LightFM, "bpr", threads, True),
                LIGHTFM_SPACE,
                5,
            ),
            "RP3beta": (
                ours,
                _plain(tacitrec.RP3BetaRecommender, threads),
                {
                    "K": ("int", 50, 500),
                    "alpha": ("uniform", 0.3, 1.5),
                    "beta": ("uniform", 0.0, 1.0),
                },
                None,
            ),
            "EASE": (
                ours,
                _plain(tacitrec.EASERecommender, threads),
                {"regularization": ("log", 10.0, 5000.0)},
                None,
            ),
            "GF-CF": (
                ours,
                _plain(tacitrec.SpectralFilterRecommender, threads, method="gf-cf"),
                SPECTRAL_COMMON,
                None,
            ),
            "BSPM": (
                ours,
                _plain(tacitrec.SpectralFilterRecommender, threads, method="bspm"),
                dict(
                    SPECTRAL_COMMON,
                    sharpen_solver=["rk4", "euler"],
                    sharpen_steps=("int", 1, 2),
                    sharpen_time=("uniform", 0.5, 3.0),
                    final_sharpening=[True, False],
                ),
                None,
            ),
            "ChebyCF": (
                ours,
                _plain(tacitrec.SpectralFilterRecommender, threads, method="chebycf"),
                dict(
                    SPECTRAL_COMMON,
                    flatness=("uniform", 1.0, 20.0),
                    degree_power=("uniform", 0.0, 0.5),
                ),
                None,
            ),
        }
    )
    return out


# ---- the run ------------------------------------------------------------------------------------
def _fmt(params):
    out = []
    for k, v in params.items():
        if isinstance(v, float):
            v = f"{v:.3g}"
        out.append(f"{k}={v}")
    return ", ".join(out)


def run_dataset(name, X, args, table):
    from tacitrec.evaluation import ranking_metrics_at_k, train_test_split
    from tacitrec.model_selection import random_search, validation_split

    train, test = train_test_split(X, 0.8, random_state=42)
    fit_part, validation = validation_split(train, 0.2, by="interaction", random_state=0)
    print(
        f"\n{name}: {X.shape[0]} users x {X.shape[1]} items, {X.nnz} interactions; train "
        f"{train.nnz} (fit {fit_part.nnz} + validation {validation.nnz}), test {test.nnz}",
        flush=True,
    )
    chosen = [m.strip() for m in args.models.split(",")] if args.models else None
    rows = []
    for key, (library, make, space, eval_every) in table.items():
        label = key.strip()
        if chosen and label not in chosen and key not in chosen:
            continue
        if args.library and not library.startswith(args.library):
            continue
        cpu0, wall0 = time.process_time(), time.perf_counter()
        search = random_search(
            make,
            space,
            fit_part,
            validation,
            n_iter=args.trials,
            metric="ndcg",
            K=10,
            eval_every=eval_every,
            patience=3,
            random_state=args.seed,
            show_progress=args.verbose,
        )
        search_cpu = time.process_time() - cpu0
        t = time.perf_counter()
        model = search.refit(train)
        fit_s = time.perf_counter() - t
        m10 = ranking_metrics_at_k(model, train, test, K=10, show_progress=False)
        m20 = ranking_metrics_at_k(model, train, test, K=20, show_progress=False)
        best = {
            k: v
            for k, v in search.best_params.items()
            if not (k == "iterations" and eval_every is None)
        }
        row = dict(
            data=name,
            model=label,
            library=library,
            params=_fmt(best),
            validation=search.best_score,
            ndcg=m10["ndcg"],
            precision=m10["precision"],
            recall20=m20["recall"],
            fit_s=fit_s,
            search_cpu=search_cpu,
            search_wall=time.perf_counter() - wall0,
        )
        rows.append(row)
        print(
            f"  {label:14s} {library:15s} val {row['validation']:.4f}  test ndcg@10 "
            f"{row['ndcg']:.4f} r@20 {row['recall20']:.4f} p@10 {row['precision']:.4f}  "
            f"fit {fit_s:.1f} s, search {search_cpu:.0f} CPU s  [{row['params']}]",
            flush=True,
        )
    return rows


def markdown(name, rows, trials):
    lines = [
        f"**{name}**",
        "",
        "| model | library | best parameters | validation ndcg@10 | test ndcg@10 | "
        "recall@20 | precision@10 | fit seconds | search CPU seconds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: -r["validation"]):
        lines.append(
            f"| {r['model']} | {r['library']} | {r['params']} | {r['validation']:.4f} | "
            f"{r['ndcg']:.4f} | {r['recall20']:.4f} | {r['precision']:.4f} | "
            f"{r['fit_s']:.2f} | {r['search_cpu']:.0f} |"
        )
    ours = [r for r in rows if r["library"] == "tacitrec"]
    peers = [r for r in rows if r["library"] != "tacitrec"]
    if ours and peers:
        o = max(ours, key=lambda r: r["validation"])
        p = max(peers, key=lambda r: r["validation"])
        ot = max(ours, key=lambda r: r["ndcg"])
        pt = max(peers, key=lambda r: r["ndcg"])
        lines += [
            "",
            f"Best by validation: tacitrec {o['model']} {o['ndcg']:.4f} against "
            f"{p['library']} {p['model']} {p['ndcg']:.4f}: **{o['ndcg'] / p['ndcg']:.3f}x** "
            f"test ndcg@10 (highest test scores of each side, for reference only: "
            f"{ot['model']} {ot['ndcg']:.4f} / {pt['model']} {pt['ndcg']:.4f} = "
            f"{ot['ndcg'] / pt['ndcg']:.3f}x).",
        ]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--datasets", default="ml-100k,lastfm-2k")
    ap.add_argument("--trials", type=int, default=10, help="random-search settings per model")
    ap.add_argument("--seed", type=int, default=0, help="seed of the drawn settings")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", default="", help="comma-separated model names (default: all)")
    ap.add_argument(
        "--library",
        default="",
        help="only the models of this library (tacitrec, implicit, LightFM)",
    )
    ap.add_argument("--markdown", metavar="PATH", help="also write the tables to PATH")
    ap.add_argument("--verbose", action="store_true", help="print every trial")
    args = ap.parse_args()
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1, "blas")  # implicit's advice; the models thread themselves
    except ImportError:
        pass
    # implicit's kNN fit converts its own intermediate matrix and warns about it every call
    warnings.filterwarnings("ignore", message="Method expects CSR input")
    table = models(args.threads)
    out = []
    cpu0 = time.process_time()
    for name in args.datasets.split(","):
        X = load_real(name)
        if X is None:
            print(f"{name}: not found under {DATA}, skipped")
            continue
        rows = run_dataset(name, X, args, table)
        out.append(markdown(name, rows, args.trials))
        print("\n" + out[-1], flush=True)
    print(f"\ntotal CPU {time.process_time() - cpu0:.0f} s")
    if args.markdown and out:
        with open(args.markdown, "w") as fh:
            fh.write("\n\n".join(out) + "\n")


if __name__ == "__main__":
    main()

"""Command line: ``tacitrec COMMAND`` (or ``python -m tacitrec COMMAND``).

commands:
  demo       fit and evaluate several models on generated data (or --data PATH); the default
  fit        fit a model on an interaction file and save it with the file's ids
  recommend  top-N recommendations of a saved model, in the original ids, as CSV
  evaluate   split an interaction file, fit a model, print ranking metrics

Interaction files are CSV/TSV (any separator, with or without a header) or Parquet (with
pyarrow) of user, item and optionally weight columns. `tacitrec COMMAND --help` for details.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import csv
import os
import sys
import tarfile
import time
import zipfile
from typing import Dict, List, Optional

import numpy as np
import scipy.sparse as sp

from . import _delimited, _files, _ids, _io
from .als import AlternatingLeastSquares
from .bpr import BayesianPersonalizedRanking
from .evaluation import leave_k_out_split, ranking_metrics_at_k, train_test_split
from .exceptions import ModelFitError, ModelFormatError, NotFittedError
from .knn import (
    BM25Recommender,
    CosineRecommender,
    ItemItemRecommender,
    PearsonRecommender,
    TFIDFRecommender,
)
from .lightfm import LightFM
from .lmf import LogisticMatrixFactorization
from .popularity import PopularityRecommender

#: name on the command line -> (class, defaults that differ from the class's own)
MODELS = {
    "als": (AlternatingLeastSquares, {}),
    "bpr": (BayesianPersonalizedRanking, {}),
    "lmf": (LogisticMatrixFactorization, {}),
    "itemitem": (ItemItemRecommender, {}),
    "cosine": (CosineRecommender, {}),
    "bm25": (BM25Recommender, {}),
    "tfidf": (TFIDFRecommender, {}),
    "pearson": (PearsonRecommender, {}),
    "popularity": (PopularityRecommender, {}),
    # LightFM's own default loss is logistic, which needs negative interactions
    "lightfm": (LightFM, {"loss": "warp", "no_components": 32}),
}
#: parameters of LightFM's fit rather than of its constructor, with the command line's defaults
LIGHTFM_FIT = {"epochs": 20}
METRICS = ["precision", "recall", "map", "ndcg", "auc", "mrr", "hit_rate"]


class CliError(Exception):
    """A usage problem reported as ``tacitrec CMD: error: ...`` with exit code 2."""


# ---- models ------------------------------------------------------------------------------------
def _parse_params(pairs: List[str]) -> Dict[str, object]:
    params = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise CliError(f"--param {pair!r}: expected NAME=VALUE")
        try:
            params[key.strip()] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            try:  # nan, inf: numbers that literal_eval does not read (and models refuse)
                params[key.strip()] = (
                    float(text)
                    if text.strip().lower().lstrip("+-") in ("nan", "inf", "infinity")
                    else text
                )
            except ValueError:
                params[key.strip()] = text
    return params


def make_model(name: str, pairs: List[str], threads: int, seed: Optional[int]):
    """(model, extra fit keyword arguments) for a model name and NAME=VALUE parameters."""
    if name not in MODELS:
        raise CliError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    cls, defaults = MODELS[name]
    valid = cls().get_params()
    given = _parse_params(pairs)
    fit_kw: Dict[str, object] = dict(LIGHTFM_FIT) if cls is LightFM else {}
    params = dict(defaults)
    for key, value in given.items():
        if key in fit_kw:
            fit_kw[key] = value
        elif key in valid:
            params[key] = value
        else:
            known = sorted(valid) + sorted(fit_kw)
            raise CliError(
                f"{key!r} is not a parameter of {name} ({cls.__name__}); valid: {', '.join(known)}"
            )
    if "num_threads" in valid:
        params.setdefault("num_threads", threads)
    if cls is LightFM:  # LightFM's fit takes the training threads itself
        fit_kw["num_threads"] = threads
    if "random_state" in valid and seed is not None:
        params.setdefault("random_state", seed)
    return cls(**params), fit_kw


def _features(args, data: _io.Interactions) -> Dict[str, sp.csr_matrix]:
    """LightFM's feature matrices from --user-features / --item-features (empty otherwise)."""
    given = {side: getattr(args, f"{side}_features") for side in ("user", "item")}
    if not any(given.values()):
        return {}
    if args.model != "lightfm":
        raise CliError("--user-features / --item-features are only used by --model lightfm")
    out = {}
    for side, ids in (("user", data.user_ids), ("item", data.item_ids)):
        meta = sp.csr_matrix((len(ids), 0), dtype=np.float32)
        if given[side] is not None:
            meta = _io.aligned(
                ids, _io.read_interactions(given[side], sep=args.sep, encoding=args.encoding)
            )
        out[f"{side}_features"] = _io.with_identity(meta)
    return out


def _fit(model, X, fit_kw, show_progress: bool, **features):
    if isinstance(model, LightFM):
        return model.fit(
            X,
            epochs=fit_kw["epochs"],
            num_threads=fit_kw["num_threads"],
            verbose=show_progress,
            **features,
        )
    return model.fit(X, show_progress=show_progress)


def read(path, args, min_weight=True) -> _io.Interactions:
    """The interaction file at ``path`` read with the command's file-format options."""
    return _io.read_interactions(
        path,
        sep=args.sep,
        header=args.header,
        user_col=args.user_col,
        item_col=args.item_col,
        weight_col=args.weight_col,
        min_weight=args.min_weight if min_weight else None,
        encoding=args.encoding,
    )


# ---- commands ----------------------------------------------------------------------------------
def cmd_fit(args) -> int:
    data = read(args.interactions, args)
    model, fit_kw = make_model(args.model, args.param, args.threads, args.seed)
    _say(
        args,
        f"{os.path.basename(args.interactions)}: {data.matrix.shape[0]} users x "
        f"{data.matrix.shape[1]} items, {data.matrix.nnz} interactions; fitting {model!r}",
    )
    features = _features(args, data)
    t0 = time.perf_counter()
    _fit(model, data.matrix, fit_kw, not args.quiet, **features)
    info = {
        "model": args.model,
        "fit": {k: v for k, v in fit_kw.items() if k != "num_threads"},
        "source": os.path.abspath(args.interactions),
        "seconds": time.perf_counter() - t0,
    }
    _io.save_bundle(args.out, model, data, info, **features)
    _say(args, f"fitted in {info['seconds']:.2f} s; saved to {args.out}")
    return 0


def _requested_users(args, data: _io.Interactions) -> np.ndarray:
    if args.users is None:
        return np.arange(data.matrix.shape[0])
    path = _io._check_file(args.users, "users file")
    with open(path, "rb") as f:
        wanted = [text.strip() for _, text in _delimited.lines(f, args.encoding)]
    pos = _ids.lookup(data.user_ids, np.asarray(wanted, dtype=str))
    unknown = [w for w, p in zip(wanted, pos) if p < 0]
    if unknown and not args.skip_unknown:
        shown = ", ".join(repr(u) for u in unknown[:5])
        raise CliError(
            f"{len(unknown)} of {len(wanted)} users in {path} are not in the "
            f"model's training data (e.g. {shown}); pass --skip-unknown to skip them"
        )
    return pos[pos >= 0]


def cmd_recommend(args) -> int:
    model, data, info, features = _io.load_bundle(args.model)
    users = _requested_users(args, data)
    history = data.matrix
    if args.filter_liked is not None:
        extra = _io.restrict(read(args.filter_liked, args, min_weight=False), data)
        history = history.maximum(extra).tocsr()
    n = args.n
    for name, value in (("-n", n), ("--chunk-size", args.chunk_size)):
        if value < 1:
            raise CliError(f"{name} must be a positive integer, got {value}")
    if args.engine is not None:
        return _recommend_on_engine(args, model, data, users, history, features)
    with (
        contextlib.nullcontext(sys.stdout)
        if args.out == "-"
        else _files.atomic_output(args.out, "w", newline="", encoding="utf-8")
    ) as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["user", "item", "rank", "score"])
        for start in range(0, len(users), args.chunk_size):
            chunk = users[start : start + args.chunk_size]
            ids, scores = model.recommend(
                chunk,
                history[chunk],
                N=n,
                filter_already_liked_items=not args.keep_liked,
                **features,
            )
            valid = ids >= 0  # rows of users with fewer candidates are padded with -1
            who = np.repeat(data.user_ids[chunk], valid.sum(axis=1))
            writer.writerows(
                zip(
                    who.tolist(),
                    data.item_ids[ids[valid]].tolist(),
                    np.broadcast_to(np.arange(1, ids.shape[1] + 1), ids.shape)[valid].tolist(),
                    _io.format_scores(scores[valid]),
                )
            )
    if args.out != "-":
        _say(args, f"{len(users)} users x top {n} written to {args.out}")
    return 0


def _recommend_on_engine(args, model, data, users, history, features) -> int:
    """``recommend --engine``: the users' rows go to the engine, Parquet comes out."""
    import pandas as pd

    from .distributed._engines import recommend_to_parquet

    if args.out == "-":
        raise CliError("--engine writes a Parquet folder: give it with --out")
    if args.partitions is not None and args.partitions < 1:
        raise CliError(f"--partitions must be a positive integer, got {args.partitions}")
    rows = history[users].tocoo()
    empty = users[np.diff(history[users].indptr) == 0]  # served too, from no history
    frame = pd.DataFrame(
        {
            "user": np.concatenate([data.user_ids[users[rows.row]], data.user_ids[empty]]),
            "item": np.concatenate([data.item_ids[rows.col], np.full(len(empty), None)]),
            "weight": np.concatenate([rows.data, np.ones(len(empty), np.float32)]),
        }
    )
    model.set_ids(user_ids=data.user_ids, item_ids=data.item_ids)
    recommend_to_parquet(
        args.engine,
        model,
        frame,
        args.out,
        address=args.address,
        partitions=args.partitions,
        N=args.n,
        filter_already_liked_items=not args.keep_liked,
        **features,
    )
    _say(args, f"{len(users)} users x top {args.n} written to {args.out} (Parquet, {args.engine})")
    return 0


def cmd_evaluate(args) -> int:
    data = read(args.interactions, args)
    model, fit_kw = make_model(args.model, args.param, args.threads, args.seed)
    features = _features(args, data)
    if args.split == "random":
        train, test = train_test_split(data.matrix, args.train_fraction, random_state=args.seed)
    else:
        train, test = leave_k_out_split(data.matrix, args.leave_k, random_state=args.seed)
    _say(
        args,
        f"{data.matrix.shape[0]} users x {data.matrix.shape[1]} items; train "
        f"{train.nnz}, test {test.nnz} interactions ({args.split} split, seed {args.seed})",
    )
    t0 = time.perf_counter()
    _fit(model, train, fit_kw, not args.quiet, **features)
    fit_s = time.perf_counter() - t0
    m = ranking_metrics_at_k(model, train, test, K=args.k, show_progress=not args.quiet, **features)
    print(f"{args.model}: {model!r}, fitted in {fit_s:.2f} s")
    for key in METRICS:
        print(f"{key + '@' + str(args.k):<16}{m[key]:.6f}")
    if args.plot is not None:
        _plot(args, model, train, test, features)
    return 0


def _plot(args, model, train, test, features) -> None:
    """``evaluate --plot``: ndcg@K curves and the long-tail picture, side by side, in one image."""
    from . import plot

    plt = plot._pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    Ks = sorted({1, 5, 10, 20, 50, args.k})
    plot.metric_curves({args.model: model}, train, test, metric="ndcg", Ks=Ks, ax=left, **features)
    plot.popularity_curves({args.model: model}, train, K=args.k, ax=right, **features)
    fig.tight_layout()
    with _files.atomic_output(args.plot, "wb") as f:
        fig.savefig(f, format=os.path.splitext(args.plot)[1].lstrip(".") or "png")
    plt.close(fig)
    _say(args, f"plots written to {args.plot}")


# ---- argument parsing --------------------------------------------------------------------------
def reader_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("interaction file format")
    g.add_argument(
        "--sep",
        help="field separator (default: guessed from the first line: tab, "
        "'::', comma, ';', '|', else whitespace); 'tab', 'comma', 'space' accepted",
    )
    g.add_argument(
        "--header",
        choices=["auto", "yes", "no"],
        default="auto",
        help="whether the first line is a header (auto: yes when a column is given "
        "by name or the first line's weight/user field is not a number but the "
        "second line's is)",
    )
    g.add_argument(
        "--user-col", default="0", help="user column: 0-based position or header name (default 0)"
    )
    g.add_argument("--item-col", default="1", help="item column (default 1)")
    g.add_argument(
        "--weight-col",
        default="auto",
        help="weight column, or 'none' for weight 1 (default: the third column if there is one)",
    )
    g.add_argument(
        "--min-weight",
        type=float,
        help="drop interactions whose weight is below this (e.g. 4 to keep MovieLens ratings >= 4)",
    )
    g.add_argument(
        "--encoding",
        default="utf-8",
        help="text encoding of the files (default utf-8; a byte-order mark is skipped)",
    )


def _model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("interactions", help="CSV/TSV/Parquet file of user, item[, weight]")
    p.add_argument(
        "--model", "-m", required=True, metavar="NAME", help="one of: " + ", ".join(MODELS)
    )
    p.add_argument(
        "--param",
        "-p",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a hyper-parameter of the model (repeatable), e.g. -p factors=64; for "
        f"lightfm also epochs (default {LIGHTFM_FIT['epochs']})",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="random_state of the model and of the split (default 0)"
    )
    for side in ("user", "item"):
        p.add_argument(
            f"--{side}-features",
            metavar="FILE",
            help=f"lightfm: {side} id, feature"
            "[, weight] rows (same separators; header detected); each "
            f"{side} gets its identity feature plus these, rows scaled to sum 1",
        )


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int, default=0, help="threads, 0 = all cores (default)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars or messages")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tacitrec", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    from . import __version__, demo  # demo imports this module: it is imported here

    parser.add_argument("--version", action="version", version=f"tacitrec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo.add_parser(sub)

    f = sub.add_parser(
        "fit",
        help="fit a model on an interaction file and save it",
        description="Fits a model on user, item[, weight] rows and saves it, with "
        "the file's ids and the training interactions, to one .npz file for "
        "`tacitrec recommend`.",
    )
    _model_options(f)
    f.add_argument("--out", "-o", required=True, metavar="MODEL", help="output file (.npz)")
    reader_options(f)
    _common(f)

    r = sub.add_parser(
        "recommend",
        help="top-N recommendations of a saved model as CSV",
        description="Writes user,item,rank,score rows (original ids), best "
        "first, computed in chunks of users so memory stays bounded. Items in "
        "the user's training interactions are not recommended.",
    )
    r.add_argument("model", help="a model file written by `tacitrec fit`")
    who = r.add_mutually_exclusive_group()
    who.add_argument("--users", metavar="FILE", help="file with one user id per line")
    who.add_argument(
        "--all", action="store_true", help="every user of the training data (the default)"
    )
    r.add_argument("-n", type=int, default=10, help="recommendations per user (default 10)")
    r.add_argument(
        "--filter-liked",
        metavar="INTERACTIONS",
        help="also remove the items of "
        "these interactions (e.g. newer than the training data) and use them as "
        "history; ids the model does not know are ignored",
    )
    r.add_argument("--keep-liked", action="store_true", help="do not remove already-seen items")
    r.add_argument(
        "--skip-unknown",
        action="store_true",
        help="skip --users ids the model does not know instead of failing",
    )
    r.add_argument("--out", "-o", default="-", help="output CSV (default: standard output)")
    r.add_argument("--chunk-size", type=int, default=10000, help="users per batch (default 10000)")
    r.add_argument(
        "--engine",
        choices=["ray", "dask", "spark"],
        help="recommend on this "
        'engine (pip install "tacitrec[ENGINE]"); --out is then a Parquet folder',
    )
    r.add_argument(
        "--address",
        metavar="URL",
        help="with --engine: the cluster to use (Ray "
        "address, Dask scheduler, Spark master); default: a local one on this "
        "machine's cores, on the loopback address",
    )
    r.add_argument(
        "--partitions",
        type=int,
        help="with --engine: partitions of the users (default: twice the local cores)",
    )
    reader_options(r)
    _common(r)

    e = sub.add_parser(
        "evaluate",
        help="split, fit and print ranking metrics",
        description="Splits the interactions, fits the model on the train part "
        "and prints ranking metrics at K on the test part (train items "
        "excluded from each user's ranking).",
    )
    _model_options(e)
    e.add_argument(
        "--split",
        choices=["random", "leave-k-out"],
        default="random",
        help="random: a share of all interactions is held out; leave-k-out: k per "
        "user (default random)",
    )
    e.add_argument(
        "--train-fraction",
        type=float,
        default=0.8,
        help="random split: share kept for training (default 0.8)",
    )
    e.add_argument(
        "--leave-k", type=int, default=1, help="leave-k-out: test interactions per user (default 1)"
    )
    e.add_argument("-k", type=int, default=10, help="cut-off K of the metrics (default 10)")
    e.add_argument(
        "--plot",
        metavar="IMAGE",
        help="also draw ndcg@K curves and the long-tail "
        "picture (needs matplotlib) to this image file (.png, .svg, .pdf)",
    )
    reader_options(e)
    _common(e)
    return parser


def _say(args, message: str) -> None:
    if not getattr(args, "quiet", False):
        print(message, file=sys.stderr)


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        argv.insert(0, "demo")  # `tacitrec` alone runs the demo
    parser = build_parser()
    args = parser.parse_args(argv)
    from . import demo

    commands = {
        "demo": demo.run,
        "fit": cmd_fit,
        "recommend": cmd_recommend,
        "evaluate": cmd_evaluate,
    }
    try:
        return commands[args.command](args)
    except CliError as e:
        print(f"tacitrec {args.command}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `tacitrec recommend m.npz | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:  # outputs are written to a temporary file: nothing half-written
        print(f"tacitrec {args.command}: interrupted", file=sys.stderr)
        return 130
    except (
        FileNotFoundError,
        FileExistsError,
        ValueError,
        TypeError,
        IndexError,
        ImportError,
        ModelFormatError,
        ModelFitError,
        NotFittedError,
        NotImplementedError,
        OSError,
        csv.Error,
        zipfile.BadZipFile,
        tarfile.TarError,
        EOFError,
    ) as e:
        print(f"tacitrec {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

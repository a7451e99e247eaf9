"""ALS across workers, the driver: the schedule of :mod:`._als`'s functions as tasks, written
once over a small engine interface (:class:`Engine`) that :func:`tacitrec.distributed.ray.fit`
and :func:`tacitrec.distributed.dask.fit` implement."""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from .._validation import check_count, check_random_state
from . import _als

#: ``ship`` values of ``fit``
SHIP = ("auto", "touched", "whole")


class Engine:
    """What the driver needs of an engine: tasks over object-store values, retried on a lost
    worker. ``heavy`` tasks (block solves) take a worker's CPUs; the others are small."""

    name = "engine"
    nodes = 1
    #: the kernel threads of a solving task: an int, or a function called in the task
    threads: Any = 1

    def submit(self, fn: Callable, *args, returns: int = 1, heavy: bool = False) -> List:
        raise NotImplementedError  # pragma: no cover - every engine implements it

    def get(self, handles: List) -> List:
        raise NotImplementedError  # pragma: no cover

    def put(self, value):
        raise NotImplementedError  # pragma: no cover


def check_model(model) -> None:
    """TypeError / ValueError unless ``model`` is an unfitted ALS that can be fitted across
    workers."""
    from ..als import AlternatingLeastSquares

    if not isinstance(model, AlternatingLeastSquares):
        raise TypeError(
            "model must be an unfitted tacitrec AlternatingLeastSquares, got "
            f"{type(model).__name__}"
        )
    model._check_params()
    if model.user_factors is not None or model.item_factors is not None:
        raise ValueError(
            "model is already fitted: pass an unfitted AlternatingLeastSquares (the distributed "
            "fit starts from the initial factors of its random_state; sklearn.base.clone or a "
            "new model with the same parameters)"
        )
    if model._solver() == "ials++":
        raise ValueError(
            "solver='ials++' is not supported by the distributed fit (its epochs update both "
            "sides together); use solver='cg' or 'cholesky', or fit locally"
        )
    if model.calculate_training_loss:
        raise ValueError(
            "calculate_training_loss=True is not supported by the distributed fit (the loss "
            "needs every row's factors in one place); set it to False and compute the loss "
            "of the fitted model locally if needed"
        )


def check_columns(names, name: str, user_col, item_col, weight_col) -> None:
    """ValueError / TypeError naming the column argument that is not a column of ``names``."""
    for arg, col in (("user_col", user_col), ("item_col", item_col), ("weight_col", weight_col)):
        if col is None and arg == "weight_col":
            continue
        if not isinstance(col, str):
            raise TypeError(f"{arg} must be a column name, got {type(col).__name__}")
        if col not in names:
            raise ValueError(f"{arg}={col!r} is not a column of {name} (columns: {list(names)})")
    if len({user_col, item_col, weight_col} - {None}) < 2 + (weight_col is not None):
        raise ValueError("user_col, item_col and weight_col must be different columns")


def check_options(ship: str, max_retries) -> int:
    if ship not in SHIP:
        raise ValueError(f"ship must be one of {SHIP}, got {ship!r}")
    return check_count(max_retries, "max_retries", minimum=0)


def num_blocks(value, slots: int):
    """``(user_blocks, item_blocks)`` from ``num_blocks`` (None: one per worker slot)."""
    if value is None:
        return slots, slots
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(
                f"num_blocks must be an int or (user_blocks, item_blocks), got {value!r}"
            )
        return check_count(value[0], "num_blocks"), check_count(value[1], "num_blocks")
    n = check_count(value, "num_blocks")
    return n, n


class _Side:
    """One side's blocks: ``bounds`` of its rows, per block the CSR handle, its stats, the take
    indices into each block of the other side, and the current factors' handles."""

    def __init__(self, name: str, bounds: np.ndarray):
        self.name, self.bounds = name, bounds
        self.blocks: List = []
        self.stats: List = []
        self.takes: List = []
        self.factors: List = []

    @property
    def n(self) -> int:
        return int(self.bounds[-1])

    def __len__(self) -> int:
        return len(self.bounds) - 1


def _tree_sum(engine: Engine, handles: List):
    """The sum of the values ``handles`` by a binary tree of ``add`` tasks."""
    handles = list(handles)
    while len(handles) > 1:
        pairs = [
            engine.submit(_als.add, handles[k], handles[k + 1])[0]
            for k in range(0, len(handles) - 1, 2)
        ]
        handles = pairs + ([handles[-1]] if len(handles) % 2 else [])
    return handles[0]


def _ids_numpy(ids) -> np.ndarray:
    arr = ids.to_numpy(zero_copy_only=False)
    return arr.astype(str) if arr.dtype == object else arr


def fit_info(users: _Side, items: _Side, ship: str, nodes: int, f: int) -> dict:
    """Per side: which blocks get only their touched fixed rows, the bytes a half-iteration
    ships (an upper bound: every task's inputs taken as coming from another node), and the
    blocks' sizes."""
    info: Dict[str, Any] = {}
    total = 0
    for side, fixed in ((users, items), (items, users)):
        nb = len(side.stats)
        per_node = max(1, -(-nb // nodes))
        if ship == "auto":
            touched = [s["touched"] * per_node < fixed.n for s in side.stats]
        else:
            touched = [ship == "touched"] * nb
        row = 4 * f
        factors = sum(s["touched"] * row if t else 0 for s, t in zip(side.stats, touched)) + (
            fixed.n * row * min(nodes, sum(1 for t in touched if not t))
        )
        grams = (2 * len(fixed.stats) - 1 + nb) * f * f * 8
        own = 2 * side.n * row  # each block's factors in, and out
        n_touched = sum(touched)
        mode = (
            "touched rows"
            if n_touched == nb
            else "the whole side"
            if n_touched == 0
            else f"touched rows in {n_touched} of {nb} blocks"
        )
        info[side.name] = {
            "blocks": nb,
            "rows": [s["rows"] for s in side.stats],
            "nnz": [s["nnz"] for s in side.stats],
            "touched_rows": [s["touched"] for s in side.stats],
            "touched": touched,
            "mode": mode,
            "bytes_factors": int(factors + own),
            "bytes_gram": int(grams),
        }
        total += int(factors + own + grams)
    info["bytes_per_iteration"] = total
    info["nodes"] = nodes
    return info


def fit_blocks(
    model,
    engine: Engine,
    parts: List,
    user_col: str,
    item_col: str,
    weight_col: Optional[str],
    blocks,
    ship: str,
    show_progress: bool,
    callback,
):
    """Fits ``model`` on the partitions ``parts`` (handles of pyarrow tables) with ``engine``:
    ids counted per partition and merged, rows split into ``blocks = (user_blocks,
    item_blocks)`` blocks of about equal work, factors drawn on the driver as the local fit
    draws them, then ``iterations`` of two half-sweeps (see :func:`tacitrec.distributed.ray.fit`).
    Returns the model, fitted, with its ids set and ``fit_info_``."""
    from tqdm.auto import tqdm

    from ..exceptions import ModelFitError

    found = [engine.submit(_als.counts, p, user_col, item_col, returns=2) for p in parts]
    user_ids, user_counts = _als.merge_ids(engine.get([u for u, _ in found]), "user")
    item_ids, item_counts = _als.merge_ids(engine.get([i for _, i in found]), "item")
    f = int(model.factors)
    users = _Side("user", _als.bounds(_als.row_costs(user_counts, f), blocks[0]))
    items = _Side("item", _als.bounds(_als.row_costs(item_counts, f), blocks[1]))
    del user_counts, item_counts
    bu, bi = len(users), len(items)
    uid, iid = engine.put(user_ids), engine.put(item_ids)
    pieces = [
        engine.submit(
            _als.split,
            p,
            user_col,
            item_col,
            weight_col,
            uid,
            iid,
            users.bounds,
            items.bounds,
            returns=bu + bi,
        )
        for p in parts
    ]
    alpha = float(model.alpha)
    for side, fixed, offset in ((users, items, 0), (items, users, bu)):
        for b in range(len(side)):
            n_rows = int(side.bounds[b + 1] - side.bounds[b])
            out = engine.submit(
                _als.build,
                n_rows,
                fixed.n,
                fixed.bounds,
                alpha,
                *[p[offset + b] for p in pieces],
                returns=2 + len(fixed),
            )
            side.stats.append(out[0])
            side.blocks.append(out[1])
            side.takes.append(out[2:])
    del pieces
    for side in (users, items):
        side.stats = engine.get(side.stats)

    # the initial factors, drawn on the driver as the local fit draws them (users, then items)
    rng = check_random_state(model.random_state)
    for side in (users, items):
        for b in range(len(side)):
            n_rows = int(side.bounds[b + 1] - side.bounds[b])
            side.factors.append(engine.put(_als.init_block(model, n_rows, rng)))

    params = model._solver_params(exact=False)
    info = fit_info(users, items, ship, engine.nodes, f)
    model.fit_info_ = info
    desc = (
        f"ALS on {engine.name} ({bu} x {bi} blocks; users get {info['user']['mode']}, "
        f"items get {info['item']['mode']})"
    )

    def half(side: _Side, fixed: _Side) -> List:
        yty = _tree_sum(engine, [engine.submit(_als.gram, v)[0] for v in fixed.factors])
        new, ok = [], []
        modes = info[side.name]["touched"]
        for b, (block, x) in enumerate(zip(side.blocks, side.factors)):
            if modes[b]:
                shipped = [
                    engine.submit(_als.take, v, t)[0] for v, t in zip(fixed.factors, side.takes[b])
                ]
            else:
                shipped = list(fixed.factors)
            x_new, x_ok = engine.submit(
                _als.solve,
                block,
                x,
                yty,
                fixed.n,
                params,
                engine.threads,
                modes[b],
                *shipped,
                returns=2,
                heavy=True,
            )
            new.append(x_new)
            ok.append(x_ok)
        side.factors = new
        return ok

    hint = (
        f"the confidences (values times alpha={model.alpha}) are probably too large for "
        f"float32, or regularization={model.regularization} too small; scale the data down "
        "(e.g. log1p or bm25_weight) or raise regularization"
    )
    with tqdm(total=int(model.iterations), disable=not show_progress, desc=desc) as bar:
        for it in range(int(model.iterations)):
            start = time.perf_counter()
            for side, fixed in ((users, items), (items, users)):
                if not all(engine.get(half(side, fixed))):
                    raise ModelFitError(
                        f"{side.name}_factors became NaN or infinite in iteration {it}: {hint}"
                    )
            bar.update(1)
            if callback is not None:
                callback(it, time.perf_counter() - start, None)

    model._user_factors = np.concatenate(engine.get(users.factors)).astype(np.float32, copy=False)
    model._item_factors = np.concatenate(engine.get(items.factors)).astype(np.float32, copy=False)
    model._forget()
    model.set_ids(_ids_numpy(user_ids), _ids_numpy(item_ids))
    return model

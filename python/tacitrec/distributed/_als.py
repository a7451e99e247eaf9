"""ALS across workers, the engine-neutral part: what a task does with a block of interaction
rows or factors. Nothing here knows an engine; :func:`tacitrec.distributed.ray.fit` schedules
these functions as tasks over object-store values.

The layout. Users (items) are numbered in sorted order of their ids, as
:func:`tacitrec.io.read_interactions` numbers them, and split into contiguous row blocks of
about equal work (:func:`bounds`, :func:`row_costs`). A *block* of one side holds the
confidences of its rows as a CSR over the other side's columns (global indices, and the same
entries over the sorted list of the columns it touches), so that a half-sweep of the block
needs, besides its own factors, either the whole fixed side or only the fixed rows it touches,
plus the fixed side's Gram matrix ``Y^T Y`` (the sum of its blocks' :func:`gram`).
:func:`solve` runs the local Rust kernel (``_core.als_solve``) on it, so every row gets exactly
the system a local fit gives it.
"""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import numpy as np

from .. import _core, _ids
from .._validation import Csr, all_finite
from . import _local


def bounds(costs: np.ndarray, blocks: int) -> np.ndarray:
    """The ``blocks + 1`` boundaries of contiguous row blocks of about equal total ``costs``
    (one per row; ``blocks`` is capped at the number of rows and is at least 1; every block
    holds at least one row)."""
    n = len(costs)
    blocks = max(1, min(int(blocks), n))
    cum = np.cumsum(np.asarray(costs, dtype=np.float64))
    total = cum[-1] if n else 0.0
    edges = np.searchsorted(cum, total * np.arange(1, blocks) / blocks, side="left") + 1
    out = np.concatenate([[0], edges, [n]]).astype(np.int64)
    for b in range(1, blocks):  # at least one row per block, from either end
        out[b] = min(max(out[b], out[b - 1] + 1), n - (blocks - b))
    return out


def row_costs(counts: np.ndarray, factors: int) -> np.ndarray:
    """The work of solving rows with ``counts`` interactions: a term per interaction and, per
    row, the ``factors x factors`` part of its system (about ``factors / 4`` interactions' worth
    for both solvers)."""
    return np.asarray(counts, dtype=np.float64) + factors / 4.0


def _column(table, name: str, role: str):
    """Column ``name`` of a pyarrow table as one array without nulls (ValueError naming the
    argument ``role`` otherwise)."""
    col = table.column(name)
    if col.null_count:
        raise ValueError(f"{role}={name!r} holds {col.null_count} null values")
    return col.combine_chunks() if hasattr(col, "combine_chunks") else col


def counts(table, user_col: str, item_col: str):
    """The distinct user and item ids of a pyarrow table with their numbers of rows (two pyarrow
    struct arrays of ``values`` and ``counts``)."""
    import pyarrow.compute as pc

    return (
        pc.value_counts(_column(table, user_col, "user_col")),
        pc.value_counts(_column(table, item_col, "item_col")),
    )


def merge_ids(parts: Sequence, side: str):
    """``(ids, counts)``: the sorted distinct ids of the per-partition ``counts`` ``parts`` (a
    pyarrow array: the numbering of ``tacitrec.io.read_interactions``) and each one's rows."""
    pa = _local.pyarrow()
    parts = [p for p in parts if len(p)]
    if not parts:
        raise ValueError("interactions has no rows")
    types = {p.field("values").type for p in parts}
    if len(types) > 1:
        raise ValueError(f"the {side} ids have different types in different blocks: {types}")
    values = pa.concat_arrays([p.field("values") for p in parts])
    numbers = np.concatenate([p.field("counts").to_numpy() for p in parts])
    ids, codes = _ids.encode(values, order="sorted")
    return ids, np.bincount(codes, weights=numbers, minlength=len(ids)).astype(np.int64)


def split(
    table,
    user_col: str,
    item_col: str,
    weight_col,
    user_ids,
    item_ids,
    user_bounds: np.ndarray,
    item_bounds: np.ndarray,
) -> List[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The rows of one partition as ``(row, column, weight)`` triples, one per user block
    (rows: the block's users, columns: global item indices) and then one per item block (rows:
    the block's items, columns: global user indices)."""
    users = _ids.lookup(user_ids, _column(table, user_col, "user_col"), what="user ids")
    items = _ids.lookup(item_ids, _column(table, item_col, "item_col"), what="item ids")
    if (users < 0).any() or (items < 0).any():  # pragma: no cover - the ids come from the rows
        raise ValueError("an id of interactions is missing from the distinct ids")
    if weight_col is None:
        weights = np.ones(len(users), np.float32)
    else:
        w = _column(table, weight_col, "weight_col")
        weights = np.asarray(w.to_numpy(zero_copy_only=False))
        if weights.dtype.kind not in "biuf":
            raise ValueError(f"weight_col={weight_col!r} must hold numbers, got {w.type}")
        weights = weights.astype(np.float32)
        if not all_finite(weights):
            raise ValueError(f"weight_col={weight_col!r} holds NaN or infinite values")
    out = []
    for rows, cols, edges in ((users, items, user_bounds), (items, users, item_bounds)):
        block = np.searchsorted(edges, rows, side="right") - 1
        order = np.argsort(block, kind="stable")
        cuts = np.searchsorted(block[order], np.arange(len(edges)))
        for b in range(len(edges) - 1):
            take = order[cuts[b] : cuts[b + 1]]
            out.append(
                (
                    (rows[take] - edges[b]).astype(np.int32),
                    cols[take].astype(np.int32),
                    weights[take],
                )
            )
    return out


def build(n_rows: int, n_cols: int, fixed_bounds: np.ndarray, alpha: float, *pieces) -> list:
    """One block from its pieces (``split``'s triples of every partition): ``[stats, block,
    take_0, ..., take_k]``. ``block`` is a dict of the CSR (``indptr``, ``indices`` global,
    ``local`` over ``touched``, ``data``: the summed weights times ``alpha`` in float32, as the
    local fit's confidences); ``take_j`` are the touched rows of fixed block j (indices within
    it); ``stats`` the sizes the scheduler chooses by."""
    import scipy.sparse as sp

    rows = np.concatenate([p[0] for p in pieces]) if pieces else np.zeros(0, np.int32)
    cols = np.concatenate([p[1] for p in pieces]) if pieces else np.zeros(0, np.int32)
    vals = np.concatenate([p[2] for p in pieces]) if pieces else np.zeros(0, np.float32)
    m = sp.coo_matrix((vals, (rows, cols)), shape=(n_rows, n_cols)).tocsr()
    m.sum_duplicates()
    data = m.data.astype(np.float32, copy=False)
    if alpha != 1.0:
        with np.errstate(over="ignore"):
            data = (data * np.float32(alpha)).astype(np.float32, copy=False)
        if not all_finite(data):
            raise ValueError(f"the weights times alpha={alpha} overflow float32")
    indices = m.indices.astype(np.int32, copy=False)
    touched = np.unique(indices)
    block = {
        "indptr": m.indptr.astype(np.int64, copy=False),
        "indices": indices,
        "local": np.searchsorted(touched, indices).astype(np.int32),
        "data": data,
        "shape": (int(n_rows), int(n_cols)),
        "touched": len(touched),
    }
    cuts = np.searchsorted(touched, fixed_bounds)
    takes = [
        (touched[cuts[j] : cuts[j + 1]] - fixed_bounds[j]).astype(np.int64)
        for j in range(len(fixed_bounds) - 1)
    ]
    stats = {"rows": int(n_rows), "nnz": int(m.nnz), "touched": int(len(touched))}
    return [stats, block] + takes


def init_block(model, n: int, rng) -> np.ndarray:
    """The initial factors of the next ``n`` rows, drawn from ``rng`` as the local fit draws
    them (its draws are one stream, so drawing block after block gives the same values)."""
    return model._init_factors(n, int(model.factors), rng)


def _aligned(a: np.ndarray, dtype) -> np.ndarray:
    """``a`` as a C-contiguous, aligned array of ``dtype`` (copied only if it is not one: an
    engine may deserialise arrays into unaligned buffers, which the kernels refuse)."""
    return np.require(a, dtype, ["C", "A"])


def gram(factors: np.ndarray) -> np.ndarray:
    """``Y^T Y`` of a block of factors, float64 (``_core.als_gram``)."""
    return _core.als_gram(_aligned(factors, np.float32))


def add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a + b


def take(factors: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The rows ``rows`` of a block of factors (the fixed rows another block touches)."""
    return np.ascontiguousarray(factors[rows])


def solve(
    block: Dict,
    x: np.ndarray,
    yty: np.ndarray,
    fixed_rows: int,
    params: Dict,
    threads,
    touched: bool,
    *fixed: np.ndarray,
) -> Tuple[np.ndarray, bool]:
    """A block's half-sweep: its rows of factors ``x`` (copied: object-store values are
    read-only) solved against ``fixed``, the whole fixed side's blocks in order (``touched``
    False) or the rows it touches in order (True), with the whole side's Gram matrix ``yty``
    and row count ``fixed_rows``, on ``threads`` kernel threads (or ``threads()``, a function
    of the worker it runs in). Returns the new rows and whether they are all finite."""
    threads = threads() if callable(threads) else threads
    x = np.array(x, dtype=np.float32, order="C", copy=True)
    f = x.shape[1]
    y = fixed[0] if len(fixed) == 1 else np.concatenate(fixed) if fixed else np.zeros((0, f))
    y = _aligned(y, np.float32)
    n_rows, n_cols = block["shape"]
    indptr, data = _aligned(block["indptr"], np.int64), _aligned(block["data"], np.float32)
    if touched:
        c = Csr(indptr, _aligned(block["local"], np.int32), data, (n_rows, block["touched"]))
    else:
        c = Csr(indptr, _aligned(block["indices"], np.int32), data, (n_rows, n_cols))
    yty = _aligned(yty, np.float64)
    _core.als_solve(c, x, y, threads, gram=yty, fixed_rows=int(fixed_rows), **params)
    return x, bool(all_finite(x))

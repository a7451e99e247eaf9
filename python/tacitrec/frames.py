"""Data frames in and out: pandas, polars and pyarrow tables, whichever is installed.

Frames are converted through Arrow (pyarrow is needed for any frame; pandas and polars only when
their frames are used), so ids of any type keep their type end to end and ids are mapped to
indices by the package's one id encoder (:mod:`tacitrec._ids`, pyarrow's hash kernels), never a
Python loop over rows.
"""

from __future__ import annotations

from numbers import Integral
from typing import Any, Optional

import numpy as np

from . import _ids

KINDS = ("pandas", "polars", "pyarrow")


def pyarrow():
    try:
        import pyarrow as pa
    except ImportError as e:
        raise ImportError("data frames need pyarrow: pip install pyarrow") from e
    return pa


def kind_of(frame) -> Optional[str]:
    """``"pandas"``, ``"polars"``, ``"pyarrow"`` or None, without importing any of them."""
    module = type(frame).__module__.split(".")[0]
    if module == "pandas" and hasattr(frame, "columns"):
        return "pandas"
    if module == "polars" and hasattr(frame, "columns"):
        return "polars"
    if module == "pyarrow" and hasattr(frame, "column_names"):
        return "pyarrow"
    return None


def to_arrow(frame, name: str):
    """The pyarrow Table of a pandas / polars DataFrame or a pyarrow Table / RecordBatch."""
    pa = pyarrow()
    kind = kind_of(frame)
    if kind == "pandas":
        return pa.Table.from_pandas(frame, preserve_index=False)
    if kind == "polars":
        return frame.to_arrow()
    if kind == "pyarrow":
        return frame if isinstance(frame, pa.Table) else pa.Table.from_batches([frame])
    raise TypeError(
        f"{name} must be a pandas or polars DataFrame or a pyarrow Table, got "
        f"{type(frame).__name__}"
    )


def from_arrow(table, kind: str):
    """``table`` as a frame of ``kind``."""
    if kind == "pandas":
        return table.to_pandas()
    if kind == "polars":
        import polars as pl

        return pl.from_arrow(table)
    if kind == "pyarrow":
        return table
    raise ValueError(f"frame kind must be one of {KINDS}, got {kind!r}")


def column(table, name: str, what: str, allow_nulls: bool = False):
    """Column ``name`` of an Arrow table (one chunk), with an error naming ``what``."""
    if name not in table.column_names:
        raise ValueError(
            f"{what} has no column {name!r} (columns: {', '.join(table.column_names)})"
        )
    col = table.column(name).combine_chunks()
    if col.null_count and not allow_nulls:
        raise ValueError(f"column {name!r} of {what} holds {col.null_count} nulls")
    return col


def numbers(col, name: str, what: str) -> np.ndarray:
    """A numeric Arrow column as finite float32."""
    pa = pyarrow()
    if not (
        pa.types.is_integer(col.type)
        or pa.types.is_floating(col.type)
        or pa.types.is_boolean(col.type)
    ):
        raise ValueError(f"column {name!r} of {what} must hold numbers, got {col.type}")
    values = col.to_numpy(zero_copy_only=False).astype(np.float32)
    if not np.isfinite(values).all():
        raise ValueError(f"column {name!r} of {what} holds NaN or infinite values")
    return values


def ids_array(values: Any) -> np.ndarray:
    """Original ids as a NumPy array (integers stay integers, strings become str)."""
    if hasattr(values, "to_numpy"):
        arr = values.to_numpy(zero_copy_only=False)
    else:
        values = list(values)
        arr = np.asarray(values)
        if arr.dtype.kind == "f" and any(
            isinstance(v, Integral) and not isinstance(v, (bool, np.bool_)) for v in values
        ):
            # NumPy reads ints beyond int64 (uint64 ids) or mixed with floats as float64, which
            # rounds them: uint64 when every id is a whole number that fits, else the objects
            whole = all(isinstance(v, Integral) for v in values)
            fits = whole and 0 <= min(values) and max(values) < 2**64
            arr = np.array(values, dtype=np.uint64 if fits else object)
    if arr.dtype.kind == "O":
        items = arr.tolist()
        if all(isinstance(v, str) for v in items):
            return np.array(items, dtype=str)
    return arr


# ---- models in and out of frames ---------------------------------------------------------------
def _default_kind(model, *inputs) -> str:
    for x in inputs:
        kind = kind_of(x)
        if kind is not None:
            return kind
        if type(x).__module__.split(".")[0] in ("pandas", "polars"):  # a Series
            return type(x).__module__.split(".")[0]
    data = getattr(model, "_dataset", None)
    if data is not None and data.frame_kind is not None:
        return data.frame_kind
    import importlib.util

    return "pandas" if importlib.util.find_spec("pandas") is not None else "pyarrow"


def _names(model):
    data = getattr(model, "_dataset", None)
    if data is not None and data.user_col is not None:
        return data.user_col, data.item_col
    return "user_id", "item_id"


def _id_values(values, name: str):
    """A pyarrow array of the ids in ``values`` (a list, array, Series or one-column frame)."""
    pa = pyarrow()
    if kind_of(values) is not None:
        table = to_arrow(values, name)
        if table.num_columns != 1:
            raise ValueError(
                f"{name} must be ids, or a frame of one column, got {table.num_columns} columns"
            )
        col = table.column(0).combine_chunks()
        return _ids.cast(col, _ids.value_type(col))  # a categorical column: its values
    if type(values).__module__.split(".")[0] in ("pandas", "polars"):  # a Series
        return pa.array(values.to_numpy() if hasattr(values, "to_numpy") else list(values))
    arr = np.atleast_1d(np.asarray(values))
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    return pa.array(arr.tolist() if arr.dtype.kind in "OU" else arr)


def history_rows(model, users, user_items=None):
    """Interaction rows ``user, item, weight`` (original ids) of ``users`` (a pyarrow array):
    from the frame ``user_items`` (rows in the model's original ids, the Dataset's column names),
    else from the Dataset the model was fitted from; users without rows get a null item."""
    pa = pyarrow()
    import pyarrow.compute as pc

    user_col, item_col = _names(model)
    if user_items is not None:
        table = to_arrow(user_items, "user_items")
        u = column(table, user_col, "user_items")
        i = column(table, item_col, "user_items")
        try:  # the frame's type (a categorical column's values): ids compare in one type
            users = _ids.cast(users, _ids.value_type(u))
        except ValueError:
            raise ValueError(
                f"users are {users.type} ids but the user_items frame's {user_col!r} "
                f"column holds {u.type} ids: pass users of the frame's id type"
            ) from None
        keep = pa.array(_ids.lookup(users, u) >= 0)
        data = getattr(model, "_dataset", None)
        weight = getattr(data, "weight_col", None) or "weight"
        # every row of user_items has an item, so every row needs its weight (as from_frame)
        w = (
            numbers(column(table, weight, "user_items"), weight, "user_items")
            if weight in table.column_names
            else np.ones(len(u), np.float32)
        )
        u, i = u.filter(keep), i.filter(keep)
        rows = pa.table(
            {
                "user": _ids.cast(u, _ids.value_type(u)),
                "item": _ids.cast(i, _ids.value_type(i)),
                "weight": pa.array(w).filter(keep),
            }
        )
    else:
        data = getattr(model, "_dataset", None)
        if data is None or data.weights is None:
            raise ValueError(
                "user_items is required: this model was not fitted from a "
                "Dataset.from_frame in this process (pass the users' interaction "
                "rows as a frame, or filter_already_liked_items=False)"
            )
        W = data.weights.tocsr()
        pos = _ids.lookup(
            pa.array(data.user_id_array), users, what="users", known_as="the Dataset's user ids"
        )
        found = pos >= 0
        sub = W[pos[found]].tocoo()
        who = users.filter(pa.array(found)).take(pa.array(sub.row.astype(np.int64)))
        item_ids = pa.array(data.item_id_array).take(pa.array(sub.col.astype(np.int64)))
        rows = pa.table(
            {"user": who, "item": item_ids, "weight": pa.array(sub.data.astype(np.float32))}
        )
        if not found.all():  # unknown users: kept, so the scorer reports them as unknown
            missing = users.filter(pa.array(~found))
            rows = pa.concat_tables(
                [
                    rows,
                    pa.table(
                        {
                            "user": missing,
                            "item": pa.nulls(len(missing), rows.schema.field("item").type),
                            "weight": pa.nulls(len(missing), pa.float32()),
                        }
                    ),
                ]
            )
    present = pc.is_in(users, value_set=rows.column("user").combine_chunks().cast(users.type))
    lonely = users.filter(pc.invert(present))
    if len(lonely):
        rows = pa.concat_tables(
            [
                rows,
                pa.table(
                    {
                        "user": lonely.cast(rows.schema.field("user").type),
                        "item": pa.nulls(len(lonely), rows.schema.field("item").type),
                        "weight": pa.nulls(len(lonely), pa.float32()),
                    }
                ),
            ]
        )
    return rows


def recommend_frame(
    model,
    users=None,
    N: int = 10,
    filter_already_liked_items: bool = True,
    filter_items=None,
    items=None,
    *,
    user_items=None,
    unknown: str = "raise",
    frame: Optional[str] = None,
):
    """See :meth:`tacitrec.base.RecommenderBase.recommend_frame`."""
    from .distributed._local import Scorer

    pa = pyarrow()
    user_col, item_col = _names(model)
    if users is None:
        data = getattr(model, "_dataset", None)
        if data is None and model.user_ids_ is None:
            raise ValueError("users is required: the model has no original user ids")
        ids = data.user_id_array if data is not None else model.user_ids_
        requested = pa.array(ids.tolist() if ids.dtype.kind in "OU" else ids)
    else:
        requested = _id_values(users, "users")
    if len(requested) and requested.null_count:
        raise ValueError("users holds nulls")
    kind = frame or _default_kind(model, users, user_items)
    if kind not in KINDS:
        raise ValueError(f"frame must be one of {KINDS}, got {kind!r}")
    needs_history = filter_already_liked_items or model._scores_from_user_items
    rows = (
        history_rows(model, requested, user_items)
        if needs_history
        else pa.table({"user": requested, "item": pa.nulls(len(requested), pa.int64())})
    )
    scorer = Scorer(
        model,
        N=N,
        filter_already_liked_items=filter_already_liked_items,
        filter_items=filter_items,
        items=items,
        unknown=unknown,
        num_threads=getattr(model, "num_threads", 0),
    )
    out = scorer.recommend(rows).rename_columns([user_col, item_col, "rank", "score"])
    return from_arrow(out, kind)


def similar_items_frame(model, items=None, N: int = 10, frame: Optional[str] = None):
    """See :meth:`tacitrec.base.RecommenderBase.similar_items_frame`."""
    from .distributed._local import _Ids

    if not callable(getattr(model, "similar_items", None)):
        raise NotImplementedError(
            f"{type(model).__name__} has no similar_items, so no similar_items_frame"
        )
    pa = pyarrow()
    _, item_col = _names(model)
    _, n_items = model._shape()
    lookup = _Ids(model.item_ids_, n_items, "item")
    query = (
        pa.array(np.arange(n_items) if model.item_ids_ is None else model.item_ids_.tolist())
        if items is None
        else _id_values(items, "items")
    )
    idx, found = lookup.index(query)
    if not found.all():
        bad = query.filter(pa.array(~found)).to_pylist()[:5]
        raise ValueError(f"items holds ids that are not items of the model, e.g. {bad}")
    ids, scores = model.similar_items(idx, N=N)
    ok = ids >= 0
    who = np.repeat(np.arange(len(idx)), ok.sum(axis=1))
    similar = ids[ok].astype(np.int64)
    names = pa.array(model.item_ids_.tolist()) if model.item_ids_ is not None else None
    out = pa.table(
        {
            item_col: query.take(pa.array(who)),
            f"similar_{item_col}": names.take(pa.array(similar))
            if names is not None
            else pa.array(similar),
            "rank": pa.array(
                np.broadcast_to(np.arange(1, ids.shape[1] + 1, dtype=np.int32), ids.shape)[ok]
            ),
            "score": pa.array(scores[ok]),
        }
    )
    return from_arrow(out, frame or _default_kind(model, items))


def ranking_metrics_frame(
    model, test, K: int = 10, *, train=None, unknown: str = "raise", frame: Optional[str] = None
):
    """See :func:`tacitrec.evaluation.ranking_metrics_frame`."""
    from . import _core
    from .distributed._local import TEST_COLUMN, Scorer
    from .evaluation import metrics_from_sums

    pa = pyarrow()
    user_col, item_col = _names(model)
    table = to_arrow(test, "test")
    test_users = column(table, user_col, "test")
    users, _ = _ids.encode(test_users, order="appearance")  # distinct, in their value type
    history = history_rows(model, users, train)
    # the test rows in the types of the history's ids (as the engines give train and test
    # rows one type before their shuffle): a ValueError naming the column when they cannot be
    test_rows = pa.table(
        {
            name: _ids.cast(
                column(table, col, "test"),
                history.schema.field(name).type,
                what=f"column {col!r} of test",
                known_as=f"the training rows' {name} ids",
            )
            for name, col in (("user", user_col), ("item", item_col))
        }
    )
    rows = pa.concat_tables(
        [
            history.select(["user", "item"]).append_column(
                TEST_COLUMN, pa.array(np.zeros(len(history), bool))
            ),
            test_rows.append_column(TEST_COLUMN, pa.array(np.ones(len(test_rows), bool))),
        ]
    )
    rows = rows.append_column(
        "weight",
        pa.concat_arrays(
            [
                history.column("weight").combine_chunks().fill_null(1.0).cast(pa.float32()),
                pa.array(np.ones(len(test_rows), np.float32)),
            ]
        ),
    )
    scorer = Scorer(model, unknown=unknown, num_threads=getattr(model, "num_threads", 0))
    who, per_user = scorer.metric_table(rows, K)
    sums = np.concatenate([[len(per_user)], per_user.sum(axis=0)])
    means = metrics_from_sums(sums)
    names = list(_core.METRIC_NAMES)
    out = pa.table(
        {
            user_col: who,
            **{
                n: pa.array(per_user[:, j])
                for j, n in enumerate(names)
                if n not in ("hits", "ideal")
            },
        }
    )
    return from_arrow(out, frame or _default_kind(model, test)), means

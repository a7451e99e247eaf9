"""What every engine adapter runs on a worker: a partition of interaction rows in (a pyarrow
table), recommendation rows or summed metrics out, through the local batched ``recommend`` and
metric kernels. Nothing here knows an engine.

Rows are ``user``, ``item`` and an optional ``weight`` column; a row whose item is null stands
for a user without interactions (its weight, null or not, is ignored; a row with an item needs
a weight when the column is there). A partition must hold all the rows of each of its users (the
adapters partition by user, after :meth:`Scorer.canonical` gave the id columns one type).
"""

from __future__ import annotations

import copy
import os
import threading
from typing import Any, Dict, Optional, Tuple

import numpy as np
import scipy.sparse as sp

from .. import _core, _ids
from .._validation import Csr, as_csr, check_count, check_threads
from ..base import RecommenderBase
from ..evaluation import metric_tables

#: the columns of a recommendation frame
OUTPUT_COLUMNS = ("user", "item", "rank", "score")
#: the marker column that tells test rows from training rows in a metrics partition
TEST_COLUMN = "__tacitrec_test__"

_UNKNOWN = ("raise", "skip")


def pyarrow():
    """The pyarrow module (every engine adapter needs it; each engine installs it)."""
    try:
        import pyarrow as pa
    except ImportError as e:  # pragma: no cover - the engines depend on pyarrow
        raise ImportError("tacitrec.distributed needs pyarrow: pip install pyarrow") from e
    return pa


def serving_model(model, user_features=None, item_features=None):
    """The model to ship to workers: a :class:`~tacitrec.LightFM` becomes the plain factor model
    of its representations under these feature matrices (computed once, here), other models go
    as they are; a path is kept (each worker process opens it memory-mapped, once)."""
    from ..lightfm import LightFM

    if isinstance(model, (str, os.PathLike)):
        if user_features is not None or item_features is not None:
            raise ValueError(
                "user_features / item_features need the LightFM model itself, not "
                "a path: pass the model, or save model.as_factor_model(...)"
            )
        return os.path.abspath(os.fspath(model))
    from ..approximate import ApproximateRecommender

    if not isinstance(model, (RecommenderBase, ApproximateRecommender)):
        raise TypeError(
            f"model must be a tacitrec model, an ApproximateRecommender or the path of a "
            f"model directory (model.save_dir), got {type(model).__name__}"
        )
    model._shape()  # NotFittedError before any engine work
    if isinstance(model, LightFM):
        served = model.as_factor_model(user_features, item_features)
        served.user_ids_, served.item_ids_ = model.user_ids_, model.item_ids_
        return served
    if user_features is not None or item_features is not None:
        raise ValueError(
            f"user_features / item_features are for LightFM, not {type(model).__name__}"
        )
    return model


_OPENED: Dict[Tuple[str, int], RecommenderBase] = {}
_OPENED_LOCK = threading.Lock()


def open_model(ref) -> Any:
    """``ref`` itself (a model or an ApproximateRecommender), or the model directory at path
    ``ref`` opened memory-mapped once per process (reopened when the directory is replaced)."""
    from ..approximate import ApproximateRecommender

    if isinstance(ref, (RecommenderBase, ApproximateRecommender)):
        return ref
    manifest = os.path.join(ref, "manifest.json")
    try:
        key = (ref, os.stat(manifest).st_mtime_ns)
    except OSError:
        raise FileNotFoundError(
            f"no tacitrec model directory at {ref!r} on this worker: the "
            "path must be readable from every worker (a shared file "
            "system), or pass the model object"
        ) from None
    with _OPENED_LOCK:
        model = _OPENED.get(key)
        if model is None:
            for old in [k for k in _OPENED if k[0] == ref]:
                del _OPENED[old]
            model = _OPENED[key] = RecommenderBase.load_dir(ref, mmap=True)
    return model


def _as_numpy(column) -> np.ndarray:
    return column.to_numpy(zero_copy_only=False)


class _Ids:
    """Original ids (or plain indices) of one side of a model, to indices."""

    def __init__(self, ids: Optional[np.ndarray], n: Optional[int], side: str):
        self.ids, self.n, self.side = ids, n, side
        self._value_set = None

    def arrow(self):
        """The original ids as one pyarrow array (built once)."""
        if self._value_set is None:
            self._value_set = pyarrow().array(self.ids)
        return self._value_set

    def arrow_type(self):
        """The Arrow type of the original ids (int64 without them), without converting them
        all when their NumPy dtype says it."""
        pa = pyarrow()
        if self.ids is None:
            return pa.int64()
        if self._value_set is None and isinstance(self.ids, np.ndarray):
            kind = self.ids.dtype.kind
            if kind in "biuf":
                return pa.from_numpy_dtype(self.ids.dtype)
            if kind in "US":
                return pa.string() if kind == "U" else pa.binary()
        return self.arrow().type

    def index(self, values) -> Tuple[np.ndarray, np.ndarray]:
        """``(indices, found)`` of a pyarrow array without nulls (indices -1 where not found)."""
        if self.ids is not None:
            idx = _ids.lookup(
                self.arrow(),
                values,
                what=f"{self.side} ids",
                known_as=f"the model's {self.side} ids",
            )
            return idx, idx >= 0
        idx = _as_numpy(self.canonical(values, self.side))
        found = (idx >= 0) & (idx < self.n) if self.n is not None else idx >= 0
        return np.where(found, idx, -1), found

    def canonical(self, values, column: str):
        """``values`` (a pyarrow array) as the Arrow type of this side's ids: the type of the
        model's original ids, int64 indices without them (a dictionary-encoded array decoded,
        NaN of a float column null, nulls kept). A ValueError naming ``column`` when the values
        cannot be such ids, as :meth:`index` (and the local ``recommend_frame``) would raise."""
        pa = pyarrow()
        if values.null_count == len(values):  # no ids at all (as Dask types them): any type
            return pa.nulls(len(values), self.arrow_type())
        if pa.types.is_floating(_ids.value_type(values)):
            import pyarrow.compute as pc

            values = _ids.cast(values, _ids.value_type(values))
            values = pc.if_else(pc.is_nan(values), pa.scalar(None, values.type), values)
        if self.ids is not None:
            return _ids.cast(
                values,
                self.arrow_type(),
                what=f"column {column!r}",
                known_as=f"the model's {self.side} ids",
            )
        typ = _ids.value_type(values)
        if not (pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_null(typ)):
            raise ValueError(
                f"the model has no original {self.side} ids (set_ids), so {self.side} "
                f"values must be integer indices, got {values.type} (column {column!r})"
            )
        try:
            return _ids.cast(values, pa.int64(), what=f"column {column!r}")
        except ValueError:
            raise ValueError(
                f"{self.side} values must be integer indices, got fractions or numbers "
                f"beyond int64 (column {column!r})"
            ) from None


class Scorer:
    """The local work of one engine task, built once per worker (or task) from the shipped
    model and the call's options; ``num_threads`` is the cores the engine gave this worker."""

    def __init__(
        self,
        model,
        N: int = 10,
        filter_already_liked_items: bool = True,
        filter_items=None,
        items=None,
        unknown: str = "raise",
        num_threads: int = 1,
    ):
        model = copy.copy(open_model(model))  # shares the arrays; own num_threads
        model.num_threads = check_threads(int(num_threads))  # 0: all cores
        self.model = model
        self.N = check_count(N, "N")
        self.filter_liked = bool(filter_already_liked_items)
        if unknown not in _UNKNOWN:
            raise ValueError(f"unknown must be one of {_UNKNOWN}, got {unknown!r}")
        self.unknown = unknown
        n_users, self.n_items = model._shape()
        # A model that scores from each user's rows (kNN, EASE, ...) has no user count: its
        # users are those of its user ids (set_ids, or the Dataset it was fitted from), or any
        # non-negative integer index without them; both raise or skip like a factor model's.
        if n_users is None and model.user_ids_ is not None:
            n_users = len(model.user_ids_)
        self.users = _Ids(model.user_ids_, n_users, "user")
        self.items = _Ids(model.item_ids_, self.n_items, "item")
        self.filter_items = self._item_list(filter_items, "filter_items")
        self.only_items = self._item_list(items, "items")

    def _item_list(self, values, name: str) -> Optional[np.ndarray]:
        """``filter_items`` / ``items`` given in the model's item ids, as indices."""
        if values is None:
            return None
        pa = pyarrow()
        arr = pa.array(np.atleast_1d(np.asarray(values)).tolist())
        idx, found = self.items.index(arr)
        if not found.all():
            bad = _as_numpy(arr)[~found][:5].tolist()
            raise ValueError(f"{name} holds ids that are not items of the model, e.g. {bad}")
        return idx

    def _check_found(self, found: np.ndarray, values, side: str) -> None:
        if not found.all() and self.unknown == "raise":
            bad = _as_numpy(values)[~found][:5].tolist()
            raise ValueError(
                f"{int((~found).sum())} {side} ids are not {side}s of the model "
                f"(e.g. {bad}): pass unknown='skip' to leave them out"
            )

    def check_ids(self, table) -> None:
        """Raises ValueError (as :meth:`recommend` would) when the rows hold user or item ids the
        model does not know and ``unknown`` is ``"raise"``, or a row with an item has no
        weight; an adapter can check rows before they reach its workers."""
        if self.unknown == "raise":
            self._user_rows(table)
        else:  # the ids are not checked, the weights are (cheap: no id is looked up)
            _row_weights(table, _has_item(table.column("item").combine_chunks()))

    def canonical(self, table):
        """The rows with one type per column whatever the block, frame or side (train, test)
        they came from: ``user`` and ``item`` in the type of the model's ids (int64 indices
        without them; see :meth:`_Ids.canonical`), ``weight`` float64, other columns as they
        are. An adapter applies it before its shuffle by user, so that equal ids hash alike
        (the user 3 of an int64 block and 3.0 of a float64 block are one user, in one
        partition) and blocks concatenate; ids that cannot be the model's (a string that is
        not a number for integer ids) raise ValueError naming the column, as the local call."""
        pa = pyarrow()
        columns = {}
        for name in table.column_names:
            col = table.column(name).combine_chunks()
            if name in ("user", "item"):
                side = self.users if name == "user" else self.items
                col = side.canonical(col, name)
            elif name == "weight":
                col = _weights(col).cast(pa.float64())
            columns[name] = col
        return pa.table(columns)

    def _user_rows(self, table):
        """A partition's rows, decoded: ``(users`` (distinct, a pyarrow array), ``query`` (their
        model indices), ``keep_user`` (known users), ``row_user`` (each row's user position),
        ``valid`` (rows with a known item of a kept user), ``item_idx``, ``weight)``."""
        pa = pyarrow()
        user = table.column("user").combine_chunks()
        if user.null_count:
            raise ValueError("the user column holds nulls: every row needs a user")
        users, row_user = _ids.encode(user, order="appearance")
        query, keep_user = self.users.index(users)
        self._check_found(keep_user, users, "user")
        item = table.column("item").combine_chunks()
        valid = _has_item(item)
        weight = _row_weights(table, valid)
        item_idx = np.zeros(len(item), np.int64)
        if valid.any():
            present = item.filter(pa.array(valid))
            idx, found = self.items.index(present)
            self._check_found(found, present, "item")
            valid[valid] = found
            item_idx[valid] = idx[found]
        valid &= keep_user[row_user]
        return users, query, keep_user, row_user, valid, item_idx, weight

    def _matrix(self, rows, cols, weight, n_rows) -> Csr:
        m = sp.csr_matrix((weight, (rows, cols)), shape=(n_rows, self.n_items), dtype=np.float32)
        m.sum_duplicates()
        return as_csr(m, "interactions")

    def recommend(self, table):
        """The recommendation rows (``user, item, rank, score``) of a partition's users."""
        pa = pyarrow()
        users, query, keep_user, row_user, valid, item_idx, weight = self._user_rows(table)
        kept = np.flatnonzero(keep_user)
        if len(kept) == 0:
            return empty_output(users.type, self._item_type())
        position = np.full(len(users), -1, np.int64)
        position[kept] = np.arange(len(kept))
        liked = self._matrix(position[row_user[valid]], item_idx[valid], weight[valid], len(kept))
        ids, scores = self.model.recommend(
            query[kept],
            liked,
            N=self.N,
            filter_already_liked_items=self.filter_liked,
            filter_items=self.filter_items,
            items=self.only_items,
        )
        ok = ids >= 0  # padding of users with fewer candidates
        who = np.repeat(kept, ok.sum(axis=1))
        rank = np.broadcast_to(np.arange(1, ids.shape[1] + 1, dtype=np.int32), ids.shape)[ok]
        item_ids = ids[ok].astype(np.int64)
        if self.items.ids is not None:
            item_col = self.items.arrow().take(pa.array(item_ids))
        else:
            item_col = pa.array(item_ids)
        return pa.table(
            {
                "user": users.take(pa.array(who)),
                "item": item_col,
                "rank": pa.array(rank),
                "score": pa.array(scores[ok]),
            }
        )

    def _item_type(self):
        pa = pyarrow()
        return self.items.arrow().type if self.items.ids is not None else pa.int64()

    def metric_sums(self, table, K: int) -> np.ndarray:
        """:func:`tacitrec.evaluation.metric_sums` of a partition holding its users' training
        rows and test rows (``TEST_COLUMN`` true)."""
        users, rows = self.metric_table(table, K)
        return (
            np.concatenate([[len(rows)], rows.sum(axis=0)])
            if len(rows)
            else np.zeros(1 + len(_core.METRIC_NAMES))
        )

    def metric_table(self, table, K: int):
        """``(users, per-user metric table)`` of a partition (as :meth:`metric_sums`): the
        users with test rows (a pyarrow array of their ids) and one row of
        ``_core.METRIC_NAMES`` each."""
        users, query, keep_user, row_user, valid, item_idx, weight = self._user_rows(table)
        is_test = _as_numpy(table.column(TEST_COLUMN).combine_chunks().fill_null(False))
        kept = np.flatnonzero(keep_user)
        position = np.full(len(users), -1, np.int64)
        position[kept] = np.arange(len(kept))
        train_rows, test_rows = valid & ~is_test, valid & is_test
        train = self._matrix(
            position[row_user[train_rows]], item_idx[train_rows], weight[train_rows], len(kept)
        )
        test = self._matrix(
            position[row_user[test_rows]],
            item_idx[test_rows],
            np.ones(int(test_rows.sum()), np.float32),
            len(kept),
        )
        with_test = np.flatnonzero(np.diff(test.indptr))
        who = users.take(pyarrow().array(kept[with_test]))
        if len(with_test) == 0:
            return who, np.zeros((0, len(_core.METRIC_NAMES)))
        # the model is asked for rows of its own users: query ids, rows re-ordered to match
        model = _Reindexed(self.model, query[kept])
        return who, np.vstack(
            list(
                metric_tables(
                    model, train, test, with_test, check_count(K, "K"), self.model.num_threads
                )
            )
        )


class _Reindexed:
    """``model`` seen through local row numbers: ``recommend(rows, ...)`` asks for the model's
    users ``query[rows]``."""

    def __init__(self, model, query: np.ndarray):
        self.model, self.query = model, query

    def recommend(self, rows, user_items, **kw):
        return self.model.recommend(self.query[rows], user_items, **kw)


def _has_item(item) -> np.ndarray:
    """The rows whose item is not null (nor NaN, pandas' null of a float column)."""
    pa = pyarrow()
    valid = np.asarray(_as_numpy(item.is_valid()), dtype=bool)
    if pa.types.is_floating(item.type):
        valid &= ~np.isnan(_as_numpy(item.fill_null(0)))
    return valid


def _row_weights(table, has_item: np.ndarray) -> np.ndarray:
    """Each row's weight (float32; 1 without a ``weight`` column). A row with an item needs its
    weight: a null or NaN one raises ValueError naming the column; a row without an item (a
    user without interactions) has none to give, and a test row of a metrics partition counts
    1 whatever it holds, so theirs are not read."""
    pa = pyarrow()
    if "weight" not in table.column_names:
        return np.ones(table.num_rows, np.float32)
    w = _weights(table.column("weight").combine_chunks()).cast(pa.float64())
    w = np.asarray(_as_numpy(w), dtype=np.float64)  # nulls read as NaN
    needed = has_item
    if TEST_COLUMN in table.column_names:
        test = _as_numpy(table.column(TEST_COLUMN).combine_chunks().fill_null(False))
        needed = has_item & ~np.asarray(test, dtype=bool)
    missing = needed & np.isnan(w)
    if missing.any():
        raise ValueError(
            f"column 'weight' holds {int(missing.sum())} null or NaN weights on rows with "
            "an item: every interaction needs a weight (only a row without an item, a user "
            "without interactions, may leave it null)"
        )
    with np.errstate(over="ignore", invalid="ignore"):  # beyond float32: inf, refused later
        return np.where(needed, w, 1.0).astype(np.float32)


def _weights(col):
    """A weight column as numbers: a column of nulls only (no weights at all, as a frame of
    users without interactions has) as float64 nulls; ValueError for any other non-number."""
    pa = pyarrow()
    if col.null_count == len(col):  # no weights at all, whatever the type (Arrow's null, or
        return pa.nulls(len(col), pa.float64())  # the strings Dask makes of None objects)
    if pa.types.is_dictionary(col.type):
        col = _ids.cast(col, col.type.value_type)
    if not (
        pa.types.is_integer(col.type)
        or pa.types.is_floating(col.type)
        or pa.types.is_boolean(col.type)
    ):
        raise ValueError(f"column 'weight' must hold numbers, got {col.type}")
    return col


def empty_output(user_type, item_type):
    pa = pyarrow()
    return pa.table(
        {
            "user": pa.array([], user_type),
            "item": pa.array([], item_type),
            "rank": pa.array([], pa.int32()),
            "score": pa.array([], pa.float32()),
        }
    )


def output_schema(model, user_type):
    """The schema of a recommendation frame: ``user`` of the input's type, ``item`` of the
    model's item ids (int64 indices without them), ``rank`` int32, ``score`` float32."""
    pa = pyarrow()
    model = open_model(model)
    item_type = pa.array(model.item_ids_).type if model.item_ids_ is not None else pa.int64()
    return empty_output(user_type, item_type).schema

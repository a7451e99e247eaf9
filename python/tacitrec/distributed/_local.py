"""What every engine adapter runs on a worker: a partition of interaction rows in (a pyarrow
table), recommendation rows or summed metrics out, through the local batched ``recommend`` and
metric kernels. Nothing here knows an engine.

Rows are ``user``, ``item`` and an optional ``weight`` column; a row whose item is null stands
for a user without interactions. A partition must hold all the rows of each of its users (the
adapters partition by user).
"""

from __future__ import annotations

import copy
import os
import threading
from typing import Any, Dict, Optional, Tuple

import numpy as np
import scipy.sparse as sp

from .. import _core, _ids
from .._validation import Csr, as_csr, check_count
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

    def index(self, values) -> Tuple[np.ndarray, np.ndarray]:
        """``(indices, found)`` of a pyarrow array without nulls (indices -1 where not found)."""
        pa = pyarrow()
        if self.ids is not None:
            idx = _ids.lookup(
                self.arrow(),
                values,
                what=f"{self.side} ids",
                known_as=f"the model's {self.side} ids",
            )
            return idx, idx >= 0
        if not (pa.types.is_integer(values.type) or pa.types.is_floating(values.type)):
            raise ValueError(
                f"the model has no original {self.side} ids (set_ids), so {self.side} "
                f"values must be integer indices, got {values.type}"
            )
        arr = _as_numpy(values)
        idx = arr.astype(np.int64)
        if arr.dtype.kind == "f" and not np.array_equal(idx, arr):
            raise ValueError(f"{self.side} values must be integer indices, got fractions")
        found = (idx >= 0) & (idx < self.n) if self.n is not None else idx >= 0
        return np.where(found, idx, -1), found


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
        model.num_threads = max(1, int(num_threads))
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
        model does not know and ``unknown`` is ``"raise"``; an adapter can check rows before
        they reach its workers."""
        self._user_rows(table)

    def _user_rows(self, table):
        """A partition's rows, decoded: ``(users`` (distinct, a pyarrow array), ``query`` (their
        model indices), ``keep_user`` (known users), ``row_user`` (each row's user position),
        ``valid`` (rows with a known item of a kept user), ``item_idx``, ``weight)``."""
        user = table.column("user").combine_chunks()
        if user.null_count:
            raise ValueError("the user column holds nulls: every row needs a user")
        users, row_user = _ids.encode(user, order="appearance")
        query, keep_user = self.users.index(users)
        self._check_found(keep_user, users, "user")
        item = table.column("item").combine_chunks()
        valid = _as_numpy(item.is_valid())
        if pyarrow().types.is_floating(item.type):  # NaN: pandas' null of a float column
            valid &= ~np.isnan(_as_numpy(item.fill_null(0)))
        item_idx = np.zeros(len(item), np.int64)
        if valid.any():
            present = item.filter(pyarrow().array(valid))
            idx, found = self.items.index(present)
            self._check_found(found, present, "item")
            valid[valid] = found
            item_idx[valid] = idx[found]
        valid &= keep_user[row_user]
        if "weight" in table.column_names:
            weight = _as_numpy(table.column("weight").combine_chunks().fill_null(1.0))
            weight = weight.astype(np.float32)
        else:
            weight = np.ones(len(item), np.float32)
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

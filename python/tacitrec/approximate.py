"""Approximate top-N for factor models: an HNSW graph index over the item factors.

``model.approximate(**index_params)`` (any :class:`~tacitrec.MatrixFactorizationBase`: ALS, BPR,
LMF, iALS, factors served from elsewhere, and LightFM through
:meth:`~tacitrec.LightFM.approximate` or ``as_factor_model()``) returns an
:class:`ApproximateRecommender`: the same ``recommend`` and ``similar_items`` as the model, answered
from a hierarchical navigable small-world graph (HNSW, Malkov & Yashunin 2018) built by
`faiss <https://github.com/facebookresearch/faiss>`_ (``faiss-cpu``), the optional extra
``ann``::

    pip install "tacitrec[ann]"

``import tacitrec`` never imports faiss; building or loading an index does, and raises
ImportError naming the extra when it is missing. (faiss was chosen by measurement over usearch,
hnswlib and voyager: benches/compare/ann_libraries.py, RESULTS.md.)

**What is approximate and what is not.**

* **Which** items come back is approximate: the graph search may miss some of the exact top-N
  (recall below 1). Recall depends on the factors, ``M``, ``ef_construction`` and ``ef_search``;
  it is measured (``benches/compare/ann.py``, RESULTS.md), never promised. Raise ``ef_search``
  for higher recall at lower speed; the exact path (the model's own ``recommend``) is the
  reference.
* **Scores** are exact: every candidate the graph returns is scored again in float32 from the
  factors, and the results are ordered as the exact path orders them (best first, ties to the
  lower item id).
* **Counts** are exact: liked items (``filter_already_liked_items``) and ``filter_items`` are
  removed, and every row still holds ``N' = min(N, number of candidate items)`` results. A row
  first asks the graph for ``2 N'`` candidates; a row left short asks again with room for all
  its liked items and twice as many filtered ones, and so on, up to the count that must leave
  ``N'`` after removing every liked and filtered item. A row that would need a search wider
  than ``exact_above`` candidates, or that the graph cannot serve in full, is scored exactly
  instead. A row is padded with id ``-1`` and score ``-inf`` only where the exact path pads it:
  when the user has fewer than ``N'`` candidates left.
* ``items`` (rank only these items) is answered exactly: the subset is scored in full.

Recommend searches by maximum inner product, which faiss's HNSW supports directly (the
norm-completing transform to Euclidean distance measured far worse on factors whose norms
spread as trained ones do); ``similar_items`` searches a second index, of the unit-normalised
latent item factors (cosine), built with the first when ``similar_items=True`` or on the first
``similar_items`` call.

The index is built from the model's item factors at the time of the call. Retraining the model
afterwards (``fit``, ``partial_fit_items``, assigning ``item_factors``) makes the index stale: the
recommender notices (it keeps a fingerprint of the factors' shape and of about 2,000 of their
values, which retraining changes; an edit of a few values in place may go unnoticed) and raises
RuntimeError; call ``approximate()`` again. User factors are read from the model at every
call, so refitting users alone (``partial_fit_users``) is served at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from typing import Any, Dict, Optional, Tuple

import numpy as np

from . import _core
from ._validation import (
    check_count,
    check_id_list,
    check_ids,
    check_scores_finite,
    check_threads,
)
from .base import (
    MatrixFactorizationBase,
    _check_format_version,
    _dir_path,
    _model_lock,
    _normalize_rows,
    _write_dir,
)
from .exceptions import ModelFormatError

_EXTRA = 'pip install "tacitrec[ann]"'
_FORMAT = "tacitrec-approximate"
_FORMAT_VERSION = 1
_MANIFEST = "approximate.json"
_INDEX_FILES = {"recommend": "recommend.faiss", "similar_items": "similar_items.faiss"}
_DTYPES = ("f32", "f16")
_F16_MAX = float(np.finfo(np.float16).max)  # 65504
#: the keyword arguments of ``model.approximate()``
INDEX_PARAMS = (
    "M",
    "ef_construction",
    "ef_search",
    "dtype",
    "similar_items",
    "exact_above",
    "num_threads",
)
#: candidates (rows x k) searched and rescored together (bounds the temporaries)
_CHUNK = 1 << 17


def _faiss():
    """The faiss module, or ImportError naming the extra to install."""
    try:
        import faiss
    except ImportError as e:
        raise ImportError(
            "approximate search needs faiss, an optional dependency of tacitrec: "
            f"{_EXTRA} (or pip install faiss-cpu)"
        ) from e
    return faiss


class _Threads:
    """Runs faiss's OpenMP loops on ``n`` threads (0: all cores) for one call, restoring the
    calling thread's setting afterwards (OpenMP keeps it per thread, so other threads and
    libraries are not affected)."""

    def __init__(self, faiss, n: int):
        self.faiss, self.n = faiss, n or (os.cpu_count() or 1)

    def __enter__(self):
        self.before = self.faiss.omp_get_max_threads()
        self.faiss.omp_set_num_threads(self.n)

    def __exit__(self, *exc):
        self.faiss.omp_set_num_threads(self.before)


def _fingerprint(factors: np.ndarray) -> str:
    """A cheap digest of ``factors`` (shape, and about 2,000 values spread over the array) that
    changes when a model is retrained; not a full checksum."""
    flat = factors.reshape(-1)
    step = max(1, flat.size // 2048)
    h = hashlib.blake2b(digest_size=16)
    h.update(repr(factors.shape).encode())
    h.update(np.ascontiguousarray(flat[::step]).tobytes())
    h.update(np.ascontiguousarray(factors[-1:]).tobytes())
    return h.hexdigest()


def _check_int(value, name: str, low: int, high: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be in {low}..{high}, got {value}")
    return int(value)


class ApproximateRecommender:
    """Approximate ``recommend`` / ``similar_items`` over a factor model's items (see the module
    documentation for what is approximate and what is exact). Made by ``model.approximate()``;
    loaded by :meth:`load`.

    Parameters
    ----------
    model : MatrixFactorizationBase
        The fitted model (``model.approximate(**index_params)`` passes itself); the other
        parameters are the ``index_params``.
    M : int, default 16
        Links per node of the graph: more links, higher recall,
        more memory and a slower build.
    ef_construction : int, default 128
        Candidates kept while inserting: higher, a better graph and a slower build.
    ef_search : int, default 64
        Candidates kept while searching (faiss's ``efSearch``); at least the number asked for
        is kept. The speed / recall knob; can be changed later (attribute ``ef_search``) or per
        call (``recommend(..., ef_search=...)``).
    dtype : "f32" or "f16", default "f32"
        How the index stores the vectors: "f16" halves the index's memory (the candidates are
        rescored from the float32 factors either way). Factors beyond float16's range (65504
        in magnitude) raise ValueError when the index is built: stored as inf, they would make
        the graph useless.
    similar_items : bool, default False
        Also build the cosine index for :meth:`similar_items` now (else on its first call).
    exact_above : int, optional
        The widest graph search before a row is scored exactly instead; default
        ``max(256, n_items // 1000)``, about where a graph search costs as much as scoring
        every item (measured at 1,000,000 items x 64 factors).
    num_threads : int, optional
        Threads for building and searching (0: all cores); default: the model's ``num_threads``.
    """

    def __init__(
        self,
        model: MatrixFactorizationBase,
        *,
        M: int = 16,
        ef_construction: int = 128,
        ef_search: int = 64,
        dtype: str = "f32",
        similar_items: bool = False,
        exact_above: Optional[int] = None,
        num_threads: Optional[int] = None,
        _indexes: Optional[Dict[str, Any]] = None,
    ):
        if not isinstance(model, MatrixFactorizationBase):
            raise TypeError(
                "ApproximateRecommender serves factor models (MatrixFactorizationBase: ALS, "
                f"BPR, LMF, LightFM.as_factor_model()), got {type(model).__name__}"
            )
        n_users, n_items = model._shape()  # NotFittedError before fitting
        self.model = model
        self.M = _check_int(M, "M", 2, 1024)
        self.ef_construction = _check_int(ef_construction, "ef_construction", 1, 1 << 20)
        self.ef_search = ef_search
        if not isinstance(dtype, str) or dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {_DTYPES}, got {dtype!r}")
        self.dtype = dtype
        if exact_above is None:
            exact_above = max(256, n_items // 1000)
        self.exact_above = _check_int(exact_above, "exact_above", 1, 1 << 40)
        self.num_threads = check_threads(
            model._threads() if num_threads is None else num_threads, "num_threads"
        )
        if not isinstance(similar_items, (bool, np.bool_)):
            raise TypeError(f"similar_items must be True or False, got {similar_items!r}")
        assert model.item_factors is not None  # _shape() raised otherwise
        self._fingerprint = _fingerprint(model.item_factors)
        self._lock = threading.Lock()  # builds the cosine index once
        self._indexes: Dict[str, Any] = {} if _indexes is None else dict(_indexes)
        if _indexes is None:
            self._indexes["recommend"] = self._build("recommend")
            if similar_items:
                self._indexes["similar_items"] = self._build("similar_items")

    # ---- parameters -------------------------------------------------------------------------
    @property
    def ef_search(self) -> int:
        return self._ef_search

    @ef_search.setter
    def ef_search(self, value) -> None:
        self._ef_search = _check_int(value, "ef_search", 1, 1 << 20)

    def get_params(self) -> Dict[str, Any]:
        return {
            "M": self.M,
            "ef_construction": self.ef_construction,
            "ef_search": self.ef_search,
            "dtype": self.dtype,
            "exact_above": self.exact_above,
            "num_threads": self.num_threads,
        }

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"ApproximateRecommender({type(self.model).__name__}, {args})"

    @property
    def memory_usage(self) -> int:
        """Bytes held by the built indexes (the model's factors not included)."""
        return int(sum(_index_bytes(ix) for ix in self._indexes.values()))

    # ---- building ---------------------------------------------------------------------------
    def _vectors(self, kind: str) -> np.ndarray:
        if kind == "recommend":
            return np.ascontiguousarray(self.model.item_factors, dtype=np.float32)
        return _normalize_rows(self.model._similarity_factors("item"))

    def _build(self, kind: str):
        faiss = _faiss()
        vectors = self._vectors(kind)
        d = vectors.shape[1]
        metric = faiss.METRIC_INNER_PRODUCT  # cosine on unit vectors is the inner product
        if self.dtype == "f16":
            big = float(np.abs(vectors).max(initial=0.0))
            if big > _F16_MAX:
                raise ValueError(
                    f"dtype='f16' cannot store these factors: the largest magnitude is {big:.3g}, "
                    f"float16's is {_F16_MAX:g} (they would be stored as inf); use dtype='f32'"
                )
            index = faiss.IndexHNSWSQ(d, faiss.ScalarQuantizer.QT_fp16, self.M, metric)
        else:
            index = faiss.IndexHNSWFlat(d, self.M, metric)
        index.hnsw.efConstruction = self.ef_construction
        with _Threads(faiss, self.num_threads):
            index.train(vectors)  # nothing to learn for these storages; faiss requires the call
            index.add(vectors)
        return index

    def _index(self, kind: str):
        index = self._indexes.get(kind)
        if index is None:
            with self._lock:
                index = self._indexes.get(kind)
                if index is None:
                    index = self._indexes[kind] = self._build(kind)
        return index

    def _check_fresh(self) -> None:
        factors = self.model.item_factors
        if factors is None or _fingerprint(factors) != self._fingerprint:
            raise RuntimeError(
                f"the {type(self.model).__name__}'s item factors changed after its approximate "
                "index was built (the model was retrained or given new factors): call "
                "model.approximate() again"
            )

    # ---- persistence ------------------------------------------------------------------------
    def save(self, path) -> None:
        """Saves the recommender to the directory ``path``: the model (``path/model``, as
        :meth:`~tacitrec.RecommenderBase.save_dir` writes it), each built index as a faiss
        file and ``approximate.json`` (the index parameters and the factors' fingerprint). The
        directory is written beside ``path`` and renamed into place; an existing recommender
        directory at ``path`` is replaced, anything else there is refused. ``path`` is a
        directory name: a file object raises TypeError."""
        faiss = _faiss()

        def write(tmp: str) -> None:
            self.model.save_dir(os.path.join(tmp, "model"))
            for kind, index in self._indexes.items():
                faiss.write_index(index, os.path.join(tmp, _INDEX_FILES[kind]))
            manifest = {
                "format": _FORMAT,
                "format_version": _FORMAT_VERSION,
                "params": {k: v for k, v in self.get_params().items() if k != "num_threads"},
                "indexes": sorted(self._indexes),
                "fingerprint": self._fingerprint,
                "faiss": faiss.__version__,
            }
            with open(os.path.join(tmp, _MANIFEST), "w", encoding="utf-8") as f:
                json.dump(manifest, f, indent=1)

        _write_dir(path, _MANIFEST, "a saved ApproximateRecommender", write)

    @classmethod
    def load(cls, path, mmap: bool = True, num_threads: Optional[int] = None):
        """Opens a directory written by :meth:`save`. With ``mmap`` (the default) the model's
        arrays and the indexes are memory-mapped read-only, so the processes of one machine
        share them; an index not saved (``similar_items`` never used) is built on first use.
        Raises ModelFormatError when the directory is not a saved recommender or its model's
        item factors are not the ones its index was built from."""
        from .base import RecommenderBase

        path = _dir_path(path, "a saved ApproximateRecommender")
        manifest_path = os.path.join(path, _MANIFEST)
        if not os.path.isfile(manifest_path):
            raise ModelFormatError(
                f"{path!r} is not a saved ApproximateRecommender (no {_MANIFEST})"
            )
        try:
            with open(manifest_path, encoding="utf-8") as f:
                meta = json.load(f)
            if meta.get("format") != _FORMAT:
                raise ValueError("not an approximate-index manifest")
            version = meta.get("format_version")
            params = dict(meta["params"])
            kinds = list(meta["indexes"])
            fingerprint = meta["fingerprint"]
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise ModelFormatError(f"{manifest_path!r} is not a valid manifest ({e})") from e
        _check_format_version(version, _FORMAT_VERSION, repr(path))
        model = RecommenderBase.load_dir(os.path.join(path, "model"), mmap=mmap)
        if not isinstance(model, MatrixFactorizationBase):
            raise ModelFormatError(f"{path!r} holds a {type(model).__name__}, not a factor model")
        if model.item_factors is None or _fingerprint(model.item_factors) != fingerprint:
            raise ModelFormatError(
                f"the model saved in {path!r} does not have the item factors its index was "
                "built from"
            )
        indexes = {}
        for kind in kinds:
            if kind not in _INDEX_FILES:
                raise ModelFormatError(f"{manifest_path!r} names an unknown index {kind!r}")
            indexes[kind] = _saved_index(os.path.join(path, _INDEX_FILES[kind]), mmap)
            if indexes[kind].ntotal != model._shape()[1]:
                raise ModelFormatError(
                    f"the {kind} index of {path!r} holds {indexes[kind].ntotal} items; the model "
                    f"has {model._shape()[1]}"
                )
        try:
            return cls(model, num_threads=num_threads, **params, _indexes=indexes)
        except (TypeError, ValueError) as e:
            raise ModelFormatError(f"the saved index parameters are invalid ({e})") from e

    def __getstate__(self):
        """Pickling keeps the model and the indexes (faiss's serialised form, a uint8 array)."""
        faiss = _faiss()
        state = {k: v for k, v in self.__dict__.items() if k not in ("_lock", "_indexes")}
        state["_indexes"] = {kind: faiss.serialize_index(ix) for kind, ix in self._indexes.items()}
        return state

    def __setstate__(self, state) -> None:
        faiss = _faiss()
        indexes = state.pop("_indexes")
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._indexes = {kind: faiss.deserialize_index(data) for kind, data in indexes.items()}

    # ---- serving ----------------------------------------------------------------------------
    def recommend(
        self,
        userid,
        user_items=None,
        N: int = 10,
        filter_already_liked_items: bool = True,
        filter_items=None,
        recalculate_user: bool = False,
        items=None,
        *,
        ef_search: Optional[int] = None,
    ) -> Tuple[np.ndarray, np.ndarray]:
        """The model's :meth:`~tacitrec.RecommenderBase.recommend`, approximately: the same
        arguments, validation and result shapes (``N' = min(N, candidate items)`` per row,
        padded with -1 / -inf only where the user has fewer candidates left); which items come
        back is approximate (recall measured, not promised), their scores are exact. ``items``
        is answered exactly. ``ef_search`` overrides the recommender's for this call."""
        model = self.model
        ef = self.ef_search if ef_search is None else _check_int(ef_search, "ef_search", 1, 1 << 20)
        with _model_lock(model).reading("ApproximateRecommender.recommend"):
            self._check_fresh()

            def run(users, liked, N, *, filter_liked, filter_items, items, recalculate_user):
                queries = model._user_vectors(users, liked, recalculate_user)
                liked = liked if filter_liked else None
                if items is not None:
                    return self._exact_dot(queries, N, liked, filter_items, items)
                return self._search("recommend", queries, N, liked, filter_items, ef)

            return model._checked_recommend(
                model._shape(),
                run,
                userid,
                user_items,
                N,
                filter_already_liked_items=filter_already_liked_items,
                filter_items=filter_items,
                recalculate_user=recalculate_user,
                items=items,
            )

    def similar_items(
        self,
        itemid,
        N: int = 10,
        recalculate_item: bool = False,
        item_users=None,
        filter_items=None,
        items=None,
        *,
        ef_search: Optional[int] = None,
    ) -> Tuple[np.ndarray, np.ndarray]:
        """The model's :meth:`~tacitrec.MatrixFactorizationBase.similar_items` (cosine of the
        latent item factors), approximately, from the cosine index (built on the first call
        unless ``similar_items=True`` was given): the same arguments and result shapes, ``N'``
        results per row after ``filter_items``; which items come back is approximate, their
        scores exact. ``items`` is answered exactly."""
        model = self.model
        ef = self.ef_search if ef_search is None else _check_int(ef_search, "ef_search", 1, 1 << 20)
        with _model_lock(model).reading("ApproximateRecommender.similar_items"):
            self._check_fresh()
            _, n_items = model._shape()
            N = check_count(N, "N")
            if recalculate_item:
                vectors = model.recalculate_item(itemid, item_users)
                scalar = vectors.ndim == 1
                queries = _normalize_rows(model._latent(np.atleast_2d(vectors)))
            else:
                ids, scalar = check_ids(itemid, n_items, "itemid", "items")
                queries = _normalize_rows(model._similarity_factors("item")[ids])
            filter_ids = check_id_list(filter_items, n_items, "filter_items", "items")
            subset = check_id_list(items, n_items, "items", "items")
            if subset is not None:
                res = model._cosine_top("item", queries, N, subset, filter_ids, self.num_threads)
            else:
                res = self._search("similar_items", queries, N, None, filter_ids, ef)
            return (res[0][0], res[1][0]) if scalar else res

    # ---- original ids and data frames --------------------------------------------------------
    # the model's ids and shape, so that the frame methods and tacitrec.distributed's engines
    # serve this recommender as they serve the model
    _scores_from_user_items = False

    def _shape(self):
        return self.model._shape()

    @property
    def user_ids_(self) -> Optional[np.ndarray]:
        return self.model.user_ids_

    @property
    def item_ids_(self) -> Optional[np.ndarray]:
        return self.model.item_ids_

    @property
    def _dataset(self):
        return getattr(self.model, "_dataset", None)

    def recommend_frame(
        self,
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
        """The model's :meth:`~tacitrec.RecommenderBase.recommend_frame` (a frame of ``user_id,
        item_id, rank, score`` in original ids), answered by :meth:`recommend`: which items come
        back is approximate, their scores exact."""
        from .frames import recommend_frame

        return recommend_frame(
            self,
            users,
            N,
            filter_already_liked_items,
            filter_items,
            items,
            user_items=user_items,
            unknown=unknown,
            frame=frame,
        )

    def similar_items_frame(self, items=None, N: int = 10, frame: Optional[str] = None):
        """The model's :meth:`~tacitrec.RecommenderBase.similar_items_frame`, answered by
        :meth:`similar_items` (approximate membership, exact scores)."""
        from .frames import similar_items_frame

        return similar_items_frame(self, items, N, frame)

    # ---- the search -------------------------------------------------------------------------
    def _items(self) -> np.ndarray:
        factors = self.model.item_factors
        assert factors is not None  # checked by _check_fresh at every call
        return factors

    def _exact_dot(self, queries, N, liked, filter_items, items):
        return _core.topk_dot(
            queries,
            self._items(),
            N,
            liked,
            items=items,
            filter_items=filter_items,
            num_threads=self.num_threads,
        )

    def _exact(self, kind, queries, N, liked, filter_items):
        if kind == "recommend":
            return self._exact_dot(queries, N, liked, filter_items, None)
        return self.model._cosine_top("item", queries, N, None, filter_items, self.num_threads)

    def _rescore(self, kind, queries, cand):
        """Exact float32 scores of the candidates ``cand`` (rows x k item ids) for each query."""
        if kind == "recommend":
            vectors = self._items()[cand]
        else:
            latent = self.model._similarity_factors("item")
            vectors = _normalize_rows(latent[cand.reshape(-1)]).reshape(*cand.shape, -1)
        with np.errstate(over="ignore", invalid="ignore"):  # checked just below
            scores = np.einsum("rkf,rf->rk", vectors, queries, dtype=np.float32)
        check_scores_finite(scores)  # as the exact path: never rank inf or NaN
        return scores

    def _search(self, kind, queries, N, liked, filter_items, ef):
        """Top ``N'`` rows of ids and scores for ``queries``, with ``liked`` (a Csr, one row per
        query, or None) and ``filter_items`` (int32 ids or None) removed."""
        _, n_items = self.model._shape()
        banned = None
        n_banned = 0
        if filter_items is not None and len(filter_items):
            banned = np.zeros(n_items, dtype=bool)
            banned[filter_items] = True
            n_banned = int(banned.sum())
        width = min(N, n_items - n_banned)
        n = len(queries)
        out = (
            np.full((n, width), -1, dtype=np.int32),
            np.full((n, width), -np.inf, dtype=np.float32),
        )
        if width == 0 or n == 0:
            return out
        index = self._index(kind)
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        n_liked = np.zeros(n, dtype=np.int64) if liked is None else np.diff(liked.indptr)
        # The first search asks for 2 N' candidates (N' when nothing is filtered). A row short
        # of N' asks again for N' plus all its liked items plus twice as many filtered items as
        # the last search asked for candidates (at least twice as many candidates), capped at
        # ``enough``, the count that must leave N' even when every liked and filtered item is
        # among the candidates. Liked items are few and often near the top (they are what the
        # model learned), so the second search makes room for all of them; filter_items may
        # be long and mostly far from the top, so room for them grows by doubling.
        enough = np.minimum(width + n_liked + n_banned, n_items)
        want = np.minimum(width + np.minimum(n_liked + n_banned, width), enough)
        pending = np.arange(n)
        while pending.size:
            wide = want[pending] > self.exact_above
            if wide.any():
                self._exact_rows(kind, queries, pending[wide], width, liked, banned, out)
                pending = pending[~wide]
            # one search per power of two of the count asked, so that rows share searches
            k_rows = want[pending]
            buckets = np.minimum(1 << np.ceil(np.log2(k_rows)).astype(np.int64), n_items)
            short = [pending[:0]]
            for k in np.unique(buckets):
                group = pending[buckets == k]
                step = max(1, _CHUNK // int(k))  # about _CHUNK candidates at once
                for start in range(0, len(group), step):
                    rows = group[start : start + step]
                    short.append(
                        self._search_rows(
                            kind, index, queries, rows, int(k), ef, liked, banned, width, out
                        )
                    )
                    again = short[-1]
                    want[again] = np.minimum(
                        enough[again],
                        np.maximum(2 * k, width + n_liked[again] + min(n_banned, 2 * k)),
                    )
            pending = np.concatenate(short)
        return out

    def _exact_rows(self, kind, queries, rows, width, liked, banned, out) -> None:
        sub_liked = None if liked is None else liked.take_rows(rows)
        filt = None if banned is None else np.flatnonzero(banned).astype(np.int32)
        out[0][rows], out[1][rows] = self._exact(kind, queries[rows], width, sub_liked, filt)

    def _search_rows(self, kind, index, queries, rows, k, ef, liked, banned, width, out):
        """Searches ``rows`` for ``k`` candidates each and writes the rows that keep at least
        ``width`` after filtering into ``out`` (ids, scores); rows the graph cannot serve in
        full (it returned fewer than ``k``, or ``k`` is the whole catalogue) are scored
        exactly. Returns the rows still short, to search wider."""
        _, n_items = self.model._shape()
        faiss = _faiss()
        params = faiss.SearchParametersHNSW(efSearch=max(ef, k))
        with _Threads(faiss, self.num_threads):
            _, keys = index.search(queries[rows], k, params=params)
        valid = keys >= 0  # faiss pads with -1 what it did not find
        counts = valid.sum(axis=1)
        cand = np.where(valid, keys, 0)
        if banned is not None:
            valid &= ~banned[cand]
        if liked is not None:
            valid &= ~_liked_mask(liked, rows, cand, n_items)
        n_valid = valid.sum(axis=1)
        served = n_valid >= width
        stuck = ~served & ((counts < k) | (k >= n_items))
        if stuck.any():
            self._exact_rows(kind, queries, rows[stuck], width, liked, banned, out)
        if served.any():
            d = np.flatnonzero(served)
            sc = self._rescore(kind, queries[rows[d]], cand[d])
            sc[~valid[d]] = -np.inf
            order = np.lexsort((cand[d], -sc), axis=-1)[:, :width]
            out[0][rows[d]] = np.take_along_axis(cand[d], order, axis=1)
            out[1][rows[d]] = np.take_along_axis(sc, order, axis=1)
        return rows[~served & ~stuck]


def _liked_mask(liked, rows: np.ndarray, cand: np.ndarray, n_items: int) -> np.ndarray:
    """Which candidates (``cand``: one row of item ids per entry of ``rows``) are in the
    corresponding rows of the CSR ``liked``, without a Python loop: (row, item) pairs are
    encoded as ``row * n_items + item`` and looked up in the sorted codes of the liked pairs."""
    sub = liked.take_rows(rows)
    lengths = np.diff(sub.indptr)
    if not sub.indices.size:
        return np.zeros(cand.shape, dtype=bool)
    codes = np.repeat(np.arange(len(rows), dtype=np.int64), lengths) * n_items + sub.indices
    codes.sort()  # sorted within rows already; this also covers unsorted input
    want = np.arange(len(rows), dtype=np.int64)[:, None] * n_items + cand
    pos = np.minimum(np.searchsorted(codes, want), codes.size - 1)
    return codes[pos] == want


def _saved_index(file: str, mmap: bool):
    faiss = _faiss()
    if not os.path.isfile(file):
        raise ModelFormatError(f"the index file {file!r} is missing")
    flags = faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY if mmap else 0
    try:
        return faiss.read_index(file, flags)
    except RuntimeError as e:  # faiss raises RuntimeError on a file it cannot read
        raise ModelFormatError(f"cannot read the index {file!r} ({e})") from e


def _index_bytes(index) -> int:
    """Bytes of an HNSW index: the stored vectors and the graph's links."""
    import faiss

    hnsw = index.hnsw
    storage = faiss.downcast_index(index.storage)
    return int(
        index.ntotal * storage.sa_code_size()
        + hnsw.neighbors.size() * 4
        + hnsw.offsets.size() * 8
        + hnsw.levels.size() * 4
    )

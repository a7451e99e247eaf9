"""EASE: an item x item linear model with a closed-form solution (Steck, "Embarrassingly Shallow
Autoencoders for Sparse Data", WWW 2019).

``fit(X)`` solves ``min_B ||X - X B||_F^2 + lambda ||B||_F^2`` subject to ``diag(B) = 0``, whose
solution is ``B = I - P diag(1 / diag(P))`` with ``P = (X^T X + lambda I)^-1``; ``recommend``
scores a user's row ``x_u`` as ``x_u B``. The fit is dense in the number of items (an
``n_items x n_items`` matrix; see :class:`EASERecommender` for the memory it needs); with
``sparse_k`` the model keeps only the largest entries of every column of ``B``, a sparse matrix.
"""

from __future__ import annotations

import time
from typing import Dict, Optional, Tuple

import numpy as np
from tqdm.auto import tqdm

import scipy.sparse as sp

from . import _core
from ._validation import (
    available_memory,
    Csr,
    ValidatedOnce,
    as_csr,
    as_state_array,
    as_state_csr,
    csr_state,
    check_count,
)
from .base import RecommenderBase
from .exceptions import ModelFormatError, NotFittedError


def _gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB"


def _dtype_name(dtype) -> str:
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in ("float32", "float64"):
        raise ValueError(f"dtype must be numpy.float32 or numpy.float64, got {dtype!r}")
    return name


class EASERecommender(RecommenderBase):
    """EASE (Steck 2019): ``B = I - P diag(1 / diag(P))``, ``P = (X^T X + lambda I)^-1``, scores
    ``x_u B``.

    Parameters
    ----------
    regularization : float
        ``lambda``, added to the diagonal of the Gram matrix ``X^T X``. Steck's setting for
        MovieLens-20M, Netflix and the Million Song Data (0/1 data, 10k-40k items) is 500 (the
        default here). It scales with the counts in ``X^T X``; tune it on a validation split with
        :mod:`tacitrec.model_selection` (data with far fewer interactions per item wants less;
        benches/compare/RESULTS.md has a MovieLens-100K search).
    dtype : numpy.float32 or numpy.float64
        Precision of the factorisation (the weights are stored as float32 either way). float32
        is twice as fast and needs half the memory; float64 is for very small ``regularization``,
        where float32 can fail to factorise (a ValueError says so).
    sparse_k : int or None
        Keep only the ``sparse_k`` entries of largest magnitude of every column of ``B`` (ties
        to the lower item id; zeros are never kept) and store ``B`` as a sparse matrix:
        ``n_items x sparse_k`` entries instead of ``n_items^2``, and scoring reads only the rows
        of a user's items (the kNN models' sparse scorer). Column ``j`` holds the weights that
        predict item ``j``, so each item keeps the ``sparse_k`` items that predict it most
        strongly. Magnitude, not value: EASE's negative weights carry much of its accuracy
        (Steck 2019 reports a clear loss when ``B`` is constrained to be non-negative), so
        they are kept like positive ones. The fit itself is unchanged (still dense, with the
        memory below); only the fitted model is sparse. None (default): the dense model.
    num_threads : int
        Threads for fit and recommend (0 = all cores).

    Memory: the fit holds two ``n_items x n_items`` matrices of ``dtype`` at its peak (float64:
    two float64 matrices), and the model one float32 matrix: 10,000 items need 0.8 GB to fit and
    0.4 GB to keep in float32; 40,000 items 12.8 GB to fit (6.4 GB each matrix). ``fit`` checks
    this against the available memory before allocating and raises MemoryError naming the bytes.

    Attributes
    ----------
    weights : numpy.ndarray, float32, items x items (scipy.sparse.csr_matrix with ``sparse_k``)
        ``B`` (``B[i, j]``: what item ``i`` in a user's row adds to item ``j``'s score;
        ``B[j, j] = 0``). Items nobody has in the training data get zero rows and columns.

    ``recommend`` scores each user from its ``user_items`` row (values as given; Steck uses 0/1
    data), so users unseen at fit time need no refit. ``similar_items(i)`` ranks the items by
    ``B[i, :]`` (the item itself, whose weight is 0 by construction, is not returned).
    """

    _scores_from_user_items = True

    def __init__(
        self,
        regularization: float = 500.0,
        dtype=np.float32,
        num_threads: int = 0,
        sparse_k: Optional[int] = None,
    ):
        self.regularization = regularization
        self.dtype = dtype
        self.num_threads = num_threads
        self.sparse_k = sparse_k
        self._weights: Optional[np.ndarray] = None
        self._sparse: Optional[Csr] = None
        self._sparse_checked = ValidatedOnce(None)
        self._sparse_scipy: Optional[sp.csr_matrix] = None

    def _check_params(self) -> None:
        lam = self.regularization
        if isinstance(lam, (bool, np.bool_)) or not isinstance(lam, (int, float, np.number)):
            raise TypeError(f"regularization must be a number, got {type(lam).__name__}")
        if not (np.isfinite(lam) and lam > 0):
            raise ValueError(f"regularization must be a positive number, got {lam!r}")
        _dtype_name(self.dtype)
        if self.sparse_k is not None:
            check_count(self.sparse_k, "sparse_k")
        super()._check_params()

    def fit(self, user_items, show_progress: bool = True, callback=None) -> "EASERecommender":
        """Computes ``weights`` from ``user_items`` (users x items, any scipy sparse format).
        ``callback(0, elapsed_seconds, None)`` is called once when done (as kNN's)."""
        self._check_params()
        lam = self.regularization
        dtype = _dtype_name(self.dtype)
        threads = self._threads()
        X = as_csr(user_items, "user_items")
        n = X.shape[1]
        need = _core.ease_memory(n, dtype)
        available = available_memory()
        if need is None or (available is not None and need > available):
            have = "more than this platform can address" if need is None else _gb(need)
            raise MemoryError(
                f"EASERecommender needs {have} to fit {n:,} items (two {n:,} x {n:,} {dtype} "
                f"matrices of {_gb(n * n * np.dtype(dtype).itemsize)} each), but only "
                f"{_gb(available or 0)} of memory is available: reduce the item catalogue "
                "(e.g. drop the rarest items) or use a model whose memory grows with the "
                "interactions (BM25Recommender, RP3BetaRecommender, SpectralFilterRecommender)"
            )
        start = time.perf_counter()
        with tqdm(total=1, disable=not show_progress, desc="EASERecommender") as bar:
            weights = _core.ease_fit_weights(X, float(lam), dtype, threads)
            bar.update(1)
        if self.sparse_k is None:
            self._set_weights(weights, None)
        else:
            sparse = Csr(*_core.ease_sparsify(weights, int(self.sparse_k), threads))
            del weights
            self._set_weights(None, sparse)
        self.fit_seconds_ = time.perf_counter() - start
        if callback is not None:
            callback(0, self.fit_seconds_, None)
        return self

    def _set_weights(self, dense: Optional[np.ndarray], sparse: Optional[Csr]) -> None:
        self._sparse_checked = ValidatedOnce(sparse)  # the model's own read-only copy
        self._weights, self._sparse, self._sparse_scipy = dense, self._sparse_checked.csr, None

    @property
    def weights(self):
        """``B``: a float32 array, or with ``sparse_k`` a read-only scipy.sparse.csr_matrix."""
        if self._sparse is None:
            return self._weights
        if self._sparse_scipy is None:
            s = self._sparse
            m = sp.csr_matrix((s.data, s.indices, s.indptr), shape=s.shape, copy=False)
            for a in (m.data, m.indices, m.indptr):
                a.flags.writeable = False
            self._sparse_scipy = m
        return self._sparse_scipy

    def _shape(self) -> Tuple[None, int]:
        if self._sparse is not None:
            return None, self._sparse.shape[0]
        if self._weights is None:
            raise NotFittedError("EASERecommender is not fitted: call fit(user_items)")
        # Scores come from the user_items rows passed in, so any user id is servable.
        return None, self._weights.shape[0]

    def _score(self, queries, N, filter_liked, *, items, filter_items):
        """Top ``N`` of ``x B`` for the rows ``queries``, dense or sparse."""
        kw = dict(items=items, filter_items=filter_items, num_threads=self._threads())
        if self._sparse is None:
            assert self._weights is not None  # _shape() raised otherwise
            return _core.ease_recommend(queries, self._weights, N, filter_liked, **kw)
        return self._sparse_checked.run(
            lambda sparse, validated: _core.knn_recommend(
                queries, sparse, N, filter_liked, similarity_validated=validated, **kw
            )
        )

    def _recommend(
        self, userids, user_items, N, *, filter_liked, filter_items, items, recalculate_user
    ):
        return self._score(
            self._rows_to_score(user_items), N, filter_liked, items=items, filter_items=filter_items
        )

    def similar_items(
        self,
        itemid,
        N: int = 10,
        recalculate_item: bool = False,
        item_users=None,
        filter_items=None,
        items=None,
    ):
        """The items with the largest weights ``B[itemid, :]``, best first (``itemid`` scalar
        or array); the item itself is not returned (with ``sparse_k``, weights not kept count
        as 0). ``recalculate_item=True`` raises NotImplementedError (refit with the new item's
        interactions)."""
        if recalculate_item:
            raise NotImplementedError(
                "EASERecommender cannot recalculate items: refit with the new item's interactions"
            )
        return self._similar_from_rows(self._score, itemid, N, filter_items, items)

    def similar_users(
        self,
        userid,
        N: int = 10,
        filter_users=None,
        users=None,
        recalculate_user: bool = False,
        user_items=None,
    ):
        """Not available: EASE is an item x item model with no user representation."""
        raise NotImplementedError(
            "EASERecommender is an item-item model and has no user similarity"
        )

    def _get_state(self) -> Dict[str, np.ndarray]:
        _, n = self._shape()
        if self._sparse is not None:
            return {**csr_state("weights", self._sparse), "n_items": np.array(n)}
        assert self._weights is not None  # _shape() raised otherwise
        return {"weights": self._weights, "n_items": np.array(n)}

    def _set_state(self, state) -> None:
        n = int(as_state_array(state["n_items"], "n_items", np.int64, 0))
        if n < 0:
            raise ModelFormatError(f"the saved model has {n} items")
        if "weights" not in state:  # the sparse model
            self._set_weights(None, as_state_csr(state, "weights", "weights", (n, n)))
            return
        w = as_state_array(state["weights"], "weights", np.float32, 2)
        if w.shape != (n, n):
            raise ModelFormatError(
                f"the saved weights have shape {w.shape}, expected {n} x {n} "
                "(one row and column per item)"
            )
        self._set_weights(w, None)


__all__ = ["EASERecommender"]

"""EASE: an item x item linear model with a closed-form solution (Steck, "Embarrassingly Shallow
Autoencoders for Sparse Data", WWW 2019).

``fit(X)`` solves ``min_B ||X - X B||_F^2 + lambda ||B||_F^2`` subject to ``diag(B) = 0``, whose
solution is ``B = I - P diag(1 / diag(P))`` with ``P = (X^T X + lambda I)^-1``; ``recommend``
scores a user's row ``x_u`` as ``x_u B``. The fit is dense in the number of items (an
``n_items x n_items`` matrix; see :class:`EASERecommender` for the memory it needs).
"""

from __future__ import annotations

import os
import time
from typing import Dict, Optional, Tuple

import numpy as np
from tqdm.auto import tqdm

from . import _core
from ._validation import as_csr, as_state_array, check_count, check_id_list, check_ids
from .base import RecommenderBase
from .exceptions import ModelFormatError, NotFittedError


def _available_memory() -> Optional[int]:
    """Bytes of memory available to a new allocation (Linux's MemAvailable, else the free physical
    pages), or None where the platform does not say."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


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
    num_threads : int
        Threads for fit and recommend (0 = all cores).

    Memory: the fit holds two ``n_items x n_items`` matrices of ``dtype`` at its peak (float64:
    two float64 matrices), and the model one float32 matrix: 10,000 items need 0.8 GB to fit and
    0.4 GB to keep in float32; 40,000 items 12.8 GB to fit (6.4 GB each matrix). ``fit`` checks
    this against the available memory before allocating and raises MemoryError naming the bytes.

    Attributes
    ----------
    weights : numpy.ndarray, float32, items x items
        ``B`` (``B[i, j]``: what item ``i`` in a user's row adds to item ``j``'s score;
        ``B[j, j] = 0``). Items nobody has in the training data get zero rows and columns.

    ``recommend`` scores each user from its ``user_items`` row (values as given; Steck uses 0/1
    data), so users unseen at fit time need no refit. ``similar_items(i)`` ranks the items by
    ``B[i, :]`` (the item itself, whose weight is 0 by construction, is not returned).
    """

    _scores_from_user_items = True

    def __init__(self, regularization: float = 500.0, dtype=np.float32, num_threads: int = 0):
        self.regularization = regularization
        self.dtype = dtype
        self.num_threads = num_threads
        self._weights: Optional[np.ndarray] = None

    def _check_params(self) -> None:
        lam = self.regularization
        if isinstance(lam, (bool, np.bool_)) or not isinstance(lam, (int, float, np.number)):
            raise TypeError(f"regularization must be a number, got {type(lam).__name__}")
        if not (np.isfinite(lam) and lam > 0):
            raise ValueError(f"regularization must be a positive number, got {lam!r}")
        _dtype_name(self.dtype)
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
        available = _available_memory()
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
        self._weights = weights
        self.fit_seconds_ = time.perf_counter() - start
        if callback is not None:
            callback(0, self.fit_seconds_, None)
        return self

    @property
    def weights(self) -> Optional[np.ndarray]:
        return self._weights

    def _shape(self) -> Tuple[None, int]:
        if self._weights is None:
            raise NotFittedError("EASERecommender is not fitted: call fit(user_items)")
        # Scores come from the user_items rows passed in, so any user id is servable.
        return None, self._weights.shape[0]

    def _recommend(
        self, userids, user_items, N, *, filter_liked, filter_items, items, recalculate_user
    ):
        assert self._weights is not None  # the caller's _shape() raised otherwise
        if user_items is None:
            raise ValueError(
                "user_items is required: EASERecommender scores items from each user's row "
                "(pass user_items[userid])"
            )
        return _core.ease_recommend(
            user_items,
            self._weights,
            N,
            filter_liked,
            items=items,
            filter_items=filter_items,
            num_threads=self._threads(),
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
        or array); the item itself is not returned. ``recalculate_item=True`` raises
        NotImplementedError (refit with the new item's interactions)."""
        if recalculate_item:
            raise NotImplementedError(
                "EASERecommender cannot recalculate items: refit with the new item's interactions"
            )
        _, n = self._shape()
        assert self._weights is not None  # _shape() raised otherwise
        ids, scalar = check_ids(itemid, n, "itemid", "items")
        N = check_count(N, "N")
        one_hot = (
            np.arange(len(ids) + 1, dtype=np.int64),
            ids,
            np.ones(len(ids), dtype=np.float32),
            (len(ids), n),
        )
        res = _core.ease_recommend(
            one_hot,
            self._weights,
            N,
            True,
            items=check_id_list(items, n, "items"),
            filter_items=check_id_list(filter_items, n, "filter_items"),
            num_threads=self._threads(),
        )
        return (res[0][0], res[1][0]) if scalar else res

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
        self._shape()
        assert self._weights is not None  # _shape() raised otherwise
        return {"weights": self._weights, "n_items": np.array(self._weights.shape[0])}

    def _set_state(self, state) -> None:
        n = int(as_state_array(state["n_items"], "n_items", np.int64, 0))
        w = as_state_array(state["weights"], "weights", np.float32, 2)
        if n < 0 or w.shape != (n, n):
            raise ModelFormatError(
                f"the saved weights have shape {w.shape}, expected {n} x {n} "
                "(one row and column per item)"
            )
        self._weights = w


__all__ = ["EASERecommender"]

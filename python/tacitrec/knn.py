"""Item-item nearest-neighbour recommenders (implicit 0.7's ``nearest_neighbours``, corrected).

``fit(user_items)`` computes an item x item similarity from the (weighted) item columns of
``user_items`` and keeps the ``K`` most similar items of every item, the item itself included.
``recommend`` scores item j for a user as ``sum over the user's items i of r_ui * S[i, j]``, with
the values of the ``user_items`` row passed at query time, so new users need no refit.

Differences from implicit 0.7:

* liked and filtered items are removed, never returned (implicit sets their score to 0 and can
  return them), and every row holds exactly ``N' = min(N, candidates)`` results (implicit can
  return fewer): items no neighbour reaches have score 0 and rank by id after positive scores;
* batch ``recommend`` runs in parallel in Rust (implicit loops in Python one user at a time);
* ``similarity`` is float32 (implicit stores float64); integer, float64 and any scipy sparse input
  is accepted without warnings;
* ``PearsonRecommender`` is new.

Weighting (users are the "terms", items the "documents"; N = number of items, df_u = number of
items user u has): ``idf_u = ln N - ln(1 + df_u)``; TF-IDF = ``sqrt(r) * idf_u`` then every item's
vector L2-normalised; BM25 = ``r (K1 + 1) / (K1 * len_i + r) * idf_u`` with
``len_i = (1 - B) + B * |i| / mean |i|`` (``|i|`` the item's total weight), not normalised.
"""

from __future__ import annotations

import time
from typing import Dict, Optional, Tuple

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from . import _core
from ._validation import (
    Csr,
    ValidatedOnce,
    all_finite,
    as_csr,
    as_state_array,
    as_state_csr,
    check_count,
    check_fits_in_memory,
    check_id_list,
    check_ids,
    csr_state,
)
from .base import RecommenderBase
from .exceptions import ModelFormatError, NotFittedError


class ItemItemRecommender(RecommenderBase):
    """Item-item kNN on raw dot products of the item columns.

    Parameters
    ----------
    K : int
        Neighbours kept per item (the item itself included).
    num_threads : int
        Threads for fit and recommend (0 = all cores).

    Attributes
    ----------
    similarity : scipy.sparse.csr_matrix, float32, items x items
        Row i holds the K most similar items of item i (ties go to the lower item id). Can be
        assigned (validated and copied).
    """

    _kind = "dot"

    _scores_from_user_items = True

    def __init__(self, K: int = 20, num_threads: int = 0):
        self.K = K
        self.num_threads = num_threads
        self._sim: Optional[Csr] = None
        self._sim_checked = ValidatedOnce(None)
        self._scipy: Optional[sp.csr_matrix] = None

    # ---- fitting ------------------------------------------------------------------------------
    def _check_params(self) -> None:
        super()._check_params()
        check_count(self.K, "K")

    def _weighting_args(self) -> Tuple[float, float]:
        return 1.2, 0.75

    def fit(self, user_items, show_progress: bool = True, callback=None) -> "ItemItemRecommender":
        """Computes ``similarity`` from ``user_items`` (users x items, any scipy sparse format).
        Refitting on data of another shape starts afresh. The fit is one parallel call into Rust;
        with ``show_progress`` a bar reports it when done. ``callback(0, elapsed_seconds, None)``
        is called once when it is done (the signature of ALS's per-iteration callback; implicit
        raises NotImplementedError for any callback)."""
        self._check_params()
        K = int(self.K)
        X = as_csr(user_items, "user_items")
        k1, b = self._weighting_args()
        self._check_fit_memory(
            X,
            _core.knn_fit_memory(X.nnz, X.shape[1], self._kind, self._threads()),
            "held again while the similarity is computed",
        )
        start = time.perf_counter()
        with tqdm(total=X.shape[1], disable=not show_progress, desc=type(self).__name__) as bar:
            sim = Csr(*_core.knn_fit(X, K, self._kind, k1, b, self._threads()))
            bar.update(X.shape[1])
        if not all_finite(sim.data):
            raise ValueError(
                f"the {type(self).__name__} similarity overflowed float32 (it sums products of "
                f"two user_items values, up to {float(np.abs(X.data).max()):.3g} here): scale "
                "user_items down, e.g. divide it by its largest value"
            )
        self._set_similarity(sim)
        self.fit_seconds_ = time.perf_counter() - start
        if callback is not None:
            callback(0, self.fit_seconds_, None)
        return self

    def _check_fit_memory(self, X: sp.csr_matrix, need: int, held: str) -> None:
        """MemoryError before the fit when what it holds at least, whatever the data's
        co-occurrences (``need`` bytes; ``held`` says what), exceeds the memory available: the
        similarity comes on top."""
        check_fits_in_memory(
            need,
            f"{type(self).__name__}.fit on {X.shape[0]:,} users x {X.shape[1]:,} items "
            f"({X.nnz:,} stored interactions, {held})",
            "fit on fewer interactions, or where more memory is available (a larger worker or "
            "container); check the matrix's shape too (ids used directly as column indices make "
            "it as wide as the largest id)",
        )

    def _set_similarity(self, sim: Optional[Csr]) -> None:
        self._sim_checked = ValidatedOnce(sim)  # the model's own read-only copy
        self._sim = self._sim_checked.csr
        self._scipy = None

    @property
    def similarity(self) -> Optional[sp.csr_matrix]:
        """The items x items similarity (float32 CSR), read-only: its arrays are the model's,
        which a kernel may be reading from another thread, so writing them would race with it
        (assign a new matrix instead, which is copied). They are validated by the first call
        only, not by every call (serving one user does not read the whole matrix): being the
        model's own copies, in memory NumPy cannot make writeable again, nothing can change
        them (memory-mapped arrays, which can, are validated by every call)."""
        if self._sim is None:
            return None
        if self._scipy is None:
            m = self._sim.to_scipy()
            for a in (m.data, m.indices, m.indptr):
                a.flags.writeable = False
            self._scipy = m
        return self._scipy

    @similarity.setter
    def similarity(self, value) -> None:
        if value is None:
            self._set_similarity(None)
            return
        m = as_csr(value, "similarity")
        if m.shape[0] != m.shape[1]:
            raise ValueError(f"similarity must be square (items x items), got shape {m.shape}")
        # own copies: the model must not share arrays with the caller
        self._set_similarity(Csr(m.indptr.copy(), m.indices.copy(), m.data.copy(), m.shape))

    # ---- serving ------------------------------------------------------------------------------
    def _shape(self):
        if self._sim is None:
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit(user_items)")
        # Scores come from the user_items rows passed in, so any user id is servable.
        return None, self._sim.shape[0]

    def _recommend(
        self, userids, user_items, N, *, filter_liked, filter_items, items, recalculate_user
    ):
        rows = self._rows_to_score(user_items)
        return self._sim_checked.run(
            lambda sim, validated: _core.knn_recommend(
                rows,
                sim,
                N,
                filter_liked,
                items=items,
                filter_items=filter_items,
                num_threads=self._threads(),
                similarity_validated=validated,
            )
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
        """The stored neighbours of ``itemid`` (scalar or array), best first: row ``itemid`` of
        ``similarity`` (the item itself included). Rows with fewer than ``N'`` neighbours among
        the candidates are padded with id -1 and score -inf. ``recalculate_item=True`` raises
        NotImplementedError (as implicit: the model keeps no user vectors to compare a new
        item's users with); ``item_users`` is ignored otherwise."""
        if recalculate_item:
            raise NotImplementedError(
                f"{type(self).__name__} cannot recalculate items: it keeps only the item-item "
                "similarity (refit with the new item's interactions)"
            )
        _, n_items = self._shape()
        ids, scalar = check_ids(itemid, n_items, "itemid", "items")
        N = check_count(N, "N")
        subset = check_id_list(items, n_items, "items")
        filtered = check_id_list(filter_items, n_items, "filter_items")
        res_ids, scores = self._sim_checked.run(
            lambda sim, validated: _core.knn_similar_items(
                ids,
                sim,
                N,
                items=subset,
                filter_items=filtered,
                num_threads=self._threads(),
                similarity_validated=validated,
            )
        )
        return (res_ids[0], scores[0]) if scalar else (res_ids, scores)

    def similar_users(
        self,
        userid,
        N: int = 10,
        filter_users=None,
        users=None,
        recalculate_user: bool = False,
        user_items=None,
    ):
        """Not available: an item-item model has no user representation (as in implicit)."""
        raise NotImplementedError(
            f"{type(self).__name__} is an item-item model and has no user similarity"
        )

    # ---- persistence --------------------------------------------------------------------------
    def _get_state(self) -> Dict[str, np.ndarray]:
        self._shape()
        s = self._sim
        assert s is not None  # _shape() raised otherwise
        return {**csr_state("sim", s), "n_items": np.array(s.shape[0])}

    def _set_state(self, state) -> None:
        n = int(as_state_array(state["n_items"], "n_items", np.int64, 0))
        if n < 0:
            raise ModelFormatError(f"the saved model has {n} items")
        self._set_similarity(as_state_csr(state, "sim", "similarity", (n, n)))

    def __getstate__(self):
        d = super().__getstate__()
        d["_scipy"] = None
        return d


class CosineRecommender(ItemItemRecommender):
    """Item-item kNN on cosine similarity (item columns L2-normalised)."""

    _kind = "cosine"


class TFIDFRecommender(ItemItemRecommender):
    """Item-item kNN on TF-IDF weighted, L2-normalised item columns."""

    _kind = "tfidf"


class BM25Recommender(ItemItemRecommender):
    """Item-item kNN on BM25 weighted item columns.

    Parameters
    ----------
    K : int
        Neighbours kept per item.
    K1, B : float
        BM25 saturation and length normalisation (``K1 >= 0``, ``0 <= B <= 1``).
    num_threads : int
        Threads for fit and recommend (0 = all cores).
    """

    _kind = "bm25"

    def __init__(self, K: int = 20, K1: float = 1.2, B: float = 0.75, num_threads: int = 0):
        super().__init__(K=K, num_threads=num_threads)
        self.K1 = K1
        self.B = B

    def _weighting_args(self) -> Tuple[float, float]:
        return float(self.K1), float(self.B)


class PearsonRecommender(ItemItemRecommender):
    """Item-item kNN on the Pearson correlation of the item columns over all users (absent
    interactions count as zeros).

    Computed from the sparse co-occurrence product and per-item sums and sums of squares, never
    by densifying or centring the matrix. Only items that share at least one user are candidate
    neighbours (an item pair without co-occurrence has correlation ``-s_i s_j / (n sd_i sd_j)``,
    slightly negative, never a useful neighbour). Items with zero variance get no neighbours.
    implicit has no Pearson model.
    """

    _kind = "pearson"


class RP3BetaRecommender(ItemItemRecommender):
    """RP3beta (Paudel et al., "Updatable, accurate, diverse, and scalable recommendations for
    interactive applications", TiiS 2017; the strong baseline of Dacrema et al., "Are we really
    making much progress?", RecSys 2019): item-item weights from a two-step random walk
    item -> user -> item, re-ranked by popularity.

    ``W[i, j] = sum_u P_iu^alpha P_uj^alpha / pop_j^beta`` (``j != i``), with ``P_uj = r_uj /
    sum_j r_uj`` (each user's row L1-normalised, values as given), ``P_iu = 1 / pop_i`` over the
    users of item ``i`` and ``pop_j`` the number of users with item ``j``; the ``K`` largest
    non-zero weights of every row are kept, then (``normalize_similarity``) each row divided by
    its sum. This is the formula of Dacrema et al.'s reference ``RP3betaRecommender`` (its
    defaults: ``alpha=1``, ``beta=0.6``, ``topK=100``, no normalisation; its ``min_rating`` and
    ``implicit`` options correspond to filtering or binarising ``user_items`` first).
    ``recommend`` scores ``r_u W`` from the ``user_items`` row, as every kNN model.

    Parameters
    ----------
    K : int
        Neighbours kept per item (the item itself is never one).
    alpha : float
        Exponent of the transition probabilities (>= 0).
    beta : float
        Popularity penalty: the weight of a walk to item ``j`` is divided by ``pop_j^beta``.
    normalize_similarity : bool
        Divide every row of the kept weights by its sum.
    num_threads : int
        Threads for fit and recommend (0 = all cores).
    """

    _kind = "rp3beta"

    _flag_params = ("normalize_similarity",)

    def __init__(
        self,
        K: int = 100,
        alpha: float = 1.0,
        beta: float = 0.6,
        normalize_similarity: bool = False,
        num_threads: int = 0,
    ):
        super().__init__(K=K, num_threads=num_threads)
        self.alpha = alpha
        self.beta = beta
        self.normalize_similarity = normalize_similarity

    def _check_params(self) -> None:
        super()._check_params()
        for name in ("alpha", "beta"):
            v = getattr(self, name)
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.number)):
                raise TypeError(f"{name} must be a number, got {type(v).__name__}")
            if not np.isfinite(v) or (name == "alpha" and v < 0):
                raise ValueError(
                    f"{name} must be a finite number{' >= 0' * (name == 'alpha')}, got {v!r}"
                )

    def fit(self, user_items, show_progress: bool = True, callback=None) -> "RP3BetaRecommender":
        """Computes ``similarity`` (the RP3beta weights) from ``user_items`` (users x items, any
        scipy sparse format, values >= 0). ``callback(0, elapsed_seconds, None)`` is called once
        when done."""
        self._check_params()
        K = int(self.K)
        X = as_csr(user_items, "user_items")
        if X.nnz and float(X.data.min()) < 0:
            raise ValueError(
                "user_items must hold values >= 0 (transition probabilities of "
                "RP3beta's random walk)"
            )
        self._check_fit_memory(
            X,
            _core.rp3beta_fit_memory(X.nnz, X.shape[0], X.shape[1], self._threads()),
            "their walk weights held twice while the similarity is computed",
        )
        start = time.perf_counter()
        with tqdm(total=X.shape[1], disable=not show_progress, desc=type(self).__name__) as bar:
            sim = _core.rp3beta_fit(
                X,
                K,
                float(self.alpha),
                float(self.beta),
                bool(self.normalize_similarity),
                self._threads(),
            )
            bar.update(X.shape[1])
        sim = Csr(*sim)
        if not all_finite(sim.data):
            raise ValueError(
                f"the RP3beta weights overflowed float32 at alpha={self.alpha}, "
                f"beta={self.beta} (pop_j^-beta or P^alpha beyond 3.4e38): use exponents nearer "
                "the paper's (alpha around 1, beta in [0, 1])"
            )
        self._set_similarity(sim)
        self.fit_seconds_ = time.perf_counter() - start
        if callback is not None:
            callback(0, self.fit_seconds_, None)
        return self


def _reweighted(X, scheme: str, K1: float = 100.0, B: float = 0.8) -> sp.csr_matrix:
    m = as_csr(X, "X")
    data = _core.weight(m, scheme, "rows", float(K1), float(B), 0)
    return sp.csr_matrix((data, m.indices, m.indptr), shape=m.shape)


def bm25_weight(X, K1: float = 100, B: float = 0.8) -> sp.csr_matrix:
    """BM25-weights the rows of ``X`` (rows are documents, columns terms; implicit's convention,
    e.g. ``bm25_weight(item_users)`` or ``bm25_weight(user_items.T).T``). Returns a float32 CSR of
    the same shape; values must be non-negative."""
    return _reweighted(X, "bm25", K1, B)


def tfidf_weight(X) -> sp.csr_matrix:
    """TF-IDF weights ``sqrt(x) * idf`` of the rows of ``X`` (rows are documents), not normalised.
    Returns a float32 CSR of the same shape; values must be non-negative."""
    return _reweighted(X, "tfidf")


def normalize(X) -> sp.csr_matrix:
    """Every row of ``X`` divided by its L2 norm (all-zero rows stay zero). Float32 CSR."""
    return _reweighted(X, "normalize")


__all__ = [
    "ItemItemRecommender",
    "CosineRecommender",
    "TFIDFRecommender",
    "BM25Recommender",
    "PearsonRecommender",
    "RP3BetaRecommender",
    "bm25_weight",
    "tfidf_weight",
    "normalize",
]

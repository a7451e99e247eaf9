"""``implicit.nearest_neighbours``: the item-item models and weighting functions.

Same models as :mod:`tacitrec.knn` (see there for the differences from implicit: exact top-K per
item, parallel fit and scoring, a float32 similarity). As implicit's: ``fit(weighted, ...)`` on
:class:`ItemItemRecommender` and ``fit(counts, ...)`` on the others (which subclass it), the
arguments ``show_progress`` and ``callback`` after it, ``load`` of implicit's own files (``K``
and the similarity as CSR parts; implicit's :class:`BM25Recommender` does not save ``K1`` and
``B``, so a file of it loads with the defaults, as in implicit), ``rank_items`` (deprecated).
Beside those of :mod:`._base`: ``fit(..., callback=...)`` calls the callback once when the
similarity is built (implicit raises NotImplementedError).

:func:`bm25_weight`, :func:`tfidf_weight` and :func:`normalize` return what implicit's return:
a ``scipy.sparse.coo_matrix`` of float64 values, computed as implicit computes them (NumPy, with
its formulas and dtypes). tacitrec's own :func:`tacitrec.knn.bm25_weight` and siblings return
float32 CSR from a Rust kernel and reject negative values. :func:`all_pairs_knn` is implicit's
helper under the same name, computed by the same kernel as ``fit``.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np
import scipy.sparse as sp

from ... import knn as _knn
from ..._validation import as_state_array, as_state_csr
from ...exceptions import ModelFormatError
from ._base import ImplicitModel


class _KNNModel(ImplicitModel):
    """implicit's kNN file format (``K`` and the similarity's CSR parts)."""

    _implicit_params: Tuple[str, ...] = ("K",)
    _implicit_arrays = ("shape", "data", "indptr", "indices")
    _implicit_required = "K"

    def _set_implicit_state(self, arrays, params) -> None:
        present = [k for k in self._implicit_arrays if k in arrays]
        if not present:
            return  # saved before fitting
        if len(present) < len(self._implicit_arrays):
            missing = [k for k in self._implicit_arrays if k not in arrays]
            raise ModelFormatError(
                f"it holds the similarity's {', '.join(present)} without its {', '.join(missing)}"
            )
        shape = as_state_array(arrays["shape"], "similarity shape", np.int64, 1)
        if shape.shape != (2,) or shape[0] != shape[1] or shape[0] < 0:
            raise ModelFormatError(
                f"the similarity's shape is {shape.tolist()}, expected items x items"
            )
        n = int(shape[0])
        sim = as_state_csr(
            {
                "sim_indptr": arrays["indptr"],
                "sim_indices": arrays["indices"],
                "sim_data": arrays["data"],
            },
            "sim",
            "similarity",
            (n, n),
        )
        # through the setter: canonical CSR (sorted, duplicates summed), float32, the model's own
        self.similarity = sim.to_scipy()


class _WeightedFit:
    def fit(self, weighted, show_progress: bool = True, callback=None):
        """Computes ``similarity`` from ``weighted`` (users x items; implicit's argument name),
        as :meth:`tacitrec.knn.ItemItemRecommender.fit`."""
        return self._implicit_fit(weighted, show_progress, callback)  # type: ignore[attr-defined]


class _CountsFit:
    def fit(self, counts, show_progress: bool = True, callback=None):
        """Weights ``counts`` (users x items; implicit's argument name) and computes
        ``similarity``, as tacitrec's class of the same name."""
        return self._implicit_fit(counts, show_progress, callback)  # type: ignore[attr-defined]


class ItemItemRecommender(_WeightedFit, _KNNModel, _knn.ItemItemRecommender):  # type: ignore[misc]  # implicit's signatures
    """implicit's ``ItemItemRecommender`` over :class:`tacitrec.knn.ItemItemRecommender`
    (the module docstring says what differs)."""


class CosineRecommender(_CountsFit, ItemItemRecommender, _knn.CosineRecommender):  # type: ignore[misc]  # implicit's signatures
    """implicit's ``CosineRecommender`` over :class:`tacitrec.knn.CosineRecommender`
    (the module docstring says what differs)."""


class TFIDFRecommender(_CountsFit, ItemItemRecommender, _knn.TFIDFRecommender):  # type: ignore[misc]  # implicit's signatures
    """implicit's ``TFIDFRecommender`` over :class:`tacitrec.knn.TFIDFRecommender`
    (the module docstring says what differs)."""


class BM25Recommender(_CountsFit, ItemItemRecommender, _knn.BM25Recommender):  # type: ignore[misc]  # implicit's signatures
    """implicit's ``BM25Recommender`` over :class:`tacitrec.knn.BM25Recommender`
    (the module docstring says what differs). implicit's files of it hold no ``K1`` / ``B``
    (a loaded model has the defaults, as implicit's ``load`` gives); a file that has them (0-d
    arrays of those names) sets them."""

    _implicit_params = ("K", "K1", "B")


def all_pairs_knn(users, K: int = 100, num_threads: int = 0, show_progress: bool = True):
    """The ``K`` largest entries of every row of ``users.T @ users`` (items x items CSR, the
    item itself included), as implicit's ``all_pairs_knn``: the similarity an
    :class:`ItemItemRecommender` fitted on ``users`` holds."""
    model = _knn.ItemItemRecommender(K=K, num_threads=num_threads)
    similarity = model.fit(users, show_progress=show_progress).similarity
    assert similarity is not None  # fitted
    return similarity.copy()


# ---- weighting: implicit's outputs (float64 COO) ------------------------------------------------
# Rows are documents, columns terms (implicit's convention: bm25_weight(item_users), or
# bm25_weight(user_items.T).T). The arithmetic keeps implicit's order and NumPy's dtypes, so the
# values are those implicit computes.


def _idf(X: sp.coo_matrix) -> np.ndarray:
    """``ln(rows) - ln(1 + documents holding the term)`` per column (term)."""
    return np.log(float(X.shape[0])) - np.log1p(np.bincount(X.col, minlength=X.shape[1]))


def tfidf_weight(X) -> sp.coo_matrix:
    """``sqrt(x) * idf(column)`` for every stored ``x`` of ``X`` (any matrix ``coo_matrix``
    takes), not normalised; a float64 ``coo_matrix``, as implicit's. ``X`` is not modified."""
    X = sp.coo_matrix(X)
    X.data = np.sqrt(X.data) * _idf(X)[X.col]
    return X


def normalize(X) -> sp.coo_matrix:
    """Every row of ``X`` divided by its L2 norm; a float64 ``coo_matrix``, as implicit's (a
    row whose stored values are all 0 becomes NaN there, as in implicit)."""
    X = sp.coo_matrix(X)
    row_norms = np.sqrt(np.bincount(X.row, X.data**2, minlength=X.shape[0]))
    X.data = X.data / row_norms[X.row]
    return X


def bm25_weight(X, K1: float = 100, B: float = 0.8) -> sp.coo_matrix:
    """BM25 weights of the rows of ``X``:
    ``x (K1 + 1) / (K1 * len_row + x) * idf(column)`` with
    ``len_row = (1 - B) + B * row_sum / mean(row_sum)``; a float64 ``coo_matrix``, as
    implicit's (defaults ``K1=100``, ``B=0.8`` as there). ``X`` is not modified."""
    X = sp.coo_matrix(X)
    row_sums = np.ravel(X.sum(axis=1))
    length_norm = (1.0 - B) + B * row_sums / row_sums.mean()
    X.data = X.data * (K1 + 1.0) / (K1 * length_norm[X.row] + X.data) * _idf(X)[X.col]
    return X


__all__ = [
    "ItemItemRecommender",
    "CosineRecommender",
    "TFIDFRecommender",
    "BM25Recommender",
    "all_pairs_knn",
    "bm25_weight",
    "tfidf_weight",
    "normalize",
]

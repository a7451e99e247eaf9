"""``implicit.nearest_neighbours``: the item-item models and weighting functions.

Same models as :mod:`tacitrec.knn` (see there for the differences from implicit: exact top-K per
item, parallel fit and scoring). Beside those of :mod:`._base`: ``fit(..., callback=...)`` calls
the callback once when the similarity is built (implicit raises NotImplementedError).
:func:`all_pairs_knn` is implicit's helper under the same name, computed by the same kernel as
``fit``.
"""

from __future__ import annotations

from ... import knn as _knn
from ._base import ImplicitModel
from ...knn import bm25_weight, normalize, tfidf_weight


class ItemItemRecommender(ImplicitModel, _knn.ItemItemRecommender):  # type: ignore[misc]  # implicit's signatures
    """implicit's ``ItemItemRecommender`` over :class:`tacitrec.knn.ItemItemRecommender`
    (the module docstring says what differs)."""


class CosineRecommender(ImplicitModel, _knn.CosineRecommender):  # type: ignore[misc]  # implicit's signatures
    """implicit's ``CosineRecommender`` over :class:`tacitrec.knn.CosineRecommender`
    (the module docstring says what differs)."""


class TFIDFRecommender(ImplicitModel, _knn.TFIDFRecommender):  # type: ignore[misc]  # implicit's signatures
    """implicit's ``TFIDFRecommender`` over :class:`tacitrec.knn.TFIDFRecommender`
    (the module docstring says what differs)."""


class BM25Recommender(ImplicitModel, _knn.BM25Recommender):  # type: ignore[misc]  # implicit's signatures
    """implicit's ``BM25Recommender`` over :class:`tacitrec.knn.BM25Recommender`
    (the module docstring says what differs)."""


def all_pairs_knn(users, K: int = 100, num_threads: int = 0, show_progress: bool = True):
    """The ``K`` largest entries of every row of ``users.T @ users`` (items x items CSR, the
    item itself included), as implicit's ``all_pairs_knn``: the similarity an
    :class:`ItemItemRecommender` fitted on ``users`` holds."""
    model = _knn.ItemItemRecommender(K=K, num_threads=num_threads)
    similarity = model.fit(users, show_progress=show_progress).similarity
    assert similarity is not None  # fitted
    return similarity.copy()


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

"""``lightfm.evaluation`` on tacitrec: per-user precision@k, recall@k, AUC and reciprocal rank.

Every metric is computed, as LightFM computes it, from the model's ``predict_rank``: the rank of
each test interaction among the items that are not training items of the user (0 is the top,
ties pessimistic). This module only maps the arguments and aggregates the ranks per user with
NumPy; the ranks come from the model (tacitrec's batched scoring for :class:`LightFM`; any object
with LightFM's ``predict_rank`` works, tacitrec's own :class:`tacitrec.LightFM` included).

Common to the four functions (LightFM's signatures):

* ``test_interactions`` / ``train_interactions``: sparse users x items matrices; every stored
  entry of the test matrix is a positive (duplicates of a COO matrix count once), every stored
  entry of the train matrix is excluded from the ranking;
* ``preserve_rows=False`` returns one value per user with at least one test interaction, in user
  order; ``True`` one per user;
* ``check_intersections=True`` raises ValueError when the two matrices share an entry;
* ``num_threads``: as the model's ``predict_rank`` (tacitrec: 0 means all cores, where LightFM
  raises ValueError);
* the result is a float32 array.
"""

from __future__ import annotations

import numpy as np

from ..._validation import check_count, check_threads
from ._convert import integral
from ._errors import lightfm_errors

__all__ = ["precision_at_k", "recall_at_k", "auc_score", "reciprocal_rank"]


def _ranks(
    model,
    test_interactions,
    train_interactions,
    user_features,
    item_features,
    num_threads,
    check_intersections,
):
    """The model's ranks as a CSR matrix with sorted indices, and its number of entries per
    user."""
    num_threads = integral(num_threads)
    with lightfm_errors():
        check_threads(num_threads)
        ranks = model.predict_rank(
            test_interactions,
            train_interactions=train_interactions,
            user_features=user_features,
            item_features=item_features,
            num_threads=num_threads,
            check_intersections=check_intersections,
        )
    ranks = ranks.tocsr()
    return ranks, np.diff(ranks.indptr)


def _per_user(values: np.ndarray, counts: np.ndarray, preserve_rows: bool) -> np.ndarray:
    values = np.asarray(values, dtype=np.float32)
    return values if preserve_rows else values[counts > 0]


def _hits_at_k(ranks, counts, k) -> np.ndarray:
    rows = np.repeat(np.arange(ranks.shape[0]), counts)
    return np.bincount(rows, weights=ranks.data < k, minlength=ranks.shape[0])


def precision_at_k(
    model,
    test_interactions,
    train_interactions=None,
    k=10,
    user_features=None,
    item_features=None,
    preserve_rows=False,
    num_threads=1,
    check_intersections=True,
) -> np.ndarray:
    """Per user, the share of the top ``k`` positions held by test interactions: (test items
    ranked below ``k``) / ``k``, as LightFM. A user without test interactions scores 0 (with
    ``preserve_rows=True``). Differs from LightFM only in rejecting ``k < 1`` (ValueError;
    LightFM divides by zero)."""
    k = check_count(integral(k), "k")
    ranks, counts = _ranks(
        model,
        test_interactions,
        train_interactions,
        user_features,
        item_features,
        num_threads,
        check_intersections,
    )
    return _per_user(_hits_at_k(ranks, counts, k) / k, counts, preserve_rows)


def recall_at_k(
    model,
    test_interactions,
    train_interactions=None,
    k=10,
    user_features=None,
    item_features=None,
    preserve_rows=False,
    num_threads=1,
    check_intersections=True,
) -> np.ndarray:
    """Per user, the share of the test interactions ranked in the top ``k``, as LightFM.

    Differs from LightFM: a user without test interactions (kept by ``preserve_rows=True``)
    scores 0, as LightFM's documentation says (its code divides 0 by 0 and returns NaN, with a
    warning); the result is float32 like the other metrics (LightFM's is float64); ``k < 1``
    raises ValueError."""
    k = check_count(integral(k), "k")
    ranks, counts = _ranks(
        model,
        test_interactions,
        train_interactions,
        user_features,
        item_features,
        num_threads,
        check_intersections,
    )
    hits = _hits_at_k(ranks, counts, k)
    recall = np.divide(hits, counts, out=np.zeros(len(counts)), where=counts > 0)
    return _per_user(recall, counts, preserve_rows)


def auc_score(
    model,
    test_interactions,
    train_interactions=None,
    user_features=None,
    item_features=None,
    preserve_rows=False,
    num_threads=1,
    check_intersections=True,
) -> np.ndarray:
    """Per user, the ROC AUC of the test items against the negatives (the items that are neither
    test nor training items of the user), computed from the ranks as LightFM does: with the
    user's test items sorted by rank, the i-th (from 0) contributes ``1 - max(rank - i, 0) /
    negatives``, and the contributions are averaged. Exact without ties; ties count against
    the test item. A user without test interactions scores 0.5, as in LightFM.

    Differs from LightFM where LightFM's value is not an AUC: a user with no negatives scores
    0.5 (one class only; LightFM divides by zero and returns NaN), and the negatives are counted
    once when test and training interactions overlap (``check_intersections=False``; LightFM
    subtracts the overlap twice, which can make the count zero or negative)."""
    ranks, counts = _ranks(
        model,
        test_interactions,
        train_interactions,
        user_features,
        item_features,
        num_threads,
        check_intersections,
    )
    n_users, n_items = ranks.shape
    excluded = counts.astype(np.int64)
    if train_interactions is not None:
        train = train_interactions.tocsr()
        # training items that are not also test items (stored entries, as predict_rank)
        train_only = train.getnnz(axis=1) - _overlap(ranks, train)
        excluded = excluded + train_only
    negatives = n_items - excluded
    rows = np.repeat(np.arange(n_users), counts)
    order = np.lexsort((ranks.data, rows))  # each user's test items by increasing rank
    position = np.arange(len(order)) - np.repeat(ranks.indptr[:-1], counts)
    adjusted = np.maximum(ranks.data[order].astype(np.float64) - position, 0.0)
    safe = np.maximum(negatives, 1)[rows]
    total = np.bincount(rows, weights=1.0 - adjusted / safe, minlength=n_users)
    auc = np.full(n_users, 0.5)
    scored = (counts > 0) & (negatives > 0)
    auc[scored] = total[scored] / counts[scored]
    return _per_user(auc, counts, preserve_rows)


def _overlap(ranks, train) -> np.ndarray:
    """Per user, the test entries that are stored entries of ``train`` too."""
    pattern = ranks.copy()
    pattern.data = np.ones_like(pattern.data)
    other = train.copy()
    other.sum_duplicates()
    other.data = np.ones_like(other.data, dtype=np.float32)
    return np.asarray(pattern.multiply(other).getnnz(axis=1)).ravel()


def reciprocal_rank(
    model,
    test_interactions,
    train_interactions=None,
    user_features=None,
    item_features=None,
    preserve_rows=False,
    num_threads=1,
    check_intersections=True,
) -> np.ndarray:
    """Per user, ``1 / (1 + rank)`` of the best-ranked test interaction, as LightFM; 0 for a user
    without test interactions. Identical to LightFM's."""
    ranks, counts = _ranks(
        model,
        test_interactions,
        train_interactions,
        user_features,
        item_features,
        num_threads,
        check_intersections,
    )
    best = np.full(ranks.shape[0], np.inf)
    rows = np.repeat(np.arange(ranks.shape[0]), counts)
    np.minimum.at(best, rows, ranks.data)
    return _per_user(np.where(counts > 0, 1.0 / (best + 1.0), 0.0), counts, preserve_rows)

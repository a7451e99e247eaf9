"""``implicit.evaluation``: splits and ranking metrics with implicit 0.7's signatures and
definitions, computed by :mod:`tacitrec.evaluation`'s kernel.

Differences from implicit:

* ``precision_at_k`` and the ``"precision"`` of :func:`ranking_metrics_at_k` are implicit's
  definition (total hits / sum over users of min(K, test items)), kept so that numbers stay
  comparable after migrating; it is a truncated recall rather than a precision.
  :func:`tacitrec.evaluation.precision_at_k` is the true precision (hits / K);
* the AUC does not count padded slots as misses where K exceeds a user's candidate items
  (implicit's AUC can go negative there);
* :func:`train_test_split` puts exactly ``round(train_percentage * nnz)`` interactions in train
  (implicit draws each independently); the same ``random_state`` gives the same split.
"""

from __future__ import annotations

from typing import Dict

from ... import evaluation as _ev
from ...evaluation import leave_k_out_split, train_test_split


def ranking_metrics_at_k(
    model,
    train_user_items,
    test_user_items,
    K: int = 10,
    show_progress: bool = True,
    num_threads: int = 1,
) -> Dict[str, float]:
    """``{"precision", "map", "ndcg", "auc"}`` at ``K``, as implicit (see the module docstring
    for implicit's "precision")."""
    m = _ev.ranking_metrics_at_k(
        model, train_user_items, test_user_items, K, show_progress, num_threads
    )
    return {
        "precision": m["implicit_precision"],
        "map": m["map"],
        "ndcg": m["ndcg"],
        "auc": m["auc"],
    }


def precision_at_k(
    model,
    train_user_items,
    test_user_items,
    K: int = 10,
    show_progress: bool = True,
    num_threads: int = 1,
) -> float:
    """implicit's "precision" at K: total hits / sum over users of min(K, test items)."""
    return ranking_metrics_at_k(
        model, train_user_items, test_user_items, K, show_progress, num_threads
    )["precision"]


def mean_average_precision_at_k(
    model,
    train_user_items,
    test_user_items,
    K: int = 10,
    show_progress: bool = True,
    num_threads: int = 1,
) -> float:
    """MAP at K, normalised by min(K, test items) per user, as implicit."""
    return ranking_metrics_at_k(
        model, train_user_items, test_user_items, K, show_progress, num_threads
    )["map"]


def ndcg_at_k(
    model,
    train_user_items,
    test_user_items,
    K: int = 10,
    show_progress: bool = True,
    num_threads: int = 1,
) -> float:
    """NDCG at K with binary relevance, as implicit."""
    return ranking_metrics_at_k(
        model, train_user_items, test_user_items, K, show_progress, num_threads
    )["ndcg"]


def AUC_at_k(
    model,
    train_user_items,
    test_user_items,
    K: int = 10,
    show_progress: bool = True,
    num_threads: int = 1,
) -> float:
    """implicit's AUC truncated at K (without its padding defect)."""
    return ranking_metrics_at_k(
        model, train_user_items, test_user_items, K, show_progress, num_threads
    )["auc"]


__all__ = [
    "train_test_split",
    "leave_k_out_split",
    "ranking_metrics_at_k",
    "precision_at_k",
    "mean_average_precision_at_k",
    "ndcg_at_k",
    "AUC_at_k",
]

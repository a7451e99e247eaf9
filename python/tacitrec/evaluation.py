"""Train/test splits and ranking metrics.

Metric definitions (per user with at least one test item, then averaged over those users; the
model ranks all items except the user's training items):

* ``precision``: hits in the top K / K
* ``recall``: hits in the top K / number of test items
* ``map``: average precision at K, normalised by min(K, number of test items)
* ``ndcg``: DCG at K / ideal DCG at K (binary relevance, log2 discount)
* ``auc``: implicit 0.7's AUC truncated at K (items beyond K are assumed to rank half-way).
  Where K exceeds a user's candidate items, the padded slots hold no item and are not counted
  as misses (implicit counts them, which makes its AUC meaningless, even negative, there)
* ``mrr``: 1 / rank of the first hit in the top K (0 without one)
* ``hit_rate``: share of users with at least one hit in the top K
* ``implicit_precision``: total hits / sum over users of min(K, number of test items). This is
  the value implicit 0.7 reports as "precision"; it is really a micro-averaged, truncated recall
  (R-precision-like) and is larger than the true precision when users have fewer than K test
  items. Use it to compare with numbers produced by implicit.

The per-user work runs in Rust, in parallel over users, and does not depend on the thread count.
"""

from __future__ import annotations

from typing import Any, Dict, Tuple

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from . import _core
from .base import RecommenderBase
from ._validation import (
    as_csr,
    check_count,
    check_fraction,
    check_ids,
    check_random_state,
    check_sparse_arrays,
    check_threads,
)

_BATCH_USERS = 4096


def _canonical_coo(ratings, name: str, finite: bool = False):
    """Row, column and value arrays of ``ratings`` with duplicates summed, in row-major order,
    without modifying the input; values keep their dtype. ``finite``: NaN or infinite values
    raise ValueError naming ``name``."""
    if not sp.issparse(ratings) or ratings.ndim != 2:
        raise TypeError(f"{name} must be a 2-D scipy.sparse matrix, got {type(ratings).__name__}")
    check_sparse_arrays(ratings, name)
    m = sp.csr_matrix(ratings, copy=True)
    m.sum_duplicates()
    if finite and m.dtype.kind in "fc" and not np.isfinite(m.data).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    return m, rows


def _csr(shape, rows, cols, data) -> sp.csr_matrix:
    out = sp.csr_matrix((data, (rows, cols)), shape=shape, dtype=data.dtype)
    out.sort_indices()
    return out


def _split(m, rows, test, original=None) -> Tuple[sp.csr_matrix, sp.csr_matrix]:
    """``(rest, held)``: the stored interactions of the canonical ``m`` (and their ``rows``, from
    :func:`_canonical_coo`) outside and inside the boolean mask ``test``, as CSR matrices of its
    shape and dtype. When ``original`` (the matrix ``m`` was made from) stores some pair more
    than once (raw events), ``rest`` keeps its entries as stored, in their order, for the pairs
    not held (LightFM trains every stored entry; the other models add them up as before); a
    pair is held or kept with all its copies, and ``held`` has them summed."""
    keep = ~test
    held = _csr(m.shape, rows[test], m.indices[test], m.data[test])
    if original is None or original.nnz == m.nnz:
        return _csr(m.shape, rows[keep], m.indices[keep], m.data[keep]), held
    raw = original.tocoo()
    r, c = np.asarray(raw.row, np.int64), np.asarray(raw.col, np.int64)
    n_cols = np.int64(m.shape[1])
    kept = ~np.isin(r * n_cols + c, rows[test].astype(np.int64) * n_cols + m.indices[test])
    order = np.lexsort((c[kept], r[kept]))  # row-major; a pair's copies in their stored order
    r, c, v = r[kept][order], c[kept][order], np.asarray(raw.data)[kept][order]
    indptr = np.zeros(m.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(r, minlength=m.shape[0]), out=indptr[1:])
    rest = sp.csr_matrix(
        (v.astype(m.dtype, copy=False), c.astype(m.indices.dtype), indptr.astype(m.indptr.dtype)),
        shape=m.shape,
    )
    return rest, held


def _features(user_features, item_features) -> Dict[str, Any]:
    """The feature matrices that are given, as keyword arguments of a model's ``recommend``."""
    return {
        name: F
        for name, F in (("user_features", user_features), ("item_features", item_features))
        if F is not None
    }


def _fits_model(model, shape, features) -> bool:
    """Whether ``shape`` is ``model``'s ``(n_users, n_items)`` with these feature matrices (any
    number of rows for a model that serves any user from its row); False when the model does
    not say (not fitted, or not a tacitrec model)."""
    try:
        if hasattr(model, "_n_rows"):  # LightFM: the rows of the feature matrices
            known = tuple(
                model._n_rows(side, features.get(f"{side}_features"), False)
                for side in ("user", "item")
            )
        else:
            known = model._shape()
    except (AttributeError, NotImplementedError):  # NotFittedError is an AttributeError
        return False
    return known[0] in (None, shape[0]) and known[1] == shape[1]


def _top_k(model, train, users, K: int, features):
    """``(batch, ids)`` for each batch of ``users``: the model's top ``K`` items of each user of
    the batch (int32, C-contiguous), the user's ``train`` items excluded."""
    ours = isinstance(model, RecommenderBase)
    for start in range(0, len(users), _BATCH_USERS):
        batch = users[start : start + _BATCH_USERS]
        rows = train.take_rows(batch)
        # any other model (implicit's, a user's own baseline) gets the scipy matrix it expects
        ids, _ = model.recommend(
            batch,
            rows if ours else rows.to_scipy(),
            N=K,
            filter_already_liked_items=True,
            **features,
        )
        yield batch, np.ascontiguousarray(ids, dtype=np.int32)


def train_test_split(
    ratings, train_percentage: float = 0.8, random_state=None
) -> Tuple[sp.csr_matrix, sp.csr_matrix]:
    """Randomly splits the stored interactions of ``ratings`` into train and test CSR matrices of
    the same shape and dtype. Exactly ``round(train_percentage * nnz)`` interactions go to train
    (implicit draws each one independently, so its sizes vary). The same ``random_state`` (int,
    Generator or RandomState) gives the same split. A pair stored more than once (raw events, as
    ``Dataset.build_interactions`` makes) is one interaction that moves with all its copies:
    train keeps them as stored (LightFM trains each; the other models add them up), test has
    them summed."""
    train_percentage = check_fraction(train_percentage, "train_percentage")
    rng = check_random_state(random_state)
    m, rows = _canonical_coo(ratings, "ratings", finite=True)
    return _random_split(m, rows, train_percentage, rng, ratings)


def _random_split(m, rows, train_percentage: float, rng, original):
    """:func:`train_test_split` of the canonical ``m`` (from :func:`_canonical_coo` of
    ``original``)."""
    n_train = int(round(train_percentage * m.nnz))
    test = np.ones(m.nnz, dtype=bool)
    test[rng.permutation(m.nnz)[:n_train]] = False
    return _split(m, rows, test, original)


def leave_k_out_split(
    ratings, K: int = 1, train_only_size: float = 0.0, random_state=None
) -> Tuple[sp.csr_matrix, sp.csr_matrix]:
    """Moves ``K`` random interactions of every user with more than ``K`` interactions to the test
    matrix; the rest stay in train. A random ``train_only_size`` share of the users with
    interactions is kept entirely in train.

    Differences from implicit 0.7: reproducible for a given ``random_state``; users need at least
    ``K + 1`` interactions (implicit requires ``K + 2``). Repeated entries of a pair move
    together, as in :func:`train_test_split`.
    """
    K = check_count(K, "K")
    train_only_size = check_fraction(train_only_size, "train_only_size", below_one=True)
    rng = check_random_state(random_state)
    m, rows = _canonical_coo(ratings, "ratings", finite=True)
    counts = np.diff(m.indptr)
    eligible = counts > K
    if train_only_size > 0:
        active = np.flatnonzero(counts > 0)
        n_only = int(round(train_only_size * len(active)))
        eligible[rng.choice(active, size=n_only, replace=False)] = False
    # Rank the interactions of each row by a random key; the first K of eligible rows are tested.
    order = np.lexsort((rng.random(m.nnz), rows))
    rank = np.arange(m.nnz) - m.indptr[rows[order]]
    test = np.zeros(m.nnz, dtype=bool)
    test[order] = (rank < K) & eligible[rows[order]]
    return _split(m, rows, test, ratings)


def ranking_metrics_at_k(
    model,
    train_user_items,
    test_user_items,
    K: int = 10,
    show_progress: bool = True,
    num_threads: int = 0,
    *,
    user_features=None,
    item_features=None,
) -> Dict[str, float]:
    """Ranking metrics at ``K`` of a fitted ``model`` on held-out ``test_user_items``, excluding
    each user's ``train_user_items`` from its ranking. Users without test items are skipped.

    Returns a dict with ``precision``, ``recall``, ``map``, ``ndcg``, ``auc``, ``mrr``,
    ``hit_rate`` and ``implicit_precision`` (see the module docstring for the definitions).
    ``num_threads`` sets the threads of the metric computation (0 = all cores); recommendation
    uses the model's own ``num_threads``. ``user_features`` / ``item_features`` are passed on to
    the model's ``recommend`` when given (a :class:`~tacitrec.LightFM` fitted with features needs
    them, as in LightFM's evaluation functions). The two matrices must have the same shape
    (ValueError naming the one that differs from the model's users x items, else
    ``train_user_items``).
    """
    K = check_count(K, "K")
    num_threads = check_threads(num_threads)
    test = as_csr(test_user_items, "test_user_items")
    train = as_csr(train_user_items, "train_user_items")
    features = _features(user_features, item_features)
    if train.shape != test.shape and _fits_model(model, train.shape, features):
        # train has the model's shape: test is the one that is wrong
        as_csr(test, "test_user_items", n_rows=train.shape[0], n_cols=train.shape[1])
    as_csr(train, "train_user_items", n_rows=test.shape[0], n_cols=test.shape[1])
    users = np.flatnonzero(np.diff(test.indptr))
    if users.size == 0:
        raise ValueError("test_user_items has no interactions: there is nothing to evaluate")
    with tqdm(total=len(users), disable=not show_progress, desc="evaluate") as bar:
        sums = metric_sums(model, train, test, users, K, num_threads, features, bar)
    return metrics_from_sums(sums)


def beyond_accuracy(
    model,
    train,
    K: int = 10,
    users=None,
    item_features=None,
    num_threads: int = 0,
    show_progress: bool = False,
    *,
    user_features=None,
    model_item_features=None,
) -> Dict[str, Any]:
    """What the top ``K`` lists of ``model`` look like beyond accuracy, for ``users`` (rows of
    ``train``; default: every user with an interaction), each list excluding the user's
    ``train`` items:

    * ``coverage``: the share of the catalogue that appears in some list;
    * ``gini``: the Gini index of how often each item is listed (0: all items equally often,
      1: one item takes every slot), over every item of the catalogue;
    * ``popularity``: the mean over users of the mean popularity of their listed items, an
      item's popularity being the share of ``train``'s users who have it;
    * ``novelty``: the same mean of the items' self-information ``-log2(popularity)`` (an item
      no training user has counts as had by one);
    * ``diversity``: the mean over users of the intra-list diversity, the mean ``1 - cosine``
      over pairs of listed items, from ``item_features`` (items x features, e.g. genres) when
      given, else from the model's item factors (NaN for models with neither);
    * ``by_activity_decile``: the same per-user means (and the users counted) for the users
      grouped by their number of ``train`` interactions into ten equal-sized groups, least
      active first.

    Computed in Rust in parallel over users. ``user_features`` / ``model_item_features`` are the
    feature matrices a LightFM model needs to recommend."""
    K = check_count(K, "K")
    num_threads = check_threads(num_threads)
    X = as_csr(train, "train")
    n_users, n_items = X.shape
    activity = np.diff(X.indptr)
    if users is None:
        users = np.flatnonzero(activity)
        if len(users) == 0:
            raise ValueError("there are no users to evaluate (train has no interactions)")
    else:
        users, _ = check_ids(users, n_users, "users", "users")
        users = np.atleast_1d(users)
        if len(users) == 0:
            raise ValueError("users is empty: there is nothing to evaluate")
    had = np.bincount(X.indices, minlength=n_items).astype(np.float64)
    popularity = had / max(int((activity > 0).sum()), 1)
    information = -np.log2(np.maximum(had, 1.0) / max(int((activity > 0).sum()), 1))
    values = np.ascontiguousarray(np.stack([popularity, information], axis=1), dtype=np.float32)
    vectors = _diversity_vectors(model, item_features, n_items)
    features = _features(user_features, model_item_features)
    means, stats, counts = [], [], np.zeros(n_items, np.int64)
    with tqdm(total=len(users), disable=not show_progress, desc="beyond accuracy") as bar:
        for batch, ids in _top_k(model, X, users, K, features):
            if ids.size and int(ids.max()) >= n_items:
                raise ValueError(
                    f"train has {n_items} columns but the model recommends item "
                    f"{int(ids.max())}: pass train with one column per item of the model"
                )
            m, s, c = _core.beyond_accuracy_per_user(ids, K, values, vectors, num_threads)
            means.append(m)
            stats.append(s)
            counts += c.astype(np.int64)
            bar.update(len(batch))
    user_means, user_stats = np.vstack(means), np.vstack(stats)
    out: Dict[str, Any] = {"coverage": float((counts > 0).mean()), "gini": _gini(counts)}
    out.update(_user_means(user_means, user_stats))
    deciles = np.argsort(np.argsort(activity[users], kind="stable"), kind="stable")
    group = (deciles * 10) // len(users)
    out["by_activity_decile"] = [
        dict(
            decile=d + 1,
            users=int((group == d).sum()),
            **_user_means(user_means[group == d], user_stats[group == d]),
        )
        for d in range(10)
        if (group == d).any()
    ]
    return out


def _user_means(means, stats) -> Dict[str, float]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN group: NaN
        return {
            "popularity": float(np.nanmean(means[:, 0])) if len(means) else float("nan"),
            "novelty": float(np.nanmean(means[:, 1])) if len(means) else float("nan"),
            "diversity": float(np.nanmean(stats[:, 0])) if len(stats) else float("nan"),
        }


def _gini(counts) -> float:
    """Gini index of non-negative counts (0 when all are equal or all zero)."""
    x = np.sort(np.asarray(counts, dtype=np.float64))
    n, total = len(x), x.sum()
    if n == 0 or total == 0:
        return 0.0
    return float(np.sum((2 * np.arange(1, n + 1) - n - 1) * x) / (n * total))


def _diversity_vectors(model, item_features, n_items):
    """Row-normalised float32 item vectors for intra-list diversity, or None."""
    if item_features is not None:
        F = as_csr(item_features, "item_features", n_rows=n_items).to_scipy()
        dense_bytes = F.shape[0] * F.shape[1] * 4
        if dense_bytes > 2 * 1024**3:
            raise MemoryError(
                f"item_features as dense vectors would take {dense_bytes / 2**30:.1f}"
                " GiB: reduce its columns (e.g. the most frequent features)"
            )
        V = F.toarray().astype(np.float64)
    else:
        V = getattr(model, "item_factors", None)
        if V is None and hasattr(model, "get_item_representations"):
            try:
                V = model.get_item_representations()[1]
            except Exception:
                V = None
        if V is None:
            return None
        V = np.asarray(V, dtype=np.float64)
        if V.shape[0] != n_items:
            return None
    norms = np.linalg.norm(V, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(V / norms, dtype=np.float32)


def ranking_metrics_frame(
    model, test, K: int = 10, *, train=None, unknown: str = "raise", frame=None
):
    """Ranking metrics from data frames in original ids: ``test`` is a frame of held-out
    ``user_id, item_id`` rows (the column names of the Dataset the model was fitted from);
    histories (excluded from each ranking) come from ``train`` (a frame of rows) or the Dataset
    the model was fitted from. Returns ``(per_user, means)``: a frame with one row per test user
    (its id and ``precision``, ``recall``, ``map``, ``ndcg``, ``auc``, ``mrr``, ``hit_rate``) of
    the test frame's library, and the dict of :func:`ranking_metrics_at_k`. Needs pyarrow."""
    from .frames import ranking_metrics_frame

    return ranking_metrics_frame(model, test, K, train=train, unknown=unknown, frame=frame)


def metric_sums(
    model, train, test, users, K: int, num_threads: int, features=None, bar=None
) -> np.ndarray:
    """The per-user metric table of ``users`` (rows of the canonical ``train`` / ``test``),
    summed: ``[number of users, sum of each of _core.METRIC_NAMES]``, float64. Sums of
    disjoint sets of users add up; :func:`metrics_from_sums` turns them into the metrics (the
    distributed evaluation merges partitions this way)."""
    out = np.zeros(1 + len(_core.METRIC_NAMES))
    for table in metric_tables(model, train, test, users, K, num_threads, features, bar):
        out[0] += len(table)
        out[1:] += table.sum(axis=0)
    return out


def metric_tables(model, train, test, users, K: int, num_threads: int, features=None, bar=None):
    """The per-user metric tables (float64, one row per user of ``users``, one column per
    ``_core.METRIC_NAMES``), batch by batch."""
    for batch, ids in _top_k(model, train, users, K, features or {}):
        table = _core.ranking_metrics_per_user(
            ids, test.take_rows(batch), K, test.shape[1], num_threads
        )
        if bar is not None:
            bar.update(len(batch))
        yield np.asarray(table, dtype=np.float64)


def metrics_from_sums(sums) -> Dict[str, float]:
    """The dict of :func:`ranking_metrics_at_k` from the summed table of :func:`metric_sums`."""
    sums = np.asarray(sums, dtype=np.float64)
    if sums[0] == 0:
        raise ValueError("the test interactions have no user to evaluate")
    col = dict(zip(_core.METRIC_NAMES, sums[1:]))
    out = {
        name: float(col[name] / sums[0])
        for name in ("precision", "recall", "map", "ndcg", "auc", "mrr", "hit_rate")
    }
    out["implicit_precision"] = float(col["hits"] / col["ideal"])
    return out


def precision_at_k(
    model,
    train_user_items,
    test_user_items,
    K: int = 10,
    show_progress: bool = True,
    num_threads: int = 0,
    **features,
) -> float:
    """Precision at K: mean over test users of hits / K (see :func:`ranking_metrics_at_k`)."""
    return ranking_metrics_at_k(
        model, train_user_items, test_user_items, K, show_progress, num_threads, **features
    )["precision"]


def recall_at_k(
    model,
    train_user_items,
    test_user_items,
    K: int = 10,
    show_progress: bool = True,
    num_threads: int = 0,
    **features,
) -> float:
    """Recall at K: mean over test users of hits / number of test items."""
    return ranking_metrics_at_k(
        model, train_user_items, test_user_items, K, show_progress, num_threads, **features
    )["recall"]


def mean_average_precision_at_k(
    model,
    train_user_items,
    test_user_items,
    K: int = 10,
    show_progress: bool = True,
    num_threads: int = 0,
    **features,
) -> float:
    """MAP at K (average precision normalised by min(K, number of test items))."""
    return ranking_metrics_at_k(
        model, train_user_items, test_user_items, K, show_progress, num_threads, **features
    )["map"]


def ndcg_at_k(
    model,
    train_user_items,
    test_user_items,
    K: int = 10,
    show_progress: bool = True,
    num_threads: int = 0,
    **features,
) -> float:
    """NDCG at K with binary relevance."""
    return ranking_metrics_at_k(
        model, train_user_items, test_user_items, K, show_progress, num_threads, **features
    )["ndcg"]


def AUC_at_k(
    model,
    train_user_items,
    test_user_items,
    K: int = 10,
    show_progress: bool = True,
    num_threads: int = 0,
    **features,
) -> float:
    """implicit's AUC truncated at K."""
    return ranking_metrics_at_k(
        model, train_user_items, test_user_items, K, show_progress, num_threads, **features
    )["auc"]


__all__ = [
    "train_test_split",
    "leave_k_out_split",
    "ranking_metrics_at_k",
    "ranking_metrics_frame",
    "beyond_accuracy",
    "metric_sums",
    "metric_tables",
    "metrics_from_sums",
    "precision_at_k",
    "recall_at_k",
    "mean_average_precision_at_k",
    "ndcg_at_k",
    "AUC_at_k",
]

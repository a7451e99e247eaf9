"""The seeded synthetic data set with planted structure (the demo and many tests use it)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .._validation import check_count, check_random_state


@dataclass
class SyntheticData:
    """What :func:`synthetic` returns."""

    #: users x items CSR (float32) of interaction counts (plays, clicks, ...).
    user_items: sp.csr_matrix
    #: the taste cluster of every user.
    user_cluster: np.ndarray
    #: the cluster of every item.
    item_cluster: np.ndarray
    #: users x user features CSR (float32, 0/1): a ``taste=c`` feature that names the user's
    #: cluster (a random cluster with probability ``feature_noise``) and an uninformative
    #: ``group=g`` feature (one of 5).
    user_features: sp.csr_matrix
    #: items x item features CSR (float32, 0/1): a ``genre=c`` feature that names the item's
    #: cluster (a random cluster with probability ``feature_noise``) and an uninformative
    #: ``tag=t`` feature (one of 50).
    item_features: sp.csr_matrix
    #: names of the columns of ``user_features``.
    user_feature_names: np.ndarray
    #: names of the columns of ``item_features``.
    item_feature_names: np.ndarray


def synthetic(
    n_users: int = 5000,
    n_items: int = 2000,
    n_clusters: int = 20,
    interactions_per_user: int = 40,
    in_cluster: float = 0.8,
    popularity_skew: float = 1.0,
    feature_noise: float = 0.2,
    random_state=0,
) -> SyntheticData:
    """Implicit-feedback data with planted structure.

    Items belong to ``n_clusters`` equal clusters, and so does every user's taste. Each user draws
    about ``interactions_per_user`` items (geometric counts, so activity is skewed): with
    probability ``in_cluster`` from its own cluster, otherwise from the whole catalogue, in both
    cases favouring popular items (Zipf exponent ``popularity_skew``). Repeated draws of the same
    item add up to its count. A personalised model should beat popularity on held-out data by a
    wide margin; popularity still beats random.

    Users and items also get metadata features (see :class:`SyntheticData`): one that reveals the
    cluster except with probability ``feature_noise`` and one that carries no signal, so a hybrid
    model (LightFM) can recommend to users and items it never saw in training.
    """
    n_users = check_count(n_users, "n_users")
    n_items = check_count(n_items, "n_items")
    n_clusters = check_count(n_clusters, "n_clusters")
    if n_clusters > n_items:
        raise ValueError(f"n_clusters ({n_clusters}) cannot exceed n_items ({n_items})")
    check_count(interactions_per_user, "interactions_per_user")
    for name, value in (("in_cluster", in_cluster), ("feature_noise", feature_noise)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value}")
    rng = check_random_state(random_state)

    item_cluster = rng.permutation(np.arange(n_items) % n_clusters)
    user_cluster = rng.integers(0, n_clusters, size=n_users)
    # A popularity rank for every item; popularity ~ 1 / rank^skew.
    weight = 1.0 / (1.0 + rng.permutation(n_items)) ** popularity_skew
    global_cdf = np.cumsum(weight) / weight.sum()
    members = [np.flatnonzero(item_cluster == c) for c in range(n_clusters)]
    cluster_cdf = [np.cumsum(weight[m]) / weight[m].sum() for m in members]

    counts = rng.geometric(1.0 / interactions_per_user, size=n_users)
    rows = np.repeat(np.arange(n_users), counts)
    cols = np.empty(rows.size, dtype=np.int64)
    own = rng.random(rows.size) < in_cluster
    u = rng.random(rows.size)
    glob = ~own
    cols[glob] = np.minimum(np.searchsorted(global_cdf, u[glob]), n_items - 1)
    row_cluster = user_cluster[rows]
    for c in range(n_clusters):
        sel = own & (row_cluster == c)
        pick = np.minimum(np.searchsorted(cluster_cdf[c], u[sel]), len(members[c]) - 1)
        cols[sel] = members[c][pick]
    X = sp.csr_matrix(
        (np.ones(rows.size, dtype=np.float32), (rows, cols)), shape=(n_users, n_items)
    )
    X.sum_duplicates()
    # Features are drawn after the interactions, so adding them left user_items unchanged.
    user_features, user_names = _features(
        rng, user_cluster, n_clusters, feature_noise, "taste", "group", 5
    )
    item_features, item_names = _features(
        rng, item_cluster, n_clusters, feature_noise, "genre", "tag", 50
    )
    return SyntheticData(
        X, user_cluster, item_cluster, user_features, item_features, user_names, item_names
    )


def _features(rng, cluster, n_clusters, noise, informative, other, n_other):
    """One-hot of the (noisy) cluster next to one-hot of a random uninformative group."""
    n = len(cluster)
    shown = np.where(rng.random(n) < noise, rng.integers(0, n_clusters, size=n), cluster)
    group = rng.integers(0, n_other, size=n)
    cols = np.stack([shown, n_clusters + group], axis=1).ravel()
    F = sp.csr_matrix(
        (np.ones(2 * n, dtype=np.float32), cols, np.arange(0, 2 * n + 1, 2)),
        shape=(n, n_clusters + n_other),
    )
    names = np.array(
        [f"{informative}={c}" for c in range(n_clusters)] + [f"{other}={g}" for g in range(n_other)]
    )
    return F, names


__all__ = ["SyntheticData", "synthetic"]

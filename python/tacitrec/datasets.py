"""Datasets: a seeded synthetic generator with planted structure (the demo and tests use it)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ._validation import check_count, check_random_state


@dataclass
class SyntheticData:
    """What :func:`synthetic` returns."""

    #: users x items CSR (float32) of interaction counts (plays, clicks, ...).
    user_items: sp.csr_matrix
    #: the taste cluster of every user.
    user_cluster: np.ndarray
    #: the cluster of every item.
    item_cluster: np.ndarray


def synthetic(n_users: int = 5000, n_items: int = 2000, n_clusters: int = 20,
              interactions_per_user: int = 40, in_cluster: float = 0.8, popularity_skew: float = 1.0,
              random_state=0) -> SyntheticData:
    """Implicit-feedback data with planted structure.

    Items belong to ``n_clusters`` equal clusters, and so does every user's taste. Each user draws
    about ``interactions_per_user`` items (geometric counts, so activity is skewed): with
    probability ``in_cluster`` from its own cluster, otherwise from the whole catalogue, in both
    cases favouring popular items (Zipf exponent ``popularity_skew``). Repeated draws of the same
    item add up to its count. A personalised model should beat popularity on held-out data by a
    wide margin; popularity still beats random.
    """
    n_users = check_count(n_users, "n_users")
    n_items = check_count(n_items, "n_items")
    n_clusters = check_count(n_clusters, "n_clusters")
    if n_clusters > n_items:
        raise ValueError(f"n_clusters ({n_clusters}) cannot exceed n_items ({n_items})")
    check_count(interactions_per_user, "interactions_per_user")
    if not 0.0 <= in_cluster <= 1.0:
        raise ValueError(f"in_cluster must be in [0, 1], got {in_cluster}")
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
    X = sp.csr_matrix((np.ones(rows.size, dtype=np.float32), (rows, cols)),
                      shape=(n_users, n_items))
    X.sum_duplicates()
    return SyntheticData(X, user_cluster, item_cluster)


__all__ = ["SyntheticData", "synthetic"]

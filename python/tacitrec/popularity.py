"""The popularity baseline: every user gets the most popular items they do not have yet."""

from __future__ import annotations

import time
from typing import Dict, Optional, Tuple

import numpy as np

from . import _core
from ._validation import as_csr, as_state_array
from .base import RecommenderBase
from .exceptions import ModelFormatError, NotFittedError


class PopularityRecommender(RecommenderBase):
    """Scores every item by its popularity in the training data, the same for every user.

    Parameters
    ----------
    weighted : bool
        False (default): popularity is the number of users with a stored interaction with the item.
        True: the sum of the stored interaction values (e.g. total play count).
    num_threads : int
        Threads for batched recommendation (0 = all cores).

    A strong baseline to beat: any personalised model worth its cost should beat it on held-out
    data. ``recommend`` filters each user's liked items like every other model; since scores do
    not depend on the user, ``recalculate_user=True`` gives the same result and any non-negative
    user id is accepted with it. ``similar_items`` / ``similar_users`` do not exist: popularity
    defines no similarity.
    """

    _flag_params = ("weighted",)

    def __init__(self, weighted: bool = False, num_threads: int = 0):
        self.weighted = weighted
        self.num_threads = num_threads
        self.item_popularity: Optional[np.ndarray] = None
        self._n_users: Optional[int] = None

    def fit(self, user_items, show_progress: bool = True, callback=None) -> "PopularityRecommender":
        """Counts item popularity in ``user_items`` (users x items, any scipy sparse format).
        ``show_progress`` is accepted for API uniformity; the fit is one pass and shows no bar.
        ``callback(0, elapsed_seconds, None)`` is called once when it is done (as kNN's)."""
        self._check_params()
        start = time.perf_counter()
        X = as_csr(user_items, "user_items")
        weights = X.data.astype(np.float64) if self.weighted else None
        pop = np.bincount(X.indices, weights=weights, minlength=X.shape[1])
        self.item_popularity = pop.astype(np.float32)
        self._n_users = X.shape[0]
        if callback is not None:
            callback(0, time.perf_counter() - start, None)
        return self

    def _shape(self) -> Tuple[Optional[int], int]:
        if self.item_popularity is None:
            raise NotFittedError("PopularityRecommender is not fitted: call fit(user_items) first")
        return self._n_users, self.item_popularity.shape[0]

    def _recommend(
        self, userids, user_items, N, filter_liked, filter_items, items, recalculate_user
    ):
        assert self.item_popularity is not None  # the caller's _shape() raised otherwise
        # A rank-1 dot product: every user's vector is [1], every item's is [popularity].
        queries = np.ones((len(userids), 1), dtype=np.float32)
        liked = user_items if (filter_liked and user_items is not None) else None
        return _core.topk_dot(
            queries,
            self.item_popularity[:, None],
            N,
            liked,
            items=items,
            filter_items=filter_items,
            num_threads=self._threads(),
        )

    def _get_state(self) -> Dict[str, np.ndarray]:
        self._shape()
        assert self.item_popularity is not None  # _shape() raised otherwise
        return {"item_popularity": self.item_popularity, "n_users": np.array(self._n_users)}

    def _set_state(self, state) -> None:
        self.item_popularity = as_state_array(
            state["item_popularity"], "item_popularity", np.float32, 1
        )
        n_users = int(as_state_array(state["n_users"], "n_users", np.int64, 0))
        if n_users < 0:
            raise ModelFormatError(f"the saved model has {n_users} users")
        self._n_users = n_users

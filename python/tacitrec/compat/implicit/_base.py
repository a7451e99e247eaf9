"""What every model of :mod:`tacitrec.compat.implicit` changes on top of tacitrec's own class.

* ``fit`` warns :class:`~tacitrec.compat.implicit.utils.ParameterWarning` when the matrix is not
  CSR (then converts it, as implicit does);
* ``recommend`` requires ``user_items`` to be CSR when it is used (implicit's ValueError);
* with ``items=`` (implicit's replacement of ``rank_items``) every requested item comes back
  (when ``N`` allows): the candidates by score, then the items the user already has (or, in
  ``similar_items`` of the kNN models, the items that are not stored neighbours), in id order,
  with score ``-inf`` (implicit appends them with ``-FLT_MAX``). They never rank above a
  candidate;
* a call for one user (or one item) returns only real results: where fewer than ``N``
  candidates are left, the arrays are shorter (tacitrec's own API pads them with id -1 and
  score -inf so that batches stay rectangular; batch calls here keep that padding, implicit
  fills such slots with the user's own items instead).

Everything else is tacitrec's: liked items are never recommended, scores are exact, batch calls
are parallel, bad input raises an error naming the argument.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp

from ..._validation import Csr
from .utils import ParameterWarning


def _is_csr(m) -> bool:
    return isinstance(m, Csr) or (sp.issparse(m) and m.format == "csr")


def _trim(ids: np.ndarray, scores: np.ndarray):
    keep = ids >= 0
    return ids[keep], scores[keep]


def _fill_requested(ids, scores, items, filter_items):
    """Fills each row's padding with the requested ``items`` (less ``filter_items``) missing
    from it, in ascending id order, with score -inf: implicit returns every item of ``items``."""
    if ids.shape[-1] == 0:  # items=[]: nothing requested, no column to fill
        return ids, scores
    requested = np.unique(np.asarray(items))
    if filter_items is not None:
        requested = np.setdiff1d(requested, np.asarray(filter_items))
    ids, scores = ids.copy(), scores.copy()
    rows_ids = ids.reshape(-1, ids.shape[-1])
    rows_scores = scores.reshape(-1, scores.shape[-1])
    for r in range(rows_ids.shape[0]):
        free = np.flatnonzero(rows_ids[r] < 0)
        if free.size:
            missing = np.setdiff1d(requested, rows_ids[r])[: free.size]
            rows_ids[r, free[: missing.size]] = missing
            rows_scores[r, free[: missing.size]] = -np.inf
    return ids, scores


class ImplicitModel:
    """Mixin placed before a tacitrec model class: implicit's input and output conventions."""

    # (its super() calls reach the model class after it in the MRO, which mypy cannot see; its
    # recommend and similar_users keep implicit's signatures, which differ from tacitrec's)

    def fit(self, user_items, show_progress: bool = True, callback=None):
        if not _is_csr(user_items):
            warnings.warn(
                f"Method expects CSR input, and was passed {type(user_items).__name__} "
                "instead: converting it to CSR",
                ParameterWarning,
                stacklevel=2,
            )
        return super().fit(  # type: ignore[misc]
            user_items, show_progress=show_progress, callback=callback
        )

    def recommend(
        self,
        userid,
        user_items,
        N: int = 10,
        filter_already_liked_items: bool = True,
        filter_items=None,
        recalculate_user: bool = False,
        items=None,
    ):
        if (filter_already_liked_items or recalculate_user) and not _is_csr(user_items):
            raise ValueError("user_items needs to be a CSR sparse matrix")
        ids, scores = super().recommend(  # type: ignore[misc]
            userid,
            user_items,
            N=N,
            filter_already_liked_items=filter_already_liked_items,
            filter_items=filter_items,
            recalculate_user=recalculate_user,
            items=items,
        )
        if items is not None:
            ids, scores = _fill_requested(ids, scores, items, filter_items)
        return _trim(ids, scores) if np.ndim(userid) == 0 else (ids, scores)

    def similar_items(
        self,
        itemid,
        N: int = 10,
        recalculate_item: bool = False,
        item_users=None,
        filter_items=None,
        items=None,
    ):
        ids, scores = super().similar_items(  # type: ignore[misc]
            itemid,
            N,
            recalculate_item=recalculate_item,
            item_users=item_users,
            filter_items=filter_items,
            items=items,
        )
        if items is not None:
            ids, scores = _fill_requested(ids, scores, items, filter_items)
        return _trim(ids, scores) if np.ndim(itemid) == 0 else (ids, scores)

    def similar_users(self, userid, N: int = 10, filter_users=None, users=None):
        ids, scores = super().similar_users(  # type: ignore[misc]
            userid, N, filter_users=filter_users, users=users
        )
        return _trim(ids, scores) if np.ndim(userid) == 0 else (ids, scores)


class NoUserFoldIn:
    """Mixin for BPR and LMF: implicit's cannot recalculate users, so neither do these (tacitrec's
    own classes fold users in)."""

    def recalculate_user(self, userid, user_items):
        raise NotImplementedError(
            "recalculate_user is not supported with this model (as in implicit); "
            f"tacitrec.{type(self).__name__} folds users in"
        )

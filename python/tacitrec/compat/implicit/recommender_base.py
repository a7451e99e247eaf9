"""``implicit.recommender_base``: the interface every model of this package implements and the
exception a diverged fit raises.

* :class:`ModelFitError` is tacitrec's own :class:`tacitrec.ModelFitError` (a RuntimeError),
  which every model raises when its factors become NaN or infinite, so ``except
  implicit.recommender_base.ModelFitError`` catches what the models of this package raise.
* :class:`RecommenderBase` is implicit's abstract base class: ``fit``, ``recommend``,
  ``similar_users``, ``similar_items`` and ``save`` to implement, ``load`` and the deprecated
  ``rank_items`` given. The models of this package are registered as its (virtual) subclasses,
  so ``isinstance(model, RecommenderBase)`` holds for them; their code comes from tacitrec's
  classes, not from this one. A model of your own can subclass it as it subclassed implicit's.
"""

from __future__ import annotations

import abc
import os
import warnings

import numpy as np

from ...exceptions import ModelFitError


class RecommenderBase(metaclass=abc.ABCMeta):
    """implicit's interface of a recommendation model (see the module docstring)."""

    @abc.abstractmethod
    def fit(self, user_items, show_progress=True, callback=None):
        """Trains the model on ``user_items`` (a users x items CSR matrix of confidences)."""

    @abc.abstractmethod
    def recommend(
        self,
        userid,
        user_items,
        N=10,
        filter_already_liked_items=True,
        filter_items=None,
        recalculate_user=False,
        items=None,
    ):
        """``(ids, scores)``: the top ``N`` items of a user (1-D) or of each user of an array
        (2-D), ``user_items`` holding one CSR row per user."""

    @abc.abstractmethod
    def similar_users(self, userid, N=10, filter_users=None, users=None):
        """``(ids, scores)``: the users most similar to ``userid``."""

    @abc.abstractmethod
    def similar_items(
        self, itemid, N=10, recalculate_item=False, item_users=None, filter_items=None, items=None
    ):
        """``(ids, scores)``: the items most similar to ``itemid``."""

    @abc.abstractmethod
    def save(self, file):
        """Writes the model to ``file`` (a path or a binary file object) as a ``.npz``."""

    @classmethod
    def load(cls, fileobj_or_path):
        """A new ``cls()`` with every array of the ``.npz`` file set as an attribute of the same
        name (0-d arrays as Python scalars, ``dtype`` as a ``numpy.dtype``), as implicit's
        generic ``load``; a path without the ``.npz`` suffix gets it. Pickled arrays are not
        read (``allow_pickle=False``)."""
        if isinstance(fileobj_or_path, (str, os.PathLike)):
            path = os.fspath(fileobj_or_path)
            if isinstance(path, str) and not path.endswith(".npz"):
                fileobj_or_path = path + ".npz"
        with np.load(fileobj_or_path, allow_pickle=False) as data:
            model = cls()
            for name in data.files:
                value = data[name]
                if name == "dtype":
                    value = np.dtype(str(value))
                elif value.shape == ():
                    value = value.item()
                setattr(model, name, value)
            return model

    def rank_items(self, userid, user_items, selected_items, recalculate_user=False):
        """Deprecated in implicit (DeprecationWarning): ``recommend(userid, user_items,
        items=selected_items, filter_already_liked_items=False,
        recalculate_user=recalculate_user)``, with ``recommend``'s default ``N``."""
        warnings.warn(
            "rank_items is deprecated. Use recommend with the 'items' parameter instead",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.recommend(
            userid,
            user_items,
            recalculate_user=recalculate_user,
            items=selected_items,
            filter_already_liked_items=False,
        )

    @staticmethod
    def _check_factors(user_factors, item_factors):
        """Raises :class:`ModelFitError` if either factor matrix holds NaN (implicit's check
        after a fit)."""
        if np.isnan(user_factors).any() or np.isnan(item_factors).any():
            raise ModelFitError("NaN encountered in factors")


__all__ = ["RecommenderBase", "ModelFitError"]

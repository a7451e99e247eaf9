"""``implicit.bpr``: :class:`BayesianPersonalizedRanking` with implicit 0.7's signature
(its docstring says what differs)."""

from __future__ import annotations

from ...bpr import BayesianPersonalizedRanking as _BPR
from ._base import ImplicitModel, NoUserFoldIn


class BayesianPersonalizedRanking(ImplicitModel, NoUserFoldIn, _BPR):  # type: ignore[misc]  # implicit's signatures
    """implicit's ``BayesianPersonalizedRanking`` (same arguments) over
    :class:`tacitrec.BayesianPersonalizedRanking`, whose docstring describes the parameters and
    the training differences (stratified reproducible schedule by default).

    Differs from implicit as :mod:`tacitrec.compat.implicit._base` says, and:
    ``recalculate_user`` raises NotImplementedError as implicit's (tacitrec's own class folds
    users in); ``similar_items`` compares the latent factors without the bias column;
    ``use_gpu=True`` raises ValueError.
    """


__all__ = ["BayesianPersonalizedRanking"]

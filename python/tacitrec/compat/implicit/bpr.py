"""``implicit.bpr``: :class:`BayesianPersonalizedRanking` with implicit 0.7's signature.

Same model as :class:`tacitrec.BayesianPersonalizedRanking` (see its module docstring for the
differences from implicit: the reproducible stratified schedule, fold-in with
``recalculate_user=True``, cosine of the latent factors only). Beside those of :mod:`._base`:
``use_gpu=True`` raises ValueError;
``recalculate_user`` raises NotImplementedError as implicit's (tacitrec's own class folds the
user in).
"""

from __future__ import annotations

from ...bpr import BayesianPersonalizedRanking as _BPR
from ._base import ImplicitModel


class BayesianPersonalizedRanking(ImplicitModel, _BPR):
    __doc__ = _BPR.__doc__

    def recalculate_user(self, userid, user_items):
        """Raises NotImplementedError, as implicit's BPR (``tacitrec.BayesianPersonalizedRanking``
        folds users in)."""
        raise NotImplementedError(
            "recalculate_user is not supported with this model (as in implicit); "
            "tacitrec.BayesianPersonalizedRanking folds users in")


__all__ = ["BayesianPersonalizedRanking"]

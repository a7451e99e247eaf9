"""``implicit.lmf``: :class:`LogisticMatrixFactorization` with implicit 0.7's signature.

Same model as :class:`tacitrec.LogisticMatrixFactorization` (see its module docstring for the
differences from implicit). Beside those of :mod:`._base`: ``use_gpu=True`` raises ValueError; ``recalculate_user`` raises
NotImplementedError as implicit's (tacitrec's own class folds the user in).
"""

from __future__ import annotations

from ...lmf import LogisticMatrixFactorization as _LMF
from ._base import ImplicitModel


class LogisticMatrixFactorization(ImplicitModel, _LMF):
    __doc__ = _LMF.__doc__

    def recalculate_user(self, userid, user_items):
        """Raises NotImplementedError, as implicit's LMF (``tacitrec.LogisticMatrixFactorization``
        folds users in)."""
        raise NotImplementedError(
            "recalculate_user is not supported with this model (as in implicit); "
            "tacitrec.LogisticMatrixFactorization folds users in")


__all__ = ["LogisticMatrixFactorization"]

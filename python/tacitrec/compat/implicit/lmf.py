"""``implicit.lmf``: :class:`LogisticMatrixFactorization` with implicit 0.7's signature
(its docstring says what differs)."""

from __future__ import annotations

from ...lmf import LogisticMatrixFactorization as _LMF
from ._base import ImplicitModel, NoUserFoldIn


class LogisticMatrixFactorization(ImplicitModel, NoUserFoldIn, _LMF):  # type: ignore[misc]  # implicit's signatures
    """implicit's ``LogisticMatrixFactorization`` (same arguments) over
    :class:`tacitrec.LogisticMatrixFactorization`, whose docstring describes the parameters.

    Differs from implicit as :mod:`tacitrec.compat.implicit._base` says, and:
    ``recalculate_user`` raises NotImplementedError as implicit's (tacitrec's own class folds
    users in); ``similar_items`` compares the latent factors without the bias columns;
    ``use_gpu=True`` raises ValueError.
    """


__all__ = ["LogisticMatrixFactorization"]

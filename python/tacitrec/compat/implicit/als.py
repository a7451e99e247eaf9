"""``implicit.als``: :class:`AlternatingLeastSquares` with implicit 0.7's signature.

Same model and solver as :class:`tacitrec.AlternatingLeastSquares` (implicit's confidence
convention, CG or Cholesky). Differences from implicit, beside those of :mod:`._base`:
``use_native`` is accepted and ignored (one Rust solver); ``use_gpu=True`` raises
ValueError (no GPU path); ``cg_steps`` can be set (implicit fixes 3).
"""

from __future__ import annotations

from ...als import AlternatingLeastSquares as _ALS
from ._base import ImplicitModel


class AlternatingLeastSquares(ImplicitModel, _ALS):
    __doc__ = _ALS.__doc__


__all__ = ["AlternatingLeastSquares"]

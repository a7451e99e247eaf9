"""``implicit.als``: :class:`AlternatingLeastSquares` with implicit 0.7's signature (its docstring
says what differs)."""

from __future__ import annotations

from ...als import AlternatingLeastSquares as _ALS
from ._base import ImplicitModel


class AlternatingLeastSquares(ImplicitModel, _ALS):  # type: ignore[misc]  # implicit's signatures
    """implicit's ``AlternatingLeastSquares`` (same arguments, in implicit's order) over
    :class:`tacitrec.AlternatingLeastSquares`, whose docstring describes the parameters.

    Differs from implicit as the package docstring of :mod:`tacitrec.compat.implicit._base`
    says (liked items never returned, padded batches, shorter single-user results), and:
    ``use_native`` is ignored (one Rust solver), ``dtype=np.float64`` computes and stores in
    float32, ``use_gpu=True`` raises ValueError, ``cg_steps`` can be set (implicit fixes 3).
    """


__all__ = ["AlternatingLeastSquares"]

"""``implicit.als``: :class:`AlternatingLeastSquares` with implicit 0.7's signature (its docstring
says what differs)."""

from __future__ import annotations

import logging
from typing import Callable, List, Optional

import numpy as np

from ...als import AlternatingLeastSquares as _ALS
from ._base import ImplicitFactorModel, no_gpu

#: implicit's logger, on which ``calculate_training_loss=True`` logs the loss (INFO)
log = logging.getLogger("implicit")


class _ALSExtras:
    """What implicit's ALS has beyond the other models: ``fit_callback``, the training loss on
    the ``implicit`` logger, ``YtY`` / ``XtX`` and ``to_gpu``. (A mixin, so that ``fit`` keeps
    the keyword ``user_items``: tacitrec wraps the ``fit`` a model class defines itself.)"""

    #: called as ``fit_callback(iteration, elapsed_seconds, loss_or_None)`` after every
    #: iteration of a ``fit`` given no ``callback`` (implicit's older way to pass one)
    fit_callback: Optional[Callable] = None

    def fit(self, user_items, show_progress: bool = True, callback=None):
        last_loss: List[float] = []

        def after_iteration(iteration, elapsed, loss):
            if loss is not None:
                last_loss[:] = [loss]
                if not show_progress:  # the progress bar shows it otherwise
                    log.info("loss %.4f", loss)
            chosen = callback if callback else self.fit_callback  # read as implicit reads it
            if chosen:
                chosen(iteration, elapsed, loss)

        self._implicit_fit(user_items, show_progress, after_iteration)  # type: ignore[attr-defined]
        if self.calculate_training_loss and last_loss:  # type: ignore[attr-defined]
            log.info("Final training loss %.4f", last_loss[0])
        return self

    def _gram(self, side: str) -> np.ndarray:
        self._shape()  # type: ignore[attr-defined]  # NotFittedError before fit
        factors = getattr(self, f"{side}_factors")

        def gram(f: np.ndarray) -> np.ndarray:
            g = f.T.dot(f)
            g.flags.writeable = False
            return g

        return self._derived_from(  # type: ignore[attr-defined]  # MatrixFactorizationBase's
            factors, side, "implicit_gram", gram
        )

    @property
    def YtY(self) -> np.ndarray:
        """``item_factors.T @ item_factors`` (factors x factors, float32, read-only; without the
        regularisation), as implicit's property. Always that of the current factors: implicit
        caches it until the next ``fit`` / ``partial_fit_items``, so it goes stale when the
        factors are edited in place; here it is kept only while a fingerprint of the factors,
        checked on every access, stays the same."""
        return self._gram("item")

    @property
    def XtX(self) -> np.ndarray:
        """``user_factors.T @ user_factors``; as :attr:`YtY`."""
        return self._gram("user")

    def to_gpu(self):
        """Raises ValueError, as implicit's ``to_gpu`` where CUDA is not available."""
        no_gpu(type(self).__name__)


class AlternatingLeastSquares(_ALSExtras, ImplicitFactorModel, _ALS):  # type: ignore[misc]  # implicit's signatures
    """implicit's ``AlternatingLeastSquares`` (same arguments, in implicit's order) over
    :class:`tacitrec.AlternatingLeastSquares`, whose docstring describes the parameters.

    As implicit's: ``fit_callback`` (used when ``fit`` gets no ``callback``), the training loss
    logged at INFO on the ``implicit`` logger with ``calculate_training_loss=True`` ("loss %.4f"
    after every iteration when ``show_progress=False``, "Final training loss %.4f" at the end),
    ``YtY`` / ``XtX``, ``user_norms`` / ``item_norms`` (always of the current factors),
    ``dtype`` a ``numpy.dtype``, ``load`` of implicit's own files, ``recommend_all`` and
    ``rank_items`` (deprecated, as in implicit), ``to_gpu()`` raising ValueError.

    Differs from implicit as the package docstring of :mod:`tacitrec.compat.implicit._base`
    says (liked items never returned, padded batches, shorter single-user results), and:
    ``use_native`` is ignored (one Rust solver), ``dtype=np.float64`` computes and stores in
    float32, ``use_gpu=True`` raises ValueError, ``cg_steps`` can be set (implicit fixes 3).
    """

    # what implicit 0.7.3's AlternatingLeastSquares.save writes beside the factors
    _implicit_params = (
        "factors",
        "regularization",
        "alpha",
        "dtype",
        "use_native",
        "use_cg",
        "cg_steps",
        "iterations",
        "calculate_training_loss",
        "num_threads",
        "random_state",
    )


__all__ = ["AlternatingLeastSquares"]

"""``implicit.bpr``: :class:`BayesianPersonalizedRanking` with implicit 0.7's signature
(its docstring says what differs)."""

from __future__ import annotations

from ...bpr import BayesianPersonalizedRanking as _BPR
from ._base import ImplicitFactorModel, NoUserFoldIn, no_gpu


class BayesianPersonalizedRanking(ImplicitFactorModel, NoUserFoldIn, _BPR):  # type: ignore[misc]  # implicit's signatures
    """implicit's ``BayesianPersonalizedRanking`` (same arguments) over
    :class:`tacitrec.BayesianPersonalizedRanking`, whose docstring describes the parameters and
    the training differences (stratified reproducible schedule by default).

    As implicit's: ``fit`` calls ``callback(epoch, elapsed_seconds, correct, skipped)``,
    ``user_norms`` / ``item_norms`` (all columns, the bias included; always of the current
    factors), ``dtype`` a ``numpy.dtype``, ``load`` of implicit's own files, ``recommend_all``
    and ``rank_items`` (deprecated, as in implicit), ``to_gpu()`` raising ValueError.

    Differs from implicit as :mod:`tacitrec.compat.implicit._base` says, and:
    ``recalculate_user`` raises NotImplementedError as implicit's (tacitrec's own class folds
    users in); ``similar_items`` compares the latent factors without the bias column;
    ``use_gpu=True`` raises ValueError.
    """

    # what implicit 0.7.3's BayesianPersonalizedRanking.save writes beside the factors
    _implicit_params = (
        "factors",
        "learning_rate",
        "regularization",
        "dtype",
        "iterations",
        "num_threads",
        "verify_negative_samples",
        "random_state",
    )

    def to_gpu(self):
        """Raises ValueError, as implicit's ``to_gpu`` where CUDA is not available."""
        no_gpu(type(self).__name__)


__all__ = ["BayesianPersonalizedRanking"]

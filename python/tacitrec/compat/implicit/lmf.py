"""``implicit.lmf``: :class:`LogisticMatrixFactorization` with implicit 0.7's signature
(its docstring says what differs)."""

from __future__ import annotations

from ...lmf import LogisticMatrixFactorization as _LMF
from ._base import ImplicitFactorModel, NoUserFoldIn


class LogisticMatrixFactorization(ImplicitFactorModel, NoUserFoldIn, _LMF):  # type: ignore[misc]  # implicit's signatures
    """implicit's ``LogisticMatrixFactorization`` (same arguments) over
    :class:`tacitrec.LogisticMatrixFactorization`, whose docstring describes the parameters.

    As implicit's: ``fit`` calls ``callback(iteration, elapsed_seconds)``, ``user_norms`` /
    ``item_norms`` (all columns, biases included; always of the current factors), ``dtype`` a
    ``numpy.dtype``, ``load`` of implicit's own files, ``recommend_all`` and ``rank_items``
    (deprecated, as in implicit). No ``to_gpu``: implicit has no GPU LMF.

    Differs from implicit as :mod:`tacitrec.compat.implicit._base` says, and:
    ``recalculate_user`` raises NotImplementedError as implicit's (tacitrec's own class folds
    users in); ``similar_items`` compares the latent factors without the bias columns;
    ``use_gpu=True`` raises ValueError.
    """

    # what implicit 0.7.3's LogisticMatrixFactorization.save writes beside the factors
    _implicit_params = (
        "factors",
        "learning_rate",
        "regularization",
        "dtype",
        "iterations",
        "neg_prop",
        "num_threads",
        "random_state",
    )


__all__ = ["LogisticMatrixFactorization"]

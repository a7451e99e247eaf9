"""``lightfm.lightfm`` on tacitrec: :class:`LightFM` with LightFM 1.17's exceptions.

The model is :class:`tacitrec.LightFM` (the same Rust kernels, parameters and fixes); this
subclass only changes which exceptions are raised, so that code and tests written for LightFM
catch them (see :mod:`tacitrec.compat.lightfm._errors`).
"""

from __future__ import annotations

import scipy.sparse as sp

from ...lightfm import LightFM as _LightFM
from ._convert import id_array, integral
from ._errors import LightFMNotImplementedError, LightFMParameterError, lightfm_errors

#: LightFM's integer hyper-parameters, which it accepts as integral floats
_INTEGERS = ("no_components", "k", "n", "max_sampled")


class LightFM(_LightFM):
    """LightFM 1.17's ``LightFM`` (the same constructor, ``fit``, ``fit_partial``, ``predict``,
    ``predict_rank``, ``get_user_representations``, ``get_item_representations``,
    ``get_params``, ``set_params`` and the attributes ``user_embeddings``, ``item_embeddings``,
    ``user_biases``, ``item_biases``), trained by tacitrec's kernels.

    What differs from LightFM, and why:

    * ``item_alpha`` / ``user_alpha`` mean what they mean in LightFM: a global weight decay of every
      parameter of the side at every example (``regularization="decay"``, the default here; see
      :class:`tacitrec.LightFM` for the formula), so a tuned alpha carries over. LightFM 1.17
      implements it wrongly (its representations multiply the parameters by the lazy scale where
      its fold divides them by it, its steps are not multiplied by the scale, and the rows an
      example touches are exempted from that example's decay), and around alpha 0.05 its
      parameters blow up (warp) or collapse to 0; tacitrec applies the decay exactly (one lazy
      scale per side, folded into the parameters every epoch) and stays finite. The result is
      close to LightFM's at LightFM's usual alphas, not the same. ``regularization="l2"`` (not
      in LightFM) is tacitrec's per-example L2 penalty on the touched rows instead, much weaker
      at the same alpha.
    * Training fixes one more LightFM defect: in the pairwise losses (bpr, warp, warp-kos) the
      user bias, which cancels from a score difference, gets no gradient (LightFM's drifts to
      large negative values). Models therefore differ from LightFM's for the same seed;
      quality is equal or better.
    * An epoch visits the interactions in a random order, as LightFM's (``order="interactions"``,
      the default here), so a tuned setting learns as it did in LightFM, epoch for epoch;
      ``order="users"`` (not in LightFM, the default of :class:`tacitrec.LightFM`) visits users
      in a random order and each user's interactions consecutively: faster per epoch, and it
      learns differently per epoch (LightFM given that order does too). Training is
      hogwild for any ``num_threads`` (LightFM's too); ``num_threads=1`` is reproducible.
      ``num_threads=0`` means all cores (LightFM raises ValueError for it).
    * Invalid hyper-parameters raise :class:`LightFMParameterError`, which is both the
      AssertionError LightFM's asserts raise and the ValueError tacitrec raises; ``set_params``
      validates too (LightFM does not).
    * ``sample_weight`` may be any sparse matrix with exactly the interactions' entries, in any
      order (LightFM requires a COO matrix in the same entry order); anything else raises
      ValueError (a dense array: :class:`LightFMInputTypeError`, a TypeError and ValueError).
      With ``loss="warp-kos"`` it raises :class:`LightFMNotImplementedError`
      (NotImplementedError, as LightFM, and ValueError, as tacitrec).
    * Divergence raises :class:`LightFMDivergenceError` (ValueError, as LightFM, and tacitrec's
      ModelFitError). Ids outside the model's range raise :class:`LightFMIdError` (IndexError
      and ValueError; LightFM reads out of bounds for some of them).
    * ``predict`` / ``predict_rank`` without the feature matrices on a model fitted with them
      raise ValueError (LightFM silently scores with the wrong representations).
    * The parameter attributes are views of tacitrec's arrays: assigning one copies and
      validates it (shape, finite values, float32) on a fitted model. The optimiser's
      accumulators (``*_gradients``, ``*_momentum``, LightFM's eight) are read-only views
      (LightFM's are writable arrays: a zero written into adagrad's sums divides by zero);
      assigning one copies and validates it likewise (also non-negative, and positive for
      adagrad's ``*_gradients``), so a LightFM model's whole state can be carried over.
    * ``random_state`` is kept as passed (LightFM turns it into a RandomState in the
      constructor, and ``get_params`` returns that).
    * Integer arguments given as whole-number floats or bools (``max_sampled=10.0``,
      ``num_threads=2.0``, float id arrays) are accepted as LightFM accepts them; a fractional
      one raises an error naming it (LightFM truncates it).
    * Beyond LightFM: ``recommend`` (tacitrec's batched top-k, with feature matrices for cold
      users and items), ``save`` / ``load``; pickling works as in LightFM.
    """

    def __init__(
        self,
        no_components: int = 10,
        k: int = 5,
        n: int = 10,
        learning_schedule: str = "adagrad",
        loss: str = "logistic",
        learning_rate: float = 0.05,
        rho: float = 0.95,
        epsilon: float = 1e-6,
        item_alpha: float = 0.0,
        user_alpha: float = 0.0,
        max_sampled: int = 10,
        random_state=None,
        regularization: str = "decay",
        order: str = "interactions",
    ):
        no_components, k, n, max_sampled = map(integral, (no_components, k, n, max_sampled))
        try:
            super().__init__(
                no_components=no_components,
                k=k,
                n=n,
                learning_schedule=learning_schedule,
                loss=loss,
                learning_rate=learning_rate,
                rho=rho,
                epsilon=epsilon,
                item_alpha=item_alpha,
                user_alpha=user_alpha,
                max_sampled=max_sampled,
                random_state=random_state,
                regularization=regularization,
                order=order,
            )
        except ValueError as e:
            raise LightFMParameterError(str(e)) from None

    def set_params(self, **params) -> "LightFM":
        """LightFM's ``set_params``; invalid values raise :class:`LightFMParameterError` and none
        of the values is set (LightFM sets them unchecked)."""
        params = {k: integral(v) if k in _INTEGERS else v for k, v in params.items()}
        try:
            return super().set_params(**params)
        except ValueError as e:
            raise LightFMParameterError(str(e)) from None

    def fit_partial(
        self,
        interactions,
        user_features=None,
        item_features=None,
        sample_weight=None,
        epochs: int = 1,
        num_threads: int = 1,
        verbose: bool = False,
    ) -> "LightFM":
        """LightFM's ``fit_partial`` (``fit`` resets the parameters, then calls it); see the
        class docstring for ``sample_weight`` and the exceptions."""
        if sample_weight is not None and self.loss == "warp-kos":
            raise LightFMNotImplementedError(
                "sample_weight is not supported with loss='warp-kos' (it samples positives per "
                "user, not interactions)"
            )
        with lightfm_errors():
            return super().fit_partial(
                interactions,
                user_features,
                item_features,
                sample_weight,
                integral(epochs),
                integral(num_threads),
                verbose,
            )

    def predict(
        self, user_ids, item_ids, item_features=None, user_features=None, num_threads: int = 1
    ):
        """LightFM's ``predict``: float32 scores of the (user, item) pairs; ``user_ids`` may be
        one int. Bad ids raise ValueError (:class:`LightFMIdError`,
        :class:`LightFMInputTypeError`)."""
        with lightfm_errors():
            return super().predict(
                id_array(user_ids),
                id_array(item_ids),
                item_features,
                user_features,
                integral(num_threads),
            )

    def predict_rank(
        self,
        test_interactions,
        train_interactions=None,
        item_features=None,
        user_features=None,
        num_threads: int = 1,
        check_intersections: bool = True,
    ):
        """LightFM's ``predict_rank``: for every test entry, how many items (not training items,
        not the item itself) score at least as high; a CSR matrix of float32 ranks shaped like
        ``test_interactions`` (0 is the top; ties are pessimistic)."""
        with lightfm_errors():
            return super().predict_rank(
                test_interactions,
                train_interactions,
                item_features,
                user_features,
                integral(num_threads),
                check_intersections,
            )

    def get_user_representations(self, features=None):
        """LightFM's: ``(biases, embeddings)`` of the users given by ``features`` (a dense array
        too, as LightFM converts it)."""
        with lightfm_errors():
            return super().get_user_representations(_sparse(features))

    def get_item_representations(self, features=None):
        """LightFM's: ``(biases, embeddings)`` of the items given by ``features``."""
        with lightfm_errors():
            return super().get_item_representations(_sparse(features))


def _sparse(features):
    """A dense feature matrix as CSR, as LightFM's representations convert it."""
    if features is None or sp.issparse(features):
        return features
    return sp.csr_matrix(features)


__all__ = ["LightFM"]

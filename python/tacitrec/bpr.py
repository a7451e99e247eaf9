"""Bayesian Personalized Ranking (Rendle et al. 2009) trained by parallel SGD, as implicit 0.7
implements it, plus what implicit lacks.

Factor layout (as implicit's): ``user_factors`` is ``n_users x (factors + 1)`` with a last column
of ones, ``item_factors`` is ``n_items x (factors + 1)`` with the item bias last, so that
``user_factors @ item_factors.T`` gives the scores ``x_u . y_i + b_i``.

Each epoch draws ``nnz`` samples: a uniformly drawn stored interaction ``(u, i)`` and a negative
item ``j``, then one SGD step on ``-ln sigma(x_u . (y_i - y_j) + b_i - b_j)`` with L2
regularisation of the touched parameters (implicit's update rule). A sample whose negative the
user already has (found by binary search in the user's sorted row) is skipped, as implicit does:
no update, counted in the ``skipped`` the callback gets.

Redraws (``max_redraws``, default 0): ``max_redraws=n`` draws such a negative again, up to ``n``
times, before skipping; with ``n=10`` practically every sample trains. That is more updates per
epoch, which helps a model that is still learning and hurts one that over-trains, as implicit's
100 epochs do on MovieLens-100K. ``deterministic=False`` (hogwild) is implicit's schedule and rule,
and tracks implicit at every length (training the same share of samples). The default's stratified
schedule draws each negative from the sample's item stratum, where it is more often one of the
user's items (fewer samples trained), and learns Last.fm-2K more slowly in the first epochs. The
measurements (quality against implicit's at 25, 50 and 100 epochs, and the share of samples
trained) are in benches/compare/RESULTS.md; ``python benches/compare/bpr_lmf.py --skip-speed
--bpr-iterations 25,50,100`` reproduces them.

Differences from implicit:

* ``max_redraws`` (above);
* ``negative_sampling="uniform"`` as well as implicit's ``"popularity"`` (the item of another
  random stored interaction);
* ``use_weights=True`` multiplies each sample's loss gradient by the interaction's stored value
  (keep the values around 1, e.g. ``log1p`` of counts); by default values are ignored;
* the default schedule is reproducible and cache-friendly (distributed SGD, Gemulla et al. 2011):
  users and items are split into S strata (one per 64 items, at most 32; users by id, items
  reshuffled every epoch); each epoch runs S rounds in which blocks of distinct user and item
  strata train in parallel, each drawing as many samples as it holds interactions, with
  negatives from its own item stratum (by popularity or uniformly within it). The factors are
  bit-identical for any ``num_threads`` given the same ``random_state``, and each block's
  factors stay in cache, so an epoch is faster than hogwild's (benches/compare/RESULTS.md; on
  Last.fm-2K it learns more slowly in the first epochs, above). ``deterministic=False``
  selects hogwild (implicit's schedule: threads draw from all interactions and update shared
  factors without locks; not reproducible);
* ``recommend(..., recalculate_user=True)`` folds the user in (implicit raises): from zero, with
  the item factors fixed, ``iterations`` passes of as many SGD steps as the user has items, with
  the training's learning rate, regularisation and negative sampling (by the item popularity seen
  in training);
* ``similar_items`` / ``similar_users`` compare the latent factors only (implicit's cosine
  includes the bias column).
"""

from __future__ import annotations

from typing import Any, Dict

import numpy as np

from . import _core
from ._sgd import SGDFactorizationBase
from .base import check_use_gpu
from ._validation import check_count, check_random_state

_SAMPLING = ("popularity", "uniform")
#: The most redraws of a negative: 10 already train practically every sample, and a user who
#: has (nearly) every item would otherwise redraw for minutes.
MAX_REDRAWS = 1000


class BayesianPersonalizedRanking(SGDFactorizationBase):
    """Matrix factorisation for pairwise ranking (BPR) by SGD.

    Parameters
    ----------
    factors : int
        Latent factors (the factor matrices have one more column: ones / item biases).
    learning_rate, regularization : float
        SGD step size and L2 regularisation.
    dtype : numpy dtype
        float32 or float64 (implicit's choices); training runs in float32 and the factors are
        float32 either way.
    iterations : int
        Epochs per ``fit`` (``nnz`` samples each).
    use_gpu : bool
        Must be False (implicit's keyword; tacitrec has no GPU path yet).
    num_threads : int
        Threads (0 = all cores).
    verify_negative_samples : bool
        Check each negative against the user's items (binary search); a negative the user has is
        redrawn up to ``max_redraws`` times, then the sample is skipped. False: only a negative
        equal to the positive is rejected.
    random_state : int, numpy Generator, RandomState or None
        Seed of the initial factors (drawn as implicit draws them) and of the sampling.
    negative_sampling : {"popularity", "uniform"}
        How negatives are drawn.
    use_weights : bool
        Scale each sample's gradient by the interaction's stored value.
    deterministic : bool
        The stratified schedule (default): the same ``random_state`` gives the same factors for
        any ``num_threads``, and it is the faster one. False: hogwild, as implicit.
    max_redraws : int
        Redraws of a negative the user has before the sample is skipped (at most 1000). Default
        0: skipped at once, as implicit; see the module docstring for the trade-off of
        redraws. A user who has every item is skipped without drawing.
    """

    _extra_columns = 1

    _flag_params = ("verify_negative_samples", "use_weights", "deterministic")

    def __init__(
        self,
        factors: int = 100,
        learning_rate: float = 0.01,
        regularization: float = 0.01,
        dtype=np.float32,
        iterations: int = 100,
        use_gpu: bool = False,
        num_threads: int = 0,
        verify_negative_samples: bool = True,
        random_state=None,
        negative_sampling: str = "popularity",
        use_weights: bool = False,
        deterministic: bool = True,
        max_redraws: int = 0,
    ):
        super().__init__(num_threads=num_threads)
        self.use_gpu = check_use_gpu(use_gpu)
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.dtype = dtype
        self.iterations = iterations
        self.verify_negative_samples = verify_negative_samples
        self.random_state = random_state
        self.negative_sampling = negative_sampling
        self.use_weights = use_weights
        self.deterministic = deterministic
        self.max_redraws = max_redraws

    def _check_params(self) -> None:
        super()._check_params()
        check_count(self.max_redraws, "max_redraws", minimum=0, maximum=MAX_REDRAWS)
        if self.negative_sampling not in _SAMPLING:
            raise ValueError(
                f"negative_sampling must be one of {_SAMPLING}, got {self.negative_sampling!r}"
            )

    def _hyper_parameters(self) -> Dict[str, Any]:
        """The keyword arguments that the training and folding-in kernels share."""
        return dict(
            learning_rate=float(self.learning_rate),
            regularization=float(self.regularization),
            verify_negative_samples=bool(self.verify_negative_samples),
            max_redraws=int(self.max_redraws),
            negative_sampling=self.negative_sampling,
        )

    def fit(self, user_items, show_progress: bool = True, callback=None):
        """Trains on ``user_items`` (users x items, any scipy sparse format; stored entries are
        the positives, explicit zeros dropped, negative values rejected).

        A second ``fit`` on data of the same shape continues from the current factors (as
        implicit); on another shape the factors are re-initialised. ``callback(epoch,
        elapsed_seconds, correct, skipped)`` is called after every epoch (implicit's
        signature). The progress bar shows the train AUC (share of trained samples whose
        positive already outscored the negative) and the share of redrawn negatives. Raises
        ModelFitError if the factors become NaN or infinite.
        """
        self._check_params()
        self._own_state()
        c = self._interactions(user_items, "user_items")
        n_users, n_items = c.shape
        self._check_fit_memory(n_users, n_items)
        rng = check_random_state(self.random_state)
        self._set_popularity(c)
        if not self._same_shape(n_users, n_items):
            # drawn as implicit 0.7 draws them: items, then users
            f = int(self.factors)
            # in place: the same values without a temporary the size of the factors
            items = rng.random((n_items, f + 1), dtype=np.float32)
            items -= np.float32(0.5)
            items /= np.float32(f)
            items[self._popularity == 0] = 0.0
            users = rng.random((n_users, f + 1), dtype=np.float32)
            users -= np.float32(0.5)
            users /= np.float32(f)
            users[np.diff(c.indptr) == 0] = 0.0
            users[:, f] = 1.0
            self._user_factors, self._item_factors = users, items

        def step(epoch):
            assert self._user_factors is not None and self._item_factors is not None  # drawn
            return _core.bpr_epoch(
                c,
                self._user_factors,
                self._item_factors,
                self._seed(rng),
                self._threads(),
                use_weights=bool(self.use_weights),
                deterministic=bool(self.deterministic),
                **self._hyper_parameters(),
            )

        def summary(epoch, counts):
            samples, correct, skipped, redrawn = counts
            postfix = None
            if samples:
                trained = samples - skipped
                postfix = {
                    "train_auc": f"{100.0 * correct / max(trained, 1):.2f}%",
                    "redrawn": f"{100.0 * redrawn / samples:.2f}%",
                }
            return postfix, (correct, skipped)

        return self._fit_epochs(
            step,
            summary=summary,
            desc="BPR",
            show_progress=show_progress,
            callback=callback,
            unit="epoch",
            hint=(
                f"learning_rate={self.learning_rate} is probably too large (or "
                "the weights, with use_weights=True)"
            ),
        )

    def _fold_in(self, c, ids: np.ndarray) -> np.ndarray:
        assert self._item_factors is not None  # the caller's _shape() raised otherwise
        return _core.bpr_fold_in(
            c,
            ids,
            self._item_factors,
            self._popularity,
            int(self.iterations),
            self._fold_in_seed(),
            self._threads(),
            **self._hyper_parameters(),
        )


__all__ = ["BayesianPersonalizedRanking"]

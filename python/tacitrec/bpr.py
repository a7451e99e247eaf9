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
epoch (MovieLens-100K: 28% more than the default, which trains 78% of the samples; Last.fm-2K:
6.5% more than 94%), which helps a model that is still learning and hurts one that over-trains, as
implicit's 100 epochs do on MovieLens-100K. Measured at implicit's defaults (100 factors,
learning rate and regularisation 0.01, popularity negatives), 80/20 split, mean of 10 seeds,
precision@10 / ndcg@10 as ratios to implicit 0.7.3's (which trains 82% and 96% of its samples):

==============  ==========  ===============  ===============  ===============
data            iterations  default (skip)   max_redraws=10   hogwild (skip)
==============  ==========  ===============  ===============  ===============
MovieLens-100K  25          0.991 / 0.982    1.115 / 1.086    0.992 / 0.986
MovieLens-100K  50          0.997 / 0.986    1.023 / 1.028    1.004 / 0.999
MovieLens-100K  100         1.024 / 1.029    0.915 / 0.920    0.998 / 1.001
Last.fm-2K      25          0.902 / 0.905    1.167 / 1.140    1.022 / 1.017
Last.fm-2K      50          0.969 / 0.975    1.048 / 1.044    0.992 / 0.998
Last.fm-2K      100         1.008 / 1.004    1.035 / 1.034    1.000 / 0.998
==============  ==========  ===============  ===============  ===============

"hogwild" is ``deterministic=False``: implicit's schedule and rule, which tracks implicit at every
length (and trains the same share of samples). The default's stratified schedule draws each
negative from the sample's item stratum, where it is more often one of the user's items (fewer
samples trained), and learns Last.fm-2K more slowly in the first epochs. ``python
benches/compare/bpr_lmf.py --skip-speed --bpr-iterations 25,50,100`` reproduces the table.

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
  factors stay in cache: measured 2.3x faster per epoch than hogwild (80,000 users x 10,000
  items x 3.9M interactions, 64 factors, 2 threads) at the same quality there (on
  Last.fm-2K it learns more slowly in the first epochs: table above). ``deterministic=False``
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

import time

import numpy as np
from tqdm.auto import tqdm

from . import _core
from ._sgd import SGDFactorizationBase
from .base import _Rollback, check_use_gpu
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
        0: skipped at once, as implicit; see the module docstring for the measured trade-off of
        redraws. A user who has every item is skipped without drawing.
    """

    _extra_columns = 1

    def __init__(self, factors: int = 100, learning_rate: float = 0.01,
                 regularization: float = 0.01, dtype=np.float32, iterations: int = 100,
                 use_gpu: bool = False, num_threads: int = 0,
                 verify_negative_samples: bool = True, random_state=None,
                 negative_sampling: str = "popularity", use_weights: bool = False,
                 deterministic: bool = True, max_redraws: int = 0):
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
        self._check_common()
        check_count(self.max_redraws, "max_redraws", minimum=0, maximum=MAX_REDRAWS)
        if self.negative_sampling not in _SAMPLING:
            raise ValueError(f"negative_sampling must be one of {_SAMPLING}, "
                             f"got {self.negative_sampling!r}")

    def _args(self):
        return (float(self.learning_rate), float(self.regularization),
                bool(self.verify_negative_samples), int(self.max_redraws),
                self.negative_sampling == "uniform")

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
        f = int(self.factors)
        rng = check_random_state(self.random_state)
        if not self._same_shape(n_users, n_items):
            # drawn as implicit 0.7 draws them: items, then users
            items = (rng.random((n_items, f + 1), dtype=np.float32) - np.float32(0.5))
            items /= np.float32(f)
            items[np.bincount(c.indices, minlength=n_items) == 0] = 0.0
            users = (rng.random((n_users, f + 1), dtype=np.float32) - np.float32(0.5))
            users /= np.float32(f)
            users[np.diff(c.indptr) == 0] = 0.0
            users[:, f] = 1.0
            self._user_factors, self._item_factors = users, items
        self._set_popularity(c)
        self._normed.clear()
        triple = c.triple()
        # Ctrl-C stops an epoch midway: its factors go back to the last completed one
        rollback = _Rollback([self._user_factors, self._item_factors])
        with tqdm(total=int(self.iterations), disable=not show_progress, desc="BPR") as bar:
            for epoch in range(int(self.iterations)):
                start = time.perf_counter()
                with rollback:
                    samples, correct, skipped, redrawn = _core.bpr_epoch(
                        triple, self._user_factors, self._item_factors, *self._args(),
                        bool(self.use_weights), bool(self.deterministic), self._seed(rng),
                        self._threads())
                self._normed.clear()
                self._check_finite(epoch, f"learning_rate={self.learning_rate} is probably too "
                                   "large (or the weights, with use_weights=True)")
                if samples:
                    trained = samples - skipped
                    bar.set_postfix({"train_auc": f"{100.0 * correct / max(trained, 1):.2f}%",
                                     "redrawn": f"{100.0 * redrawn / samples:.2f}%"})
                bar.update(1)
                if callback is not None:
                    callback(epoch, time.perf_counter() - start, correct, skipped)
        return self

    def _fold_in(self, c, ids: np.ndarray) -> np.ndarray:
        return _core.bpr_fold_in(c.triple(), ids, self._item_factors, *self._args(),
                                 self._popularity, int(self.iterations), self._fold_in_seed(),
                                 self._threads())


__all__ = ["BayesianPersonalizedRanking"]

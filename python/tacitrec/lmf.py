"""Logistic Matrix Factorization (Johnson 2014) as implicit 0.7 implements it.

Factor layout (as implicit's): ``user_factors`` is ``n_users x (factors + 2)`` holding the latent
factors, a column of ones and the user bias; ``item_factors`` holds the latent factors, the item
bias and a column of ones; so ``user_factors @ item_factors.T`` gives ``x_u . y_i + b_u + b_i``.

Each iteration updates every user, then every item, by one adagrad step on the row's
log-likelihood gradient: the row's positives weighted by their stored values, and sampled
negatives (the column of a uniformly drawn stored interaction, so by popularity; as implicit,
a negative is not checked against the row's positives), minus ``regularization`` times the row.

Differences from implicit:

* negatives per row: implicit 0.7 documents ``neg_prop`` times the row's number of positives but
  caps them at ``factors + 2`` (its loop bound reads the number of factor columns where the number
  of items was meant). tacitrec makes the cap a parameter: ``max_negatives="auto"`` (default)
  keeps implicit's effective ``factors + 2``, an int sets another cap, ``None`` samples exactly
  ``neg_prop`` times the positives. The default stays at implicit's behaviour because its default
  hyper-parameters only work with it: uncapped, the unit-weight negatives outweigh the positives
  thirtyfold and the model collapses (the ``max_negatives=None`` rows of
  benches/compare/RESULTS.md);
* the result does not depend on ``num_threads``: each row draws from its own generator;
* ``recommend(..., recalculate_user=True)`` folds the user in (implicit raises): from zero with
  the item factors fixed, ``iterations`` user steps with fresh adagrad accumulators, negatives
  drawn by the item popularity seen in training;
* ``similar_items`` / ``similar_users`` compare the latent factors only.
"""

from __future__ import annotations

from typing import Union

import numpy as np

from . import _core
from ._sgd import SGDFactorizationBase
from .base import check_use_gpu
from ._validation import check_count, check_random_state


#: The most negatives per positive: more only slows the fit (uncapped, the default 30 already
#: drowns the positives; see the module docstring).
MAX_NEG_PROP = 1000


class LogisticMatrixFactorization(SGDFactorizationBase):
    """Logistic matrix factorisation with adagrad.

    Parameters
    ----------
    factors : int
        Latent factors (the factor matrices have two more columns: biases and ones).
    learning_rate, regularization : float
        Adagrad step size and L2 regularisation.
    dtype : numpy dtype
        float32 or float64 (implicit's choices); training runs in float32 and the factors are
        float32 either way.
    iterations : int
        Iterations (a user half-step and an item half-step each) per ``fit``.
    neg_prop : int
        Negatives sampled per positive (at most 1000).
    use_gpu : bool
        Must be False (implicit's keyword; tacitrec has no GPU path yet).
    num_threads : int
        Threads (0 = all cores). Results are identical for any value.
    random_state : int, numpy Generator, RandomState or None
        Seed of the initial factors (drawn as implicit draws them) and of the sampling.
    max_negatives : "auto", int or None
        Cap on the negatives per row: "auto" is ``factors + 2`` (implicit 0.7's behaviour), None
        no cap (see the module docstring).
    """

    _extra_columns = 2

    def __init__(
        self,
        factors: int = 30,
        learning_rate: float = 1.0,
        regularization: float = 0.6,
        dtype=np.float32,
        iterations: int = 30,
        neg_prop: int = 30,
        use_gpu: bool = False,
        num_threads: int = 0,
        random_state=None,
        max_negatives: Union[str, int, None] = "auto",
    ):
        super().__init__(num_threads=num_threads)
        self.use_gpu = check_use_gpu(use_gpu)
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.dtype = dtype
        self.iterations = iterations
        self.neg_prop = neg_prop
        self.random_state = random_state
        self.max_negatives = max_negatives

    def _check_params(self) -> None:
        super()._check_params()
        check_count(self.neg_prop, "neg_prop", minimum=0, maximum=MAX_NEG_PROP)
        if self.max_negatives is not None and self.max_negatives != "auto":
            check_count(self.max_negatives, "max_negatives", minimum=0)

    def _step(self, c, x, g2, y, fixed, seed, popularity=None, ids=None) -> None:
        _core.lmf_half_step(
            c,
            x,
            g2,
            y,
            fixed,
            popularity,
            ids,
            seed,
            self._threads(),
            learning_rate=float(self.learning_rate),
            regularization=float(self.regularization),
            neg_prop=int(self.neg_prop),
            max_negatives=self.max_negatives,
        )

    def fit(self, user_items, show_progress: bool = True, callback=None):
        """Trains on ``user_items`` (users x items, any scipy sparse format; the stored values
        weight the positives, explicit zeros are dropped, negative values rejected).

        A second ``fit`` on data of the same shape continues from the current factors (with
        fresh adagrad accumulators, as implicit); on another shape the factors are
        re-initialised. ``callback(iteration, elapsed_seconds)`` is called after every
        iteration (implicit's signature). Raises ModelFitError if the factors become NaN or
        infinite.
        """
        self._check_params()
        self._own_state()
        cu = self._interactions(user_items, "user_items")
        self._check_fit_memory(*cu.shape)
        ci = self._interactions(cu.to_scipy().T.tocsr(), "user_items (transposed)")
        n_users, n_items = cu.shape
        f = int(self.factors)
        rng = check_random_state(self.random_state)
        if not self._same_shape(n_users, n_items):
            # drawn as implicit 0.7 draws them: items, then users
            items = rng.standard_normal((n_items, f + 2), dtype=np.float32)
            items[:, -1] = 1.0
            items[np.diff(ci.indptr) == 0] = 0.0
            users = rng.standard_normal((n_users, f + 2), dtype=np.float32)
            users[:, -2] = 1.0
            users[np.diff(cu.indptr) == 0] = 0.0
            self._user_factors, self._item_factors = users, items
        self._set_popularity(cu)
        g2_users = np.zeros_like(self._user_factors)
        g2_items = np.zeros_like(self._item_factors)

        def step(iteration):
            self._step(cu, self._user_factors, g2_users, self._item_factors, f, self._seed(rng))
            self._step(ci, self._item_factors, g2_items, self._user_factors, f + 1, self._seed(rng))

        return self._fit_epochs(
            step,
            desc="LMF",
            show_progress=show_progress,
            callback=callback,
            unit="epoch",
            hint=(
                f"learning_rate={self.learning_rate} is probably too large or "
                f"regularization={self.regularization} too small"
            ),
        )

    def _fold_in(self, c, ids: np.ndarray) -> np.ndarray:
        f = int(self.factors)
        x = np.zeros((len(ids), f + 2), dtype=np.float32)
        x[:, f] = 1.0
        g2 = np.zeros_like(x)
        pop = (
            self._popularity
            if self._popularity is not None
            else np.ones(c.shape[1], dtype=np.float32)
        )
        seed = self._fold_in_seed()
        for it in range(int(self.iterations)):
            self._step(c, x, g2, self._item_factors, f, seed + it, pop, ids)
        return x


__all__ = ["LogisticMatrixFactorization"]

"""Implicit alternating least squares (Hu, Koren & Volinsky 2008), as implicit 0.7 implements it.

Confidence and preference follow implicit 0.7 exactly, which is *not* the paper's ``1 + alpha r``:

* a stored value ``r > 0`` means preference 1 with confidence ``alpha * r``;
* a stored value ``r < 0`` means preference 0 (disliked) with confidence ``|alpha * r|``;
* a missing entry means preference 0 with confidence 1.

So with ``alpha=1`` a play count of 1 carries the same confidence as a missing entry (only the
preference differs). To get the paper's ``c = 1 + alpha r``, pass ``1 + alpha * r`` as the values
with ``alpha=1``::

    weighted = user_items.copy(); weighted.data = 1 + 40 * weighted.data
    AlternatingLeastSquares(alpha=1.0).fit(weighted)

Each row solves ``(YtY + reg I + sum_i (c_ui - 1) y_i y_i^T) x_u = sum_i c_ui p_ui y_i`` with a
constant regularisation; users are solved, then items, every iteration.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import scipy.linalg

from . import _core
from ._validation import (Csr, all_finite, as_csr, at_most_columns, check_count, check_ids,
                          check_random_state)
from .base import MatrixFactorizationBase, check_use_gpu


class AlternatingLeastSquares(MatrixFactorizationBase):
    """Implicit-feedback matrix factorisation by alternating least squares.

    Parameters
    ----------
    factors : int
        Number of latent factors.
    regularization : float
        L2 regularisation (constant, not scaled by the number of interactions).
    alpha : float
        Confidence scale of the stored values (see the module docstring for the convention).
    dtype : numpy dtype
        float32 or float64 (implicit's choices); the Rust kernels compute in float32 and the
        factors are float32 either way.
    use_native : bool
        Accepted for implicit's signature (its pure-Python solver); tacitrec always runs its
        Rust solver.
    use_cg : bool
        Conjugate-gradient solver (fast, warm-started, ``cg_steps`` steps per row) instead of an
        exact Cholesky solve.
    use_gpu : bool
        Must be False (implicit's keyword; tacitrec has no GPU path yet).
    iterations : int
        ALS iterations per ``fit``.
    calculate_training_loss : bool
        Compute implicit's training loss after every iteration (shown on the progress bar and
        passed to the callback).
    num_threads : int
        Threads (0 = all cores). Results are identical for any value.
    random_state : int, numpy Generator, RandomState or None
        Seed of the initial factors (uniform in [0, 0.01), drawn as implicit draws them, so the
        same seed gives the same starting point in both libraries).
    cg_steps : int
        Conjugate-gradient steps per row and half-iteration (implicit fixes 3).
    """

    def __init__(self, factors: int = 100, regularization: float = 0.01, alpha: float = 1.0,
                 dtype=np.float32, use_native: bool = True, use_cg: bool = True,
                 use_gpu: bool = False, iterations: int = 15,
                 calculate_training_loss: bool = False, num_threads: int = 0,
                 random_state=None, cg_steps: int = 3):
        super().__init__(num_threads=num_threads)
        self.use_gpu = check_use_gpu(use_gpu)
        self.use_native = bool(use_native)
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.dtype = dtype
        self.use_cg = use_cg
        self.cg_steps = cg_steps
        self.iterations = iterations
        self.calculate_training_loss = calculate_training_loss
        self.random_state = random_state

    _count_params = {"factors": (1, None), "iterations": (0, None), "cg_steps": (1, None)}
    _nonnegative_params = ("regularization", "alpha")

    # ---- helpers ------------------------------------------------------------------------------
    def _confidence(self, X, name: str, n_cols: Optional[int] = None) -> Csr:
        c = as_csr(X, name, n_cols=n_cols)
        if self.alpha != 1.0:
            with np.errstate(over="ignore"):
                data = (c.data * np.float32(self.alpha)).astype(np.float32, copy=False)
            if not all_finite(data):
                raise ValueError(f"{name} times alpha={self.alpha} overflows float32")
            c = Csr(c.indptr, c.indices, data, c.shape)
        return c

    def _solve(self, c: Csr, x: np.ndarray, y: np.ndarray, exact: bool) -> None:
        solver = "cholesky" if (exact or not self.use_cg) else "cg"
        _core.als_solve(c, x, y, float(self.regularization), solver, int(self.cg_steps),
                        self._threads())

    # ---- fit ----------------------------------------------------------------------------------
    def fit(self, user_items, show_progress: bool = True, callback=None):
        """Factorises ``user_items`` (users x items confidences, any scipy sparse format).

        A second ``fit`` on data of the same shape continues from the current factors (as
        implicit); on another shape the factors are re-initialised. ``callback(iteration,
        elapsed_seconds, loss_or_None)`` is called after every iteration. Raises ModelFitError
        if the factors become NaN or infinite.
        """
        self._check_params()
        self._own_state()
        Cui = self._confidence(user_items, "user_items")
        Ciu = as_csr(Cui.to_scipy().T.tocsr(), "user_items (transposed)")
        n_users, n_items = Cui.shape
        if not self._same_shape(n_users, n_items):
            f = int(self.factors)
            rng = check_random_state(self.random_state)
            self._user_factors = rng.random((n_users, f), dtype=np.float32) * np.float32(0.01)
            self._item_factors = rng.random((n_items, f), dtype=np.float32) * np.float32(0.01)

        def step(iteration):
            assert self._user_factors is not None and self._item_factors is not None  # drawn
            self._solve(Cui, self._user_factors, self._item_factors, exact=False)
            self._solve(Ciu, self._item_factors, self._user_factors, exact=False)

        def summary(iteration, _):
            assert self._user_factors is not None and self._item_factors is not None  # drawn
            if not self.calculate_training_loss:
                return None, (None,)
            loss = _core.als_loss(Cui, self._user_factors, self._item_factors,
                                  float(self.regularization), self._threads())
            return {"loss": f"{loss:.5f}"}, (loss,)

        return self._fit_epochs(
            step, summary=summary, desc="ALS", show_progress=show_progress, callback=callback,
            unit="iteration",
            hint=(f"the confidences (values times alpha={self.alpha}) are probably too large "
                  f"for float32, or regularization={self.regularization} too small; scale the "
                  "data down (e.g. log1p or bm25_weight) or raise regularization"))

    # ---- recalculation ------------------------------------------------------------------------
    def _recalculate(self, ids, rows, name_ids: str, name_rows: str, side: str):
        self._shape()
        fixed = self._item_factors if side == "user" else self._user_factors
        assert fixed is not None  # _shape() raised otherwise
        other = "item" if side == "user" else "user"
        ids_arr, scalar, c = self._rows_per_id(
            ids, rows, (name_ids, name_rows),
            lambda m, name: at_most_columns(self._confidence(m, name), fixed.shape[0], name,
                                            other))
        out = np.zeros((len(ids_arr), fixed.shape[1]), dtype=np.float32)
        self._solve(c, out, fixed, exact=True)
        return out[0] if scalar else out

    def recalculate_user(self, userid, user_items):
        """The exact factors of users (scalar or array) from their rows of ``user_items`` (one row
        per id), solved against the current item factors; not stored (see
        :meth:`partial_fit_users`). Any non-negative id is accepted: new users included. The
        rows may have fewer columns than the model has items (the items beyond have no
        interactions), as in implicit."""
        return self._recalculate(userid, user_items, "userid", "user_items", "user")

    def recalculate_item(self, itemid, item_users):
        """The exact factors of items from their rows of ``item_users`` (items x users, one row
        per id), solved against the current user factors; not stored."""
        return self._recalculate(itemid, item_users, "itemid", "item_users", "item")

    def _partial_fit(self, ids, rows, side: str) -> None:
        ids_arr, _ = check_ids(ids, None, "userids" if side == "user" else "itemids")
        ids_arr = np.atleast_1d(ids_arr)
        self._own_state()
        new = self._recalculate(ids_arr, rows, "userids" if side == "user" else "itemids",
                                "user_items" if side == "user" else "item_users", side)
        attr = "_user_factors" if side == "user" else "_item_factors"
        current = getattr(self, attr)
        if len(ids_arr) and ids_arr.max() >= current.shape[0]:
            grown = np.zeros((int(ids_arr.max()) + 1, current.shape[1]), dtype=np.float32)
            grown[:current.shape[0]] = current
            current = grown
        current[ids_arr] = new
        setattr(self, attr, current)
        self._normed.clear()

    def partial_fit_users(self, userids, user_items) -> None:
        """Recomputes the factors of ``userids`` from their full rows of ``user_items`` (one row
        per id) and stores them; ids beyond the current number of users grow the model (rows in
        between are zero)."""
        self._shape()
        self._partial_fit(userids, user_items, "user")

    def partial_fit_items(self, itemids, item_users) -> None:
        """Recomputes the factors of ``itemids`` from their full rows of ``item_users`` (items x
        users) and stores them; ids beyond the current number of items grow the model."""
        self._shape()
        self._partial_fit(itemids, item_users, "item")

    # ---- explanations -------------------------------------------------------------------------
    def explain(self, userid, user_items, itemid, user_weights=None, N: int = 10):
        """Why ``itemid`` scores as it does for ``userid`` (Hu et al., section 5), as implicit.

        ``user_items`` is the user's row (one row) or a users x items matrix indexed by
        ``userid`` (implicit's convention). Returns ``(total_score, top_contributions,
        user_weights)``: the score, the ``N`` largest ``(itemid, contribution)`` pairs of the
        user's items, and the Cholesky factor of the user's weighted matrix, which can be passed
        back in to explain more items for the same user quickly.
        """
        _, n_items = self._shape()
        N = check_count(N, "N")
        (userid,), scalar = check_ids(userid, None, "userid", "users")
        if not scalar:
            raise ValueError("userid must be one user id: explain explains one user's score")
        (itemid,), _ = check_ids(itemid, n_items, "itemid", "items")
        assert self._item_factors is not None  # _shape() raised otherwise
        c = self._confidence(user_items, "user_items", n_cols=n_items)
        row = 0 if c.shape[0] == 1 else int(userid)
        if row >= c.shape[0]:
            raise IndexError(f"userid {userid} is out of range for user_items with "
                             f"{c.shape[0]} rows")
        lo, hi = c.indptr[row], c.indptr[row + 1]
        items, conf = c.indices[lo:hi], c.data[lo:hi].astype(np.float64)
        Y = self._item_factors.astype(np.float64)
        if user_weights is None:
            A = Y.T @ Y + self.regularization * np.eye(Y.shape[1])
            Yu = Y[items]
            A += Yu.T @ ((np.abs(conf) - 1)[:, None] * Yu)
            user_weights = scipy.linalg.cho_factor(A)
        weighted_item = scipy.linalg.cho_solve(user_weights, Y[itemid])
        keep = conf > 0
        scores = (Y[items[keep]] @ weighted_item) * conf[keep]
        order = np.lexsort((items[keep], -scores))[:N]
        top = [(int(items[keep][k]), float(scores[k])) for k in order]
        return float(scores.sum()), top, user_weights


__all__ = ["AlternatingLeastSquares"]

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

iALS as Rendle, Zhang & Koren tuned it
--------------------------------------
Rendle, Zhang & Koren (2022), "Revisiting the Performance of iALS on Item Recommendation
Benchmarks" (RecSys 2022, arXiv:2110.14037) show that iALS is competitive with far newer models
given three options, all available here:

* ``unobserved_weight`` (their alpha_0): the objective becomes
  ``sum_obs c_ui (p_ui - s_ui)^2 + alpha_0 sum_all_ui s_ui^2`` (``s_ui = x_u . y_i``): observed
  pairs are pulled to their preference with weight ``c_ui`` (the value times ``alpha``; 1 for
  binary data with ``alpha=1``, the paper's setting) and *every* pair, observed ones included, is
  pushed to 0 with weight alpha_0. Each row solves
  ``(alpha_0 YtY + sum_obs |c_ui| y_i y_i^T + reg_u I) x_u = sum_obs c_ui p_ui y_i``.
* ``regularization_exponent`` (nu): frequency-scaled regularisation,
  ``reg_u = regularization * (|I_u| + alpha_0 |I|)^nu`` for a user with ``|I_u|`` items out of
  ``|I|`` (items likewise with ``|U_i| + alpha_0 |U|``). Without ``unobserved_weight`` it is
  ``regularization * |I_u|^nu``: ``nu=1`` is Spark MLlib's count-scaled regularisation
  (``regParam * numRatings``, Zhou et al. 2008's ALS-WR).
* ``init_std`` (their ``stddev``): initial factors drawn from ``N(0, init_std / sqrt(factors))``.

How today's (implicit's) objective relates. With ``unobserved_weight=None`` the objective is
``sum_obs c (p - s)^2 + sum_missing s^2``: a missing pair weighs 1 and an observed one weighs
its confidence *instead* (``YtY`` counts it once, so its system has ``c - 1``). On binary data
with confidence ``c = alpha > 1``, dividing by ``c - 1`` and completing the square gives
``sum_obs (t - s)^2 + alpha_0 sum_all s^2 + (reg / (c - 1)) (|X|^2 + |Y|^2)`` with
``t = c / (c - 1)`` and ``alpha_0 = 1 / (c - 1)``; scaling the factors by ``sqrt(t)`` turns the
target ``t`` into 1. So implicit's ALS with ``alpha = c`` and ``regularization = reg`` has the
same minimisers, with every score multiplied by ``t``, as the paper's objective with
``unobserved_weight = 1 / (c - 1)`` and ``regularization = reg / c`` (``nu = 0``); one exact ALS
step of the one maps onto the other (``tests/python/test_ials.py`` checks it). Non-binary values
or ``c <= 1`` have no such counterpart.

The iALS++ solver (``solver="ials++"``; Rendle, Zhang & Koren 2021, "iALS++: Speeding up Matrix
Factorization with Subspace Optimization", arXiv:2110.14044) minimises the same objective by block
coordinate descent: every epoch visits the factors in blocks of ``block_size`` and sets each
user's block to its exact minimiser with everything else fixed, then each item's. Its cost per
epoch grows with ``factors * block_size`` per interaction instead of ``factors^2`` (Cholesky), so
it is the solver for large embeddings (``factors`` of 256 and more); with
``block_size >= factors`` an epoch is an exact (Cholesky) ALS epoch.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import scipy.linalg

from . import _core
from ._validation import (
    Csr,
    all_finite,
    as_csr,
    at_most_columns,
    check_count,
    check_fits_in_memory,
    check_flag,
    check_ids,
    check_nonnegative,
    check_random_state,
)
from .base import _SHAPE_HINT, MatrixFactorizationBase, check_use_gpu


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
    unobserved_weight : float or None
        alpha_0 of Rendle et al. (2022): the weight with which every user-item pair, observed ones
        included, is pushed to 0 (see the module docstring); the paper tunes it around 0.1 to 1
        with binary data and ``alpha=1``. None (default) keeps implicit's convention (missing
        pairs weigh 1, observed ones their confidence instead).
    regularization_exponent : float
        nu >= 0 of the frequency-scaled regularisation
        ``regularization * (|I_u| + alpha_0 |I|)^nu`` (without ``unobserved_weight``:
        ``regularization * |I_u|^nu``); 0 (default) is a constant ``regularization``. Rendle et
        al. use 1.
    init_std : float or None
        Draw the initial factors from ``N(0, init_std / sqrt(factors))`` (the paper's ``stddev``,
        0.1 in its experiments) with ``random_state``; must be > 0 (all-zero factors never
        move). None (default): implicit's uniform ``[0, 0.01)``.
    solver : {"cg", "cholesky", "ials++"} or None
        The solver; None (default) follows ``use_cg`` ("cg" or "cholesky"); when given it
        overrides ``use_cg``. "ials++" is the subspace solver of Rendle et al. (2021), for large
        ``factors``.
    block_size : int
        Factors per block of the "ials++" solver (capped at ``factors``); 128, the default of the
        paper's code. Smaller blocks make an epoch cheaper and each epoch's progress smaller.
    """

    def __init__(
        self,
        factors: int = 100,
        regularization: float = 0.01,
        alpha: float = 1.0,
        dtype=np.float32,
        use_native: bool = True,
        use_cg: bool = True,
        use_gpu: bool = False,
        iterations: int = 15,
        calculate_training_loss: bool = False,
        num_threads: int = 0,
        random_state=None,
        cg_steps: int = 3,
        unobserved_weight: Optional[float] = None,
        regularization_exponent: float = 0.0,
        init_std: Optional[float] = None,
        solver: Optional[str] = None,
        block_size: int = 128,
    ):
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
        self.unobserved_weight = unobserved_weight
        self.regularization_exponent = regularization_exponent
        self.init_std = init_std
        self.solver = solver
        self.block_size = block_size

    _count_params = {
        "factors": (1, None),
        "iterations": (0, None),
        "cg_steps": (1, None),
        "block_size": (1, None),
    }
    _nonnegative_params = ("regularization", "alpha", "regularization_exponent")
    _flag_params = ("use_cg", "calculate_training_loss")
    _solvers = ("cg", "cholesky", "ials++")

    def _check_params(self) -> None:
        super()._check_params()
        if self.unobserved_weight is not None:
            check_nonnegative(self.unobserved_weight, "unobserved_weight")
        # all-zero factors are a fixed point of ALS: every factor and score would stay 0
        if self.init_std is not None and check_nonnegative(self.init_std, "init_std") == 0:
            raise ValueError("init_std must be > 0 (zero factors never move under ALS), got 0")
        if self.solver is not None and self.solver not in self._solvers:
            raise ValueError(
                f"solver must be one of {', '.join(map(repr, self._solvers))} or "
                f"None (follow use_cg), got {self.solver!r}"
            )

    def _solver(self) -> str:
        if self.solver is not None:
            return self.solver
        return "cg" if self.use_cg else "cholesky"

    def _objective(self) -> dict:
        """The objective's hyper-parameters as the Rust kernels take them (keywords)."""
        w = self.unobserved_weight
        return dict(
            regularization=float(self.regularization),
            unobserved_weight=None if w is None else float(w),
            regularization_exponent=float(self.regularization_exponent),
        )

    def _solver_params(self, exact: bool) -> dict:
        """The keywords of ``_core.als_solve``: the objective's, the solver (Cholesky when
        ``exact``) and ``cg_steps``."""
        solver = "cholesky" if (exact or self._solver() != "cg") else "cg"
        return dict(self._objective(), solver=solver, cg_steps=int(self.cg_steps))

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
        _core.als_solve(c, x, y, self._threads(), **self._solver_params(exact))

    def _init_factors(self, n: int, f: int, rng: np.random.Generator) -> np.ndarray:
        if self.init_std is None:
            # scaled in place: no temporary the size of the factors to fault in (the same values)
            out = rng.random((n, f), dtype=np.float32)
            out *= np.float32(0.01)
            return out
        scale = float(self.init_std) / np.sqrt(f)
        return rng.normal(0.0, scale, size=(n, f)).astype(np.float32)

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
        self._check_fit_memory(*Cui.shape)
        Ciu = as_csr(Cui.to_scipy().T.tocsr(), "user_items (transposed)")
        n_users, n_items = Cui.shape
        if not self._same_shape(n_users, n_items):
            f = int(self.factors)
            rng = check_random_state(self.random_state)
            self._user_factors = self._init_factors(n_users, f, rng)
            self._item_factors = self._init_factors(n_items, f, rng)
        subspace = self._solver() == "ials++"

        def step(iteration):
            assert self._user_factors is not None and self._item_factors is not None  # drawn
            if subspace:
                _core.als_ials_epoch(
                    Cui,
                    self._user_factors,
                    self._item_factors,
                    self._threads(),
                    block_size=int(self.block_size),
                    **self._objective(),
                )
                return
            self._solve(Cui, self._user_factors, self._item_factors, exact=False)
            self._solve(Ciu, self._item_factors, self._user_factors, exact=False)

        def summary(iteration, _):
            assert self._user_factors is not None and self._item_factors is not None  # drawn
            if not self.calculate_training_loss:
                return None, (None,)
            loss = _core.als_loss(
                Cui,
                self._user_factors,
                self._item_factors,
                self._threads(),
                **self._objective(),
            )
            return {"loss": f"{loss:.5f}"}, (loss,)

        return self._fit_epochs(
            step,
            summary=summary,
            desc="ALS",
            show_progress=show_progress,
            callback=callback,
            unit="iteration",
            hint=(
                f"the confidences (values times alpha={self.alpha}) are probably too large "
                f"for float32, or regularization={self.regularization} too small; scale the "
                "data down (e.g. log1p or bm25_weight) or raise regularization"
            ),
        )

    # ---- recalculation ------------------------------------------------------------------------
    def _recalculate(self, ids, rows, name_ids: str, name_rows: str, side: str):
        self._shape()
        fixed = self._item_factors if side == "user" else self._user_factors
        assert fixed is not None  # _shape() raised otherwise
        other = "item" if side == "user" else "user"
        ids_arr, scalar, c = self._rows_per_id(
            ids,
            rows,
            (name_ids, name_rows),
            lambda m, name: at_most_columns(self._confidence(m, name), fixed.shape[0], name, other),
        )
        out = np.zeros((len(ids_arr), fixed.shape[1]), dtype=np.float32)
        # the fixed side's Gram matrix, kept between calls while those factors do not change
        # (computing it reads the whole side: 25 ms at 200,000 items x 64 factors)
        gram = self._derived_from(fixed, other, "gram", _core.als_gram)
        _core.als_solve(
            c, out, fixed, self._threads(), gram=gram, **self._solver_params(exact=True)
        )
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
        attr = "_user_factors" if side == "user" else "_item_factors"
        rows_now, width = getattr(self, attr).shape
        if len(ids_arr) and ids_arr.max() >= rows_now:
            n = int(ids_arr.max()) + 1
            check_fits_in_memory(
                n * width * 4,
                f"growing {type(self).__name__}'s {side} factors to {n:,} rows of {width} floats",
                _SHAPE_HINT,
            )
        self._own_state()
        new = self._recalculate(
            ids_arr,
            rows,
            "userids" if side == "user" else "itemids",
            "user_items" if side == "user" else "item_users",
            side,
        )
        current = getattr(self, attr)
        if len(ids_arr) and ids_arr.max() >= current.shape[0]:
            grown = np.zeros((int(ids_arr.max()) + 1, current.shape[1]), dtype=np.float32)
            grown[: current.shape[0]] = current
            current = grown
        current[ids_arr] = new
        setattr(self, attr, current)
        self._forget()

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

        ``userid`` and ``itemid`` are single ids (a list raises ValueError); ``user_weights``
        must be the ``(c, lower)`` tuple of ``scipy.linalg.cho_factor`` with ``c`` finite and
        factors x factors, as returned here (anything else raises TypeError or ValueError).
        """
        _, n_items = self._shape()
        N = check_count(N, "N")
        userids, scalar = check_ids(userid, None, "userid", "users")
        if not scalar:
            raise ValueError("userid must be one user id: explain explains one user's score")
        itemids, scalar = check_ids(itemid, n_items, "itemid", "items")
        if not scalar:
            raise ValueError("itemid must be one item id: explain explains one item's score")
        userid, itemid = int(userids[0]), int(itemids[0])
        assert self._item_factors is not None  # _shape() raised otherwise
        c = self._confidence(user_items, "user_items", n_cols=n_items)
        row = 0 if c.shape[0] == 1 else int(userid)
        if row >= c.shape[0]:
            raise IndexError(
                f"userid {userid} is out of range for user_items with {c.shape[0]} rows"
            )
        lo, hi = c.indptr[row], c.indptr[row + 1]
        items, conf = c.indices[lo:hi], c.data[lo:hi].astype(np.float64)
        Y = self._item_factors
        if user_weights is None:
            # the user's normal equations under the model's objective (module docstring)
            w = self.unobserved_weight
            g, offset = (1.0, 1.0) if w is None else (float(w), 0.0)
            reg = float(self.regularization)
            if self.regularization_exponent:
                n = len(items) + (0.0 if w is None else float(w) * n_items)
                reg *= n ** float(self.regularization_exponent)
            # Y^T Y as the solvers use it, kept between calls (see _recalculate)
            gram = self._derived_from(Y, "item", "gram", _core.als_gram)
            A = g * gram + reg * np.eye(Y.shape[1])
            Yu = Y[items].astype(np.float64)
            A += Yu.T @ ((np.abs(conf) - offset)[:, None] * Yu)
            user_weights = scipy.linalg.cho_factor(A)
        else:
            user_weights = _check_cholesky(user_weights, Y.shape[1])
        weighted_item = scipy.linalg.cho_solve(user_weights, Y[itemid].astype(np.float64))
        keep = conf > 0
        scores = (Y[items[keep]].astype(np.float64) @ weighted_item) * conf[keep]
        order = np.lexsort((items[keep], -scores))[:N]
        top = [(int(items[keep][k]), float(scores[k])) for k in order]
        return float(scores.sum()), top, user_weights


def _check_cholesky(user_weights, n_factors: int):
    """``user_weights`` as :meth:`AlternatingLeastSquares.explain` returns it: the ``(c, lower)``
    Cholesky factorisation (``scipy.linalg.cho_factor``) of a factors x factors matrix, with
    finite real values. Raises TypeError or ValueError naming ``user_weights``."""
    what = (
        "the (c, lower) Cholesky factorisation explain returned, c of shape "
        f"({n_factors}, {n_factors}) (factors x factors)"
    )
    if not isinstance(user_weights, (tuple, list)) or len(user_weights) != 2:
        raise TypeError(f"user_weights must be {what}, got {type(user_weights).__name__}")
    c, lower = user_weights
    c = np.asarray(c)
    if c.dtype.kind not in "biuf":
        raise TypeError(f"user_weights must be {what}; its c has dtype {c.dtype}")
    if c.shape != (n_factors, n_factors):
        raise ValueError(f"user_weights must be {what}; its c has shape {c.shape}")
    if not np.isfinite(c).all():
        raise ValueError("user_weights contains NaN or infinite values")
    return c, check_flag(lower, "user_weights' lower")


__all__ = ["AlternatingLeastSquares"]

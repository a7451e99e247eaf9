"""Graph spectral filters for collaborative filtering: GF-CF, BSPM and ChebyCF as settings of one
class, :class:`SpectralFilterRecommender`.

All three filter a user's interaction row ``r_u`` on the normalised item graph
``R~ = D_U^-a R D_I^-b`` (``a = b = 1/2`` in the papers): with the linear filter
``P = R~^T R~`` (applied as two sparse products per batch of users, never materialised) and an
ideal low-pass term built from the ``k`` leading right singular vectors ``V`` of ``R~``
(a randomized truncated SVD in Rust). Training is the normalisation and the SVD; there are no
learned parameters.
"""

from __future__ import annotations

import numbers
import time
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
from tqdm.auto import tqdm

from . import _core
from ._validation import (
    Csr,
    ValidatedOnce,
    all_finite,
    as_csr,
    as_state_array,
    as_state_csr,
    csr_state,
    check_count,
    check_fits_in_memory,
)
from .base import _SHAPE_HINT, RecommenderBase
from .exceptions import ModelFormatError, NotFittedError

METHODS = ("gf-cf", "bspm", "chebycf")

#: Published settings on Gowalla (the defaults when ``factors`` / ``ideal_weight`` are None).
_DEFAULT_FACTORS = {"gf-cf": 256, "bspm": 448, "chebycf": 512}
_DEFAULT_IDEAL_WEIGHT = {"gf-cf": 0.3, "bspm": 0.2, "chebycf": 0.2}
_Ode = Tuple[str, float, int]  # an ODE's solver, time and steps


#: The largest ChebyCF ``order`` accepted: the filter costs ``order`` sparse products per
#: batch and its coefficients ``order**2`` operations (the published settings use 8).
MAX_CHEBYCF_ORDER = 10_000


def chebycf_coefficients(order: int, flatness: float) -> np.ndarray:
    """ChebyCF's Chebyshev interpolation coefficients of its plateau transfer function, as in the
    authors' ``ChebyFilter.fit``: the plateau ``0.5 +- 0.5 |x|^flatness`` evaluated at
    ``cos((K - n) pi / K)`` (rounded to 3 decimals, as there), paired with the Chebyshev nodes
    ``cos((K + 1.5 - j) pi / (K + 1))``, ``j = 1..K+1``, and ``c_n = 2/(K+1) sum_j f_j
    T_n(node_j)``, ``c_0`` halved."""
    K = order
    x = np.round(np.cos((K - np.arange(K + 1)) / K * np.pi), 3)
    target = np.where(x < 0, np.abs(x) ** flatness * 0.5 + 0.5, np.abs(x) ** flatness * -0.5 + 0.5)
    target = np.round(target, 3)
    nodes = np.cos(((K + 1) + 0.5 - np.arange(1, K + 2)) / (K + 1) * np.pi)
    # T_n(node) * target by the recurrence, two rows at a time (memory O(K), not O(K^2))
    sums = np.empty(K + 1)
    previous, current = target, nodes * target
    sums[0] = previous.sum()
    if K >= 1:
        sums[1] = current.sum()
    for n in range(2, K + 1):
        previous, current = current, 2 * nodes * current - previous
        sums[n] = current.sum()
    coeffs = sums * (2 / (K + 1))
    coeffs[0] /= 2
    return coeffs


def _number(value, name: str, low: Optional[float] = None, strict: bool = False) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    v = float(value)
    if not np.isfinite(v) or (low is not None and (v <= low if strict else v < low)):
        bound = "" if low is None else f" {'>' if strict else '>='} {low}"
        raise ValueError(f"{name} must be a finite number{bound}, got {value!r}")
    return v


def _solver(value, name: str) -> str:
    if value not in ("euler", "rk4"):
        raise ValueError(f"{name} must be 'euler' or 'rk4', got {value!r}")
    return value


class SpectralFilterRecommender(RecommenderBase):
    """Graph-filter recommenders on the normalised item graph: GF-CF, BSPM and ChebyCF.

    ``R~ = D_U^-a R D_I^-b`` (``a = user_exponent``, ``b = item_exponent``; the degrees are the
    row and column sums of ``R``, 0/1 with ``binary``), ``P = R~^T R~``, ``V`` the ``factors``
    leading right singular vectors of ``R~``, ``D = D_I``, and ``r`` a user's (0/1) row:

    ============= ==================================================================================
    method        scores
    ============= ==================================================================================
    ``"gf-cf"``   Shen et al., "How Powerful is Graph Convolution for Recommendation?", CIKM 2021:
                  ``r P + w r D^-b V V^T D^b``.
    ``"bspm"``    Choi et al., "Blurring-Sharpening Process Models for Collaborative Filtering",
                  SIGIR 2023: blurring ``dx/dt = x P - x`` (``blur_*``) from ``r``; the ideal
                  low-pass ODE ``dx/dt = x D^-b V V^T D^b - x`` (``ideal_*``); sharpening
                  ``dx/dt = -x P`` (``sharpen_*``) started from ``blur + w ideal``
                  (``final_sharpening=True``, "early merge") or from ``blur`` with ``w ideal``
                  added after ("late merge"); ``t_point_combination`` averages the states at every
                  time point instead of taking the last. Fixed-step ``euler``/``rk4`` on the grid
                  ``linspace(0, T, steps + 1)``, as torchdiffeq in the authors' code.
    ``"chebycf"`` Kim et al., "Graph Spectral Filtering with Chebyshev Interpolation for
                  Recommendation", SIGIR 2025: ``D^g (sum_n c_n T_n(I - 2P) + w V V^T) D^-g r``,
                  the degree-``order`` Chebyshev interpolant of a plateau with ``flatness``
                  (``g = degree_power``).
    ============= ==================================================================================

    Published settings (Recall@20 / NDCG@20 on the LightGCN splits; Gowalla is the default):

    ======================= ========================================================================
    data set                settings
    ======================= ========================================================================
    GF-CF Gowalla, Yelp2018 ``factors=256, ideal_weight=0.3`` (0.1849 / 0.1518 on Gowalla)
    GF-CF Amazon-book       ``ideal_weight=0`` (linear filter only)
    BSPM Gowalla            ``factors=448, ideal_weight=0.2, sharpen_solver="rk4", sharpen_steps=1,
                            sharpen_time=2.5, final_sharpening=True`` (0.1920 / 0.1597)
    BSPM Yelp2018           ``factors=384, ideal_weight=0.3, sharpen_solver="euler",
                            sharpen_steps=1, sharpen_time=1.2, final_sharpening=True,
                            t_point_combination=True``
    BSPM Amazon-book        ``ideal_weight=0, sharpen_solver="rk4", sharpen_steps=2,
                            sharpen_time=2.2, final_sharpening=False``
    ChebyCF Gowalla         ``order=8, flatness=1.5, factors=512, ideal_weight=0.2,
                            degree_power=0.4`` (0.1941 / 0.1616)
    ChebyCF Amazon-book     ``order=8, flatness=10, factors=512, ideal_weight=0.2, degree_power=0``
    ChebyCF Last.fm         ``order=8, flatness=15, factors=256, ideal_weight=0.1,
                            degree_power=0.2``
    ======================= ========================================================================

    (BSPM's blurring and ideal ODEs are one Euler step to ``T = 1`` in every published setting, so
    that blurring gives ``r P`` and the ideal term ``r D^-b V V^T D^b``.)

    Parameters
    ----------
    method : "gf-cf", "bspm" or "chebycf"
    factors : int or None
        ``k``, the singular vectors of the ideal low-pass term (None: the method's Gowalla
        setting; 0: no ideal term). At most ``min(n_users, n_items)``: larger values are cut to
        that.
    ideal_weight : float or None
        Weight of the ideal term (GF-CF's alpha, BSPM's idl_beta, ChebyCF's alpha; None: the
        method's Gowalla setting).
    user_exponent, item_exponent : float
        ``a`` and ``b`` of the normalisation (1/2 in all three papers).
    binary : bool
        Treat every stored interaction as 1 (the papers' 0/1 matrix), at fit and when scoring.
    blur_solver, blur_steps, blur_time, ideal_solver, ideal_steps, ideal_time, sharpen_solver,
    sharpen_steps, sharpen_time, sharpening, final_sharpening, t_point_combination :
        BSPM's ODEs (``sharpening=False`` is the authors' ``sharpening_off``).
    order, flatness, degree_power :
        ChebyCF's ``K``, ``phi`` and ``beta``.
    svd_oversampling : int or None
        Extra dimensions of the randomized SVD's subspace (None: ``factors``).
    svd_iterations : int
        Its subspace iterations.
    random_state : int
        Seed of the randomized SVD.
    num_threads : int
        Threads for fit and recommend (0 = all cores).

    ``recommend`` scores each user from its ``user_items`` row (any user, no refit);
    ``similar_items(i)`` filters the one-hot row of item ``i`` (the item itself is not returned).
    The first call after ``fit`` or ``load`` cuts the graph into the tiles its products run on
    (two more copies of its entries, kept with the model, not saved).
    """

    _scores_from_user_items = True

    _flag_params = ("binary", "sharpening", "final_sharpening", "t_point_combination")

    def __init__(
        self,
        method: str = "gf-cf",
        factors: Optional[int] = None,
        ideal_weight: Optional[float] = None,
        user_exponent: float = 0.5,
        item_exponent: float = 0.5,
        binary: bool = True,
        blur_solver: str = "euler",
        blur_steps: int = 1,
        blur_time: float = 1.0,
        ideal_solver: str = "euler",
        ideal_steps: int = 1,
        ideal_time: float = 1.0,
        sharpen_solver: str = "rk4",
        sharpen_steps: int = 1,
        sharpen_time: float = 2.5,
        sharpening: bool = True,
        final_sharpening: bool = True,
        t_point_combination: bool = False,
        order: int = 8,
        flatness: float = 1.5,
        degree_power: float = 0.4,
        svd_oversampling: Optional[int] = None,
        svd_iterations: int = 4,
        random_state: int = 0,
        num_threads: int = 0,
    ):
        self.method = method
        self.factors = factors
        self.ideal_weight = ideal_weight
        self.user_exponent = user_exponent
        self.item_exponent = item_exponent
        self.binary = binary
        self.blur_solver = blur_solver
        self.blur_steps = blur_steps
        self.blur_time = blur_time
        self.ideal_solver = ideal_solver
        self.ideal_steps = ideal_steps
        self.ideal_time = ideal_time
        self.sharpen_solver = sharpen_solver
        self.sharpen_steps = sharpen_steps
        self.sharpen_time = sharpen_time
        self.sharpening = sharpening
        self.final_sharpening = final_sharpening
        self.t_point_combination = t_point_combination
        self.order = order
        self.flatness = flatness
        self.degree_power = degree_power
        self.svd_oversampling = svd_oversampling
        self.svd_iterations = svd_iterations
        self.random_state = random_state
        self.num_threads = num_threads
        self._graph: Optional[Csr] = None
        self._graph_t: Optional[Csr] = None
        self._graph_checked = self._graph_t_checked = ValidatedOnce(None)
        self._tiles: Optional[_core.SpectralTiles] = None
        self._scaled: Optional[tuple] = None  # the last scalings and what they were made from
        self._factors: Optional[np.ndarray] = None
        self._item_degree: Optional[np.ndarray] = None

    def _set_graph(self, graph: Csr, graph_t: Csr) -> None:
        """Keeps the graph and its transpose as the model's own read-only arrays, validated by
        the first serving call only (as the kNN models' similarity); drops what was derived from
        the previous graph."""
        self._graph_checked = ValidatedOnce(graph)
        self._graph_t_checked = ValidatedOnce(graph_t)
        self._graph, self._graph_t = self._graph_checked.csr, self._graph_t_checked.csr
        self._tiles = None
        self._scaled = None

    # ---- hyper-parameters ---------------------------------------------------------------------
    def _method(self) -> str:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        return self.method

    def _filter_args(self) -> Dict[str, Any]:
        """The Rust filter's keyword arguments after validation."""
        method = self._method()
        w = self.ideal_weight
        w = _DEFAULT_IDEAL_WEIGHT[method] if w is None else _number(w, "ideal_weight")
        coeffs: List[float] = []
        if method == "chebycf":
            order = check_count(self.order, "order", maximum=MAX_CHEBYCF_ORDER)
            coeffs = [
                float(c)
                for c in chebycf_coefficients(
                    order, _number(self.flatness, "flatness", 0.0, strict=True)
                )
            ]
        ode: Dict[str, _Ode] = {}
        for name in ("blur", "ideal", "sharpen"):
            ode[name] = (
                _solver(getattr(self, f"{name}_solver"), f"{name}_solver"),
                _number(getattr(self, f"{name}_time"), f"{name}_time", 0.0, strict=True),
                check_count(getattr(self, f"{name}_steps"), f"{name}_steps"),
            )
        return dict(
            method=method,
            ideal_weight=float(w),
            coeffs=coeffs,
            blur=ode["blur"],
            ideal=ode["ideal"],
            sharpen=ode["sharpen"] if self.sharpening else None,
            final_sharpening=bool(self.final_sharpening),
            t_point_combination=bool(self.t_point_combination),
        )

    def _fit_args(self):
        """The Rust fit's arguments after validation (the filter's are checked too): the
        exponents, the SVD's rank, oversampling and passes, and the seed."""
        method = self._method()
        self._filter_args()
        a = _number(self.user_exponent, "user_exponent")
        b = _number(self.item_exponent, "item_exponent")
        _number(self.degree_power, "degree_power")
        k = (
            _DEFAULT_FACTORS[method]
            if self.factors is None
            else check_count(self.factors, "factors", 0)
        )
        over = (
            k
            if self.svd_oversampling is None
            else check_count(self.svd_oversampling, "svd_oversampling", 0)
        )
        iters = check_count(self.svd_iterations, "svd_iterations", 0)
        seed = check_count(self.random_state, "random_state", 0)
        return a, b, k, over, iters, seed

    def _check_params(self) -> None:
        self._fit_args()
        super()._check_params()

    # ---- fitting ------------------------------------------------------------------------------
    def fit(
        self, user_items, show_progress: bool = True, callback=None
    ) -> "SpectralFilterRecommender":
        """Builds the normalised graph and its truncated SVD from ``user_items`` (users x items,
        any scipy sparse format, values >= 0). ``callback(0, elapsed_seconds, None)`` is called
        once when done."""
        self._check_params()
        a, b, k, over, iters, seed = self._fit_args()
        threads = self._threads()
        X = as_csr(user_items, "user_items")
        if X.nnz and float(X.data.min()) < 0:
            raise ValueError("user_items must hold values >= 0 (the graph's edge weights)")
        if self.binary:
            X = X._replace(data=np.ones_like(X.data))
        k = min(k, *X.shape)
        check_fits_in_memory(
            _core.spectral_fit_memory(X.shape[0], X.shape[1], X.nnz, k, over),
            f"{type(self).__name__}.fit on {X.shape[0]:,} users x {X.shape[1]:,} items "
            f"({X.nnz:,} stored interactions; the graph, its transpose, {k} singular vectors "
            "and the randomized SVD's blocks)",
            "fit on fewer interactions or a smaller k, or where more memory is available; "
            + _SHAPE_HINT,
        )
        start = time.perf_counter()
        with tqdm(total=1, disable=not show_progress, desc=type(self).__name__) as bar:
            data, graph_t, V, degree = _core.spectral_fit(X, a, b, k, over, iters, seed, threads)
            bar.update(1)
        self._scalings(self._method(), degree)  # the serving scalings must not overflow either
        # the structure is the caller's matrix's: copied once, into memory the model owns (kept
        # read-only; the caller's arrays are left as they were)
        indptr, indices = _core.owned_copy(X.indptr), _core.owned_copy(X.indices)
        self._set_graph(Csr(indptr, indices, data, X.shape), Csr(*graph_t))
        self._factors = V
        self._item_degree = degree
        self.fit_seconds_ = time.perf_counter() - start
        if callback is not None:
            callback(0, self.fit_seconds_, None)
        return self

    @property
    def singular_vectors(self) -> Optional[np.ndarray]:
        """``V`` (items x k, float32): the leading right singular vectors of ``R~``."""
        return self._factors

    # ---- serving ------------------------------------------------------------------------------
    def _shape(self) -> Tuple[None, int]:
        if self._graph is None:
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit(user_items)")
        return None, self._graph.shape[1]

    def _scalings(self, method: str, degree=None) -> Tuple[np.ndarray, np.ndarray]:
        """``(D^-e, D^e)`` of the item degrees for ``method``'s exponent; those of the model's
        own degrees are kept for the next call with the same method and exponent."""
        e = float(self.degree_power if method == "chebycf" else self.item_exponent)
        if degree is None:
            degree = self._item_degree
            assert degree is not None  # the caller's _shape() raised otherwise
            scaled = self.__dict__.get("_scaled")  # absent in older pickles
            if scaled is not None and scaled[0] == (method, e) and scaled[1] is degree:
                return scaled[2], scaled[3]
            pre, post = self._scalings(method, degree)
            self._scaled = ((method, e), degree, pre, post)
            return pre, post
        d = degree.astype(np.float64)
        if method == "chebycf" and e == 0:  # ChebyCF without its DegreeNorm
            ones = np.ones_like(degree)
            return ones, ones
        with np.errstate(divide="ignore", over="ignore"):
            pre = np.where(d > 0, d**-e, 0.0).astype(np.float32)
            post = np.where(d > 0, d**e, 0.0).astype(np.float32)
        if not (all_finite(pre) and all_finite(post)):
            name = "degree_power" if method == "chebycf" else "item_exponent"
            raise ValueError(
                f"{name}={e} overflows float32 (item degree^{e} beyond 3.4e38): use an exponent "
                "nearer the paper's"
            )
        return pre, post

    def _run(self, queries: Csr, N, *, filter_liked, filter_items, items):
        options = self._filter_args()
        if self.binary:
            queries = queries._replace(data=np.ones_like(queries.data))
        pre, post = self._scalings(options["method"])
        factors = self._factors
        assert factors is not None  # by _shape()
        # each tracker's matrix and flag read together (a concurrent fit replaces the trackers)
        checked, checked_t = self._graph_checked, self._graph_t_checked
        g, gt, validated = checked.csr, checked_t.csr, bool(checked) and bool(checked_t)
        assert g is not None and gt is not None  # by _shape()
        tiles = self.__dict__.get("_tiles")  # absent in older pickles
        if tiles is None:  # built on the first call after fit or load, then kept
            tiles = self._tiles = _core.SpectralTiles(g, gt)
        out = _core.spectral_recommend(
            queries,
            g,
            gt,
            tiles,
            factors,
            pre,
            post,
            N,
            filter_liked,
            items=items,
            filter_items=filter_items,
            num_threads=self._threads(),
            graph_validated=validated,
            **options,
        )
        checked.passed()
        checked_t.passed()
        return out

    def _recommend(
        self, userids, user_items, N, *, filter_liked, filter_items, items, recalculate_user
    ):
        rows = self._rows_to_score(user_items)
        return self._run(rows, N, filter_liked=filter_liked, filter_items=filter_items, items=items)

    def similar_items(
        self,
        itemid,
        N: int = 10,
        recalculate_item: bool = False,
        item_users=None,
        filter_items=None,
        items=None,
    ):
        """The items the filter ranks highest for a user holding only ``itemid`` (scalar or
        array), best first; the item itself is not returned. ``recalculate_item=True`` raises
        NotImplementedError."""
        if recalculate_item:
            raise NotImplementedError(f"{type(self).__name__} cannot recalculate items: refit")
        return self._similar_from_rows(self._run, itemid, N, filter_items, items)

    def similar_users(
        self,
        userid,
        N: int = 10,
        filter_users=None,
        users=None,
        recalculate_user: bool = False,
        user_items=None,
    ):
        """Not available: the filters score items from a user's row and keep no user
        representation."""
        raise NotImplementedError(f"{type(self).__name__} has no user similarity")

    # ---- persistence --------------------------------------------------------------------------
    def _get_state(self) -> Dict[str, np.ndarray]:
        self._shape()
        g, gt = self._graph, self._graph_t
        assert g is not None and gt is not None  # _shape() raised otherwise
        assert self._factors is not None and self._item_degree is not None  # set with the graph
        return {
            **csr_state("graph", g),
            **csr_state("graph_t", gt),
            "singular_vectors": self._factors,
            "item_degree": self._item_degree,
            "n_users": np.array(g.shape[0]),
        }

    def _set_state(self, state) -> None:
        n_users = int(as_state_array(state["n_users"], "n_users", np.int64, 0))
        degree = as_state_array(state["item_degree"], "item_degree", np.float32, 1)
        V = as_state_array(state["singular_vectors"], "singular_vectors", np.float32, 2)
        n_items = degree.shape[0]
        if n_users < 0:
            raise ModelFormatError(f"the saved model has {n_users} users")
        if V.shape[0] != n_items or V.shape[1] > min(n_users, n_items):
            raise ModelFormatError(
                f"the saved singular_vectors have shape {V.shape}, expected "
                f"{n_items} rows and at most {min(n_users, n_items)} columns"
            )
        mats = [
            as_state_csr(state, prefix, prefix, shape)
            for prefix, shape in (("graph", (n_users, n_items)), ("graph_t", (n_items, n_users)))
        ]
        if mats[0].nnz != mats[1].nnz:
            raise ModelFormatError("the saved graph and its transpose differ in size")
        self._set_graph(*mats)
        self._factors, self._item_degree = V, degree

    def __getstate__(self):
        d = super().__getstate__()
        d["_tiles"] = d["_scaled"] = None  # rebuilt from the graph on the first call
        return d

    def __copy__(self):
        """A shallow copy sharing the arrays and the graph's tiles (``copy.copy`` would go
        through ``__getstate__``, which drops them; the frame and distributed serving paths
        copy the model for every call or partition)."""
        new = type(self).__new__(type(self))
        new.__dict__.update(super().__getstate__())
        return new


__all__ = ["SpectralFilterRecommender", "chebycf_coefficients"]

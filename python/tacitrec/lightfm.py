"""The hybrid matrix factorisation of Kula (2015), with LightFM 1.17's API, trained in Rust.

Every user and item is represented by the sum of the embeddings (and biases) of its features,
weighted by the feature matrix: ``q_u = sum_p F_user[u, p] e_p`` and ``b_u = sum_p F_user[u, p]
b_p`` (items alike), and the score is ``q_u . q_i + b_u + b_i``. Without feature matrices each
user and item is its own (identity) feature, which is plain collaborative filtering; with
metadata features the same model recommends for users and items never seen in training (cold
start) from their feature rows alone.

Losses and schedules as LightFM defines them: ``logistic`` (every stored entry; positive if its
value is > 0), ``bpr`` (one negative per positive, the item of a random interaction), ``warp``
(uniform negatives until one violates the margin, weighted by ``ln(floor((n_items - 1) /
tries))`` capped at 10), ``warp-kos`` (the k-th best of n sampled positives, then a WARP step);
``adagrad`` (accumulators start at 1) or ``adadelta`` (``rho``, ``epsilon``). Initial embeddings
are drawn as LightFM draws them for the same integer seed (uniform in [-0.5/d, 0.5/d)).

Differences from LightFM, fixing its known defects:

* in the pairwise losses (bpr, warp, warp-kos) the user bias cancels from the score difference,
  so it gets no gradient (LightFM updates it, and the biases drift to large negative values);
* ``item_alpha`` / ``user_alpha`` are LightFM's global weight decay (``regularization="decay"``,
  the default), applied as LightFM means it: after each example, every parameter of the side
  shrinks by the same factor, ``theta <- theta / (1 + alpha * eta)``, ``eta`` the mean learning
  rate of the example's updates. LightFM 1.17's lazy scaling gets it wrong: its representations
  multiply the parameters by the lazy scale where its own fold divides them by it, its steps are
  not multiplied by the scale, and touched rows are exempted from the decay; around alpha 0.05
  its parameters blow up (warp) or collapse to 0. Ours is lazy too (one scale per side, folded
  into the parameters every epoch) and stays finite for any alpha. ``regularization="l2"``
  instead adds ``alpha * theta`` to the gradient of the rows an example touches (tacitrec 0.1's
  only behaviour; at the same alpha a much weaker penalty: rows no example touches never
  shrink);
* ``recommend`` (not in LightFM) ranks the whole catalogue for many users with the shared
  batched top-k kernel, including users and items known only by their feature rows;
* ``predict`` / ``recommend`` without the feature matrices on a model fitted with features raise
  an error (LightFM silently scores with the wrong representations);
* an epoch visits the users in a random order and each user's interactions consecutively
  (``order="users"``, the default; LightFM shuffles all interactions, ``order="interactions"``
  here), so the user's parameters and its set of items stay in cache (faster per epoch). The
  order changes what an epoch learns, in both libraries (LightFM given the grouped order
  learns as tacitrec does): at some settings the grouped order is ahead of LightFM's, at others
  behind; tuned, the two reach the same quality (benches/compare/RESULTS.md). To follow a
  LightFM learning curve at a fixed setting, use ``order="interactions"`` (the default of
  :mod:`tacitrec.compat.lightfm`);
* training is parallel (hogwild) for any ``num_threads``; results with more than one thread are
  not reproducible (LightFM's neither). With adagrad and several threads, the most updated
  feature rows (features shared by many items or users, such as tags, and the rows of very
  popular items) are trained in per-thread copies whose changes are added to the shared rows
  every 4,096 examples: threads writing the same rows otherwise slow each other down, each
  write invalidating the row in the others' caches. ``num_threads=1`` trains the shared rows
  directly and is exact.
"""

from __future__ import annotations

import numbers
from typing import List, Optional, Tuple, TypeVar

import numpy as np
import scipy.sparse as sp

from . import _core
from ._validation import (
    Csr,
    as_csr,
    as_float32_copy,
    as_state_array,
    check_count,
    check_fits_in_memory,
    check_ids,
    check_nonnegative,
    check_scores_finite,
    check_threads,
    check_trained_finite,
)
from .base import _SHAPE_HINT, RecommenderBase, _train_epochs
from .exceptions import ModelFitError, ModelFormatError, NotFittedError

_LOSSES = ("logistic", "bpr", "warp", "warp-kos")
_REGULARIZATIONS = ("decay", "l2")
_ORDERS = ("interactions", "users")
_SCHEDULES = ("adagrad", "adadelta")
#: The most WARP tries per positive (the kernel never makes more than ``n_items - 1``: later
#: tries would carry weight ln(1) = 0).
MAX_SAMPLED = 10**6

_Self = TypeVar("_Self", bound="LightFM")  # fit and fit_partial return the model itself


def _parameter_attribute(side: str, bias: bool, doc: str) -> property:
    """One of LightFM's four parameter attributes: a view on get, a validated copy on set."""
    name = f"{side}_{'biases' if bias else 'embeddings'}"
    return property(
        lambda self: self._part(side, 0, bias),
        lambda self, value: self._assign(side, 0, bias, value, name),
        doc=doc,
    )


def _accumulator_attribute(side: str, k: int, bias: bool, doc: Optional[str] = None) -> property:
    """One of LightFM's eight optimiser attributes: a read-only view of accumulator ``k`` (1:
    LightFM's ``*_gradients``, 2: its ``*_momentum``) on get, a validated copy on set."""
    part = "bias" if bias else "embedding"
    kind = "gradients" if k == 1 else "momentum"
    name = f"{side}_{part}_{kind}"

    def get(self):
        a = self._part(side, k, bias)
        if a is not None:
            a = a.view()
            a.flags.writeable = False
        return a

    return property(
        get,
        lambda self, value: self._assign(side, k, bias, value, name),
        doc=doc
        or f"LightFM's ``{name}``: the optimiser's accumulator for the {side} {part}s (a "
        "read-only float32 view; see :attr:`item_embedding_gradients`).",
    )


def _identity(n: int) -> Csr:
    return Csr(
        np.arange(n + 1, dtype=np.int64),
        np.arange(n, dtype=np.int32),
        np.ones(n, dtype=np.float32),
        (n, n),
    )


class LightFM(RecommenderBase):
    """Hybrid matrix factorisation with user and item features (LightFM's API).

    Parameters are LightFM 1.17's: ``no_components`` (embedding size), ``k`` and ``n``
    (k-OS WARP), ``learning_schedule`` ("adagrad" or "adadelta"), ``loss`` ("logistic", "bpr",
    "warp", "warp-kos"), ``learning_rate`` (adagrad), ``rho`` and ``epsilon`` (adadelta),
    ``item_alpha`` and ``user_alpha`` (the regularisation strengths of the item and user
    parameters, see ``regularization``), ``max_sampled`` (WARP's tries, at most 10**6; never
    more than ``n_items - 1`` are made, and a user who has every item is skipped),
    ``random_state``; and ``num_threads``, the threads that serve :meth:`recommend` and the
    model of :meth:`as_factor_model` (0 = all cores; LightFM has no such parameter: training
    takes ``fit``'s own ``num_threads``, LightFM's, default 1).
    ``regularization`` (not in LightFM) chooses what the alphas do:

    * ``"decay"`` (default): LightFM's global weight decay, applied correctly. After each
      example that updates parameters, *every* parameter of a side (all its feature rows, not
      only those the example touched) is divided by the same factor:
      ``theta <- theta / (1 + alpha * eta)``, with ``eta`` the mean learning rate of the
      elements the example updated (adagrad: ``learning_rate / sqrt(G)``; adadelta:
      ``sqrt((M + epsilon) / (G + epsilon))``). Over ``n`` examples a row nobody trains shrinks
      by about ``exp(-alpha * eta * n)``: rare items and users are pulled to 0, which is the
      strong shrinkage LightFM's ``item_alpha`` / ``user_alpha`` give. It is computed lazily (a
      scale per side, folded into the parameters at the end of each epoch), so an example costs
      little more than without it, and it stays finite for any alpha (LightFM 1.17's blows up or
      collapses around 0.05). With several threads each thread publishes its decay every 256
      examples.
    * ``"l2"``: the per-example L2 penalty ``alpha / 2 |theta|^2`` of the rows an example
      touches: ``alpha * theta`` is added to their gradient, and rows no example touches do
      not shrink. At LightFM's usual alphas (1e-8..1e-4) it is far weaker than the decay.

    With both alphas 0 the two are the same (no regularisation).

    ``order`` (not in LightFM) is the order of an epoch's examples: ``"users"`` (default) the
    users in a random order, each user's interactions consecutively in a random order (faster
    per epoch); ``"interactions"`` a random permutation of all interactions, as
    LightFM (with several threads, each thread takes a disjoint set of users). At a fixed
    setting the two learn differently per epoch (either may be ahead); ``"interactions"``
    follows LightFM's learning curve.

    The constructor and :meth:`set_params` raise ValueError naming a parameter out of range
    (LightFM asserts in the constructor only).

    The fitted parameters are LightFM's attributes ``user_embeddings``, ``item_embeddings``,
    ``user_biases`` and ``item_biases`` (one row per feature); assigning one (to warm-start or
    load external vectors) stores a validated float32 copy used from then on.
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
        num_threads: int = 0,
        regularization: str = "decay",
        order: str = "users",
    ):
        self.no_components = no_components
        self.k = k
        self.n = n
        self.learning_schedule = learning_schedule
        self.loss = loss
        self.learning_rate = learning_rate
        self.rho = rho
        self.epsilon = epsilon
        self.item_alpha = item_alpha
        self.user_alpha = user_alpha
        self.max_sampled = max_sampled
        self.random_state = random_state
        self.num_threads = num_threads
        self.regularization = regularization
        self.order = order
        self._check_params()
        self._reset()

    def _reset(self) -> None:
        # [params, grad_acc, step_acc], features x (d + 1)
        self._user: Optional[List[np.ndarray]] = None
        self._item: Optional[List[np.ndarray]] = None
        self._with_features = {"user": False, "item": False}
        self._rng: Optional[np.random.RandomState] = None

    # ---- validation ---------------------------------------------------------------------------
    def _check_params(self) -> None:
        """Raises ValueError naming the first hyper-parameter out of range (TypeError for one
        of the wrong type); run by the constructor, ``set_params`` and ``fit_partial``."""
        for name in ("no_components", "k", "n"):
            check_count(getattr(self, name), name)
        check_count(self.max_sampled, "max_sampled", maximum=MAX_SAMPLED)
        if self.loss not in _LOSSES:
            raise ValueError(f"loss must be one of {_LOSSES}, got {self.loss!r}")
        if self.regularization not in _REGULARIZATIONS:
            raise ValueError(
                f"regularization must be one of {_REGULARIZATIONS}, got {self.regularization!r}"
            )
        if self.order not in _ORDERS:
            raise ValueError(f"order must be one of {_ORDERS}, got {self.order!r}")
        if self.learning_schedule not in _SCHEDULES:
            raise ValueError(
                f"learning_schedule must be one of {_SCHEDULES}, got {self.learning_schedule!r}"
            )
        for name in ("learning_rate", "item_alpha", "user_alpha", "epsilon"):
            check_nonnegative(getattr(self, name), name)
        check_threads(self.num_threads)
        if not (isinstance(self.rho, (int, float, np.number)) and 0 < self.rho < 1):
            raise ValueError(f"rho must be in (0, 1), got {self.rho!r}")
        seed = self.random_state
        if isinstance(seed, numbers.Integral) and not 0 <= int(seed) < 2**32:
            raise ValueError(f"random_state must be an int in [0, 2**32), got {seed}")
        if not isinstance(
            seed, (type(None), numbers.Integral, np.random.RandomState, np.random.Generator)
        ):
            raise TypeError(
                "random_state must be None, an int, a numpy RandomState or Generator, got "
                f"{type(seed).__name__}"
            )

    @staticmethod
    def _features(X, name: str, n_rows: int, side: str) -> Csr:
        """The training feature matrix of a side (identity when None)."""
        if X is None:
            return _identity(n_rows)
        F = as_csr(X, name)
        if F.shape[0] < n_rows:
            raise ValueError(f"{name} has {F.shape[0]} rows but there are {n_rows} {side}s")
        return F

    # ---- parameters ---------------------------------------------------------------------------
    def _fresh(self, n_features: int, rng: np.random.RandomState):
        d = int(self.no_components)
        params = np.zeros((n_features, d + 1), dtype=np.float32)
        # LightFM's initialisation (uniform float64 draws, shifted and scaled), drawn in chunks
        # of rows: the same values, without a float64 temporary twice the size of the parameters
        rows = max(1, (1 << 16) // max(d, 1))
        for lo in range(0, n_features, rows):
            draws = rng.rand(min(rows, n_features - lo), d)
            draws -= 0.5
            draws /= d
            params[lo : lo + len(draws), :d] = draws
        # the accumulators: adagrad's squared gradients start at 1; adadelta's two at 0, and
        # adagrad never writes the third array (np.zeros leaves its pages unallocated until
        # written, where zeros_like would write every one)
        if self.learning_schedule == "adagrad":
            first = np.ones_like(params)
        else:
            first = np.zeros(params.shape, dtype=np.float32)
        return [params, first, np.zeros(params.shape, dtype=np.float32)]

    def _check_fit_memory(self, n_user_features: int, n_item_features: int) -> None:
        """Before :meth:`_grow` makes parameters for new features: MemoryError naming the bytes
        when they exceed the memory available (:func:`check_fits_in_memory`). Each new feature
        takes ``no_components + 1`` float32 parameters and as many per accumulator written
        (adagrad one, adadelta two)."""
        rows = 0
        for n, cur in ((n_user_features, self._user), (n_item_features, self._item)):
            rows += max(0, n - (0 if cur is None else cur[0].shape[0]))
        arrays = 2 if self.learning_schedule == "adagrad" else 3
        width = int(self.no_components) + 1
        check_fits_in_memory(
            rows * width * 4 * arrays,
            f"LightFM's {rows:,} new user and item features ({width} float32 parameters "
            f"each, {arrays} arrays with the {self.learning_schedule} accumulators)",
            _SHAPE_HINT + " or lower no_components",
        )

    def _grow(self, side: str, n_features: int, rng, identity: bool = False) -> None:
        """Makes or extends the parameters of a side to ``n_features`` rows; ``identity`` when
        they came from ``interactions`` (no feature matrix: one feature per user or item)."""
        cur = getattr(self, "_" + side)
        if cur is None:
            setattr(self, "_" + side, self._fresh(n_features, rng))
            return
        have = cur[0].shape[0]
        if n_features < have and identity:
            axis = "rows" if side == "user" else "columns"
            raise ValueError(
                f"interactions has {n_features} {axis} but the model has {have} {side}s: "
                f"without {side}_features, pass interactions with all {have} {side}s "
                "(the model can only grow)"
            )
        if n_features < have:
            raise ValueError(
                f"{side}_features has {n_features} columns but the model has "
                f"{have} {side} features: feature matrices can only grow"
            )
        if n_features > have:
            new = self._fresh(n_features - have, rng)
            setattr(self, "_" + side, [np.vstack([a, b]) for a, b in zip(cur, new)])

    # ---- training -----------------------------------------------------------------------------
    def fit(
        self: _Self,
        interactions,
        user_features=None,
        item_features=None,
        sample_weight=None,
        epochs: int = 1,
        num_threads: int = 1,
        verbose: bool = False,
    ) -> _Self:
        """Fits from scratch (drops any previous parameters), then as :meth:`fit_partial`. Input
        that :meth:`fit_partial` refuses leaves a fitted model as it was."""
        kept = (self._user, self._item, self._with_features, self._rng)
        self._reset()
        try:
            return self.fit_partial(
                interactions,
                user_features,
                item_features,
                sample_weight,
                epochs,
                num_threads,
                verbose,
            )
        except (ValueError, TypeError, MemoryError):
            if self._user is None:  # refused before any parameter was made
                self._user, self._item, self._with_features, self._rng = kept
            raise

    def fit_partial(
        self: _Self,
        interactions,
        user_features=None,
        item_features=None,
        sample_weight=None,
        epochs: int = 1,
        num_threads: int = 1,
        verbose: bool = False,
    ) -> _Self:
        """Trains ``epochs`` more epochs on ``interactions`` (users x items; values > 0 are
        positives, others negatives for the logistic loss). Feature matrices (users x user
        features, items x item features) may have more rows than ``interactions`` (users and
        items without interactions, as LightFM: those items are negatives) and more columns than
        before: new features get fresh parameters, but never fewer (without a feature matrix,
        ``interactions`` may not have fewer users or items than the model: ValueError). An
        interaction stored more than once (a COO matrix of raw events, as
        ``Dataset.build_interactions`` makes) is trained once per stored entry, as LightFM does;
        k-OS WARP sums them, as LightFM's does. ``sample_weight`` is a sparse matrix of the
        interactions' shape holding a weight for every stored interaction (any order of entries;
        repeated entries pair with the interactions' in their stored order). Raises
        ModelFitError if the parameters become NaN or infinite, and leaves the model unfitted
        (LightFM keeps the NaN parameters)."""
        self._check_params()
        if self._item is not None and self._item[0].shape[1] != int(self.no_components) + 1:
            raise ValueError(
                f"no_components={self.no_components} but the model's embeddings have "
                f"{self._item[0].shape[1] - 1} components: call fit() to start over with the new "
                "width"
            )
        self._own_state()
        check_count(epochs, "epochs", minimum=0)
        threads = check_threads(num_threads)
        # every stored entry is one example, as in LightFM (a pair logged five times trains five
        # times), except for k-OS WARP, which samples each user's positives from the summed row
        X = as_csr(interactions, "interactions", repeats=self.loss != "warp-kos")
        n_users, n_items = X.shape
        if self._user is not None and (user_features is not None) != self._with_features["user"]:
            raise ValueError("user_features must be given in every fit_partial call or in none")
        if self._item is not None and (item_features is not None) != self._with_features["item"]:
            raise ValueError("item_features must be given in every fit_partial call or in none")
        Fu = self._features(user_features, "user_features", n_users, "user")
        Fi = self._features(item_features, "item_features", n_items, "item")
        weights = self._weights(sample_weight, X)
        if (Fu.shape[0], Fi.shape[0]) != X.shape:
            # feature rows beyond the interactions (users and items without any, as LightFM
            # accepts): empty rows and columns, so those items are negatives as in LightFM
            n_users, n_items = Fu.shape[0], Fi.shape[0]
            indptr = np.concatenate([X.indptr, np.full(n_users - X.shape[0], X.indptr[-1])])
            X = X._replace(indptr=indptr, shape=(n_users, n_items))
        if self._rng is None:
            seed = self.random_state
            if isinstance(seed, np.random.Generator):  # LightFM's stream is a RandomState's
                seed = int(seed.integers(0, 2**32))
            self._rng = (
                seed if isinstance(seed, np.random.RandomState) else np.random.RandomState(seed)
            )
        self._check_fit_memory(Fu.shape[1], Fi.shape[1])
        # LightFM's order: item parameters first
        self._grow("item", Fi.shape[1], self._rng, identity=item_features is None)
        self._grow("user", Fu.shape[1], self._rng, identity=user_features is None)
        self._with_features = {"user": user_features is not None, "item": item_features is not None}

        def step(epoch):
            assert self._user is not None and self._item is not None and self._rng is not None
            _core.lightfm_epoch(
                X,
                weights,
                Fu,
                Fi,
                self._user,
                self._item,
                int(self._rng.randint(0, 2**31 - 1)),
                threads,
                loss=self.loss,
                k=int(self.k),
                n=int(self.n),
                learning_schedule=self.learning_schedule,
                learning_rate=float(self.learning_rate),
                rho=float(self.rho),
                epsilon=float(self.epsilon),
                item_alpha=float(self.item_alpha),
                user_alpha=float(self.user_alpha),
                regularization=self.regularization,
                max_sampled=int(self.max_sampled),
                order=self.order,
            )

        def check(epoch):
            assert self._user is not None and self._item is not None  # grown above
            try:
                check_trained_finite(
                    {"the user parameters": self._user[0], "the item parameters": self._item[0]},
                    f"epoch {epoch}",
                    f"lower learning_rate={self.learning_rate} or the feature "
                    "weights (normalise feature rows)",
                )
            except ModelFitError:
                self._reset()  # NaN parameters serve nothing, and no file or pickle keeps them
                raise

        _train_epochs(
            int(epochs) if n_items else 0,  # no items: no interaction and no negative to train on
            step,
            check=check,
            desc="LightFM",
            show_progress=verbose,
        )
        return self

    def _weights(self, sample_weight, X: Csr) -> Optional[np.ndarray]:
        if sample_weight is None:
            return None
        if self.loss == "warp-kos":
            raise ValueError(
                "sample_weight is not supported with loss='warp-kos' "
                "(it samples positives per user, not interactions)"
            )
        W = as_csr(sample_weight, "sample_weight", repeats=True)
        if W.shape != X.shape:
            raise ValueError(f"sample_weight has shape {W.shape} but interactions have {X.shape}")
        if W.nnz != X.nnz or not (
            np.array_equal(W.indptr, X.indptr) and np.array_equal(W.indices, X.indices)
        ):
            raise ValueError(
                "sample_weight must have an entry for every interaction and no "
                "others (the same sparsity pattern)"
            )
        if (W.data < 0).any():
            raise ValueError("sample_weight has negative values")
        return W.data

    # ---- representations and scores -----------------------------------------------------------
    def _check_fitted(self) -> None:
        if self._user is None or self._item is None:
            raise NotFittedError("LightFM has no parameters yet: call fit() first")

    def _represent(self, side: str, features, rows=None) -> np.ndarray:
        """``[embeddings | bias]`` representations, float32 (rows x (d + 1))."""
        self._check_fitted()
        params = getattr(self, "_" + side)[0]
        name = f"{side}_features"
        if features is None:
            self._check_without_features(side)
            return params if rows is None else params[rows]
        F = as_csr(features, name)
        if F.shape[1] != params.shape[0]:
            raise ValueError(
                f"{name} has {F.shape[1]} columns but the model has "
                f"{params.shape[0]} {side} features"
            )
        M = F.to_scipy()
        if rows is not None:
            M = M[rows]
        return np.ascontiguousarray(M @ params, dtype=np.float32)

    def _check_without_features(self, side: str) -> None:
        """Raises the documented ValueError when ``{side}_features`` is omitted on a model
        fitted with them."""
        if self._with_features[side]:
            name = f"{side}_features"
            raise ValueError(
                f"this model was fitted with {name}: pass the same {name} "
                f"(without them the {side} representations would be wrong)"
            )

    def get_user_representations(self, features=None) -> Tuple[np.ndarray, np.ndarray]:
        """``(biases, embeddings)`` of the users given by ``features`` (users x user features),
        as LightFM. Without ``features``, the identity: one row per user feature (the users
        themselves on a model fitted without features; the features' own parameters, e.g. tag
        embeddings, on a model fitted with them)."""
        return self._representations("user", features)

    def get_item_representations(self, features=None) -> Tuple[np.ndarray, np.ndarray]:
        """``(biases, embeddings)`` of the items given by ``features`` (items x item features),
        as LightFM; without ``features``, one row per item feature (see
        :meth:`get_user_representations`)."""
        return self._representations("item", features)

    def _representations(self, side: str, features) -> Tuple[np.ndarray, np.ndarray]:
        if features is None:
            self._check_fitted()
            r = getattr(self, "_" + side)[0]
        else:
            r = self._represent(side, features)
        return r[:, -1].copy(), r[:, :-1].copy()

    def predict(
        self, user_ids, item_ids, item_features=None, user_features=None, num_threads: int = 1
    ) -> np.ndarray:
        """Scores of the (user, item) pairs (``user_ids`` may be a scalar), float32, as
        LightFM."""
        check_threads(num_threads)
        self._check_fitted()
        items = np.asarray(item_ids)
        users = np.asarray(user_ids)
        if users.ndim == 0:
            users = np.full(items.shape, users)
        if users.shape != items.shape or items.ndim != 1:
            raise ValueError(
                f"user_ids and item_ids must be 1-D of the same length, got "
                f"{users.shape} and {items.shape}"
            )
        n_users = self._n_rows("user", user_features)
        n_items = self._n_rows("item", item_features)
        users, _ = check_ids(users, n_users, "user_ids", "users")
        items, _ = check_ids(items, n_items, "item_ids", "items")
        U, users = self._pair_rows("user", user_features, users, n_users)
        V, items = self._pair_rows("item", item_features, items, n_items)
        return _core.lightfm_pair_scores(U, V, users, items, check_threads(num_threads))

    def _pair_rows(self, side: str, features, ids: np.ndarray, n: int):
        """The representations ``predict`` reads for ``ids`` and the ids' rows in them: the
        parameters themselves without features; with features, every row's representation when
        the pairs are at least as many as the rows, else only the distinct ids' (memory of the
        order of the rows or the pairs, never one row per pair)."""
        if features is None:
            return self._represent(side, None), ids
        if len(ids) >= n:
            return self._represent(side, features), ids
        distinct, rows = np.unique(ids, return_inverse=True)
        return self._represent(side, features, distinct), rows.astype(np.int32).ravel()

    def _n_rows(self, side: str, features, strict: bool = True) -> int:
        """The number of users (items) that can be scored: the rows of ``features``, or the
        identity range without them. ``strict`` first raises the "fitted with features" error
        when they are omitted on a model fitted with them (so that it is reported before any
        id is checked against the range)."""
        self._check_fitted()
        if features is None:
            if strict:
                self._check_without_features(side)
            return getattr(self, "_" + side)[0].shape[0]
        if not (sp.issparse(features) or isinstance(features, Csr)):
            raise TypeError(
                f"{side}_features must be a scipy.sparse matrix, got {type(features).__name__}"
            )
        return int(features.shape[0])

    def predict_rank(
        self,
        test_interactions,
        train_interactions=None,
        item_features=None,
        user_features=None,
        num_threads: int = 1,
        check_intersections: bool = True,
    ) -> sp.csr_matrix:
        """For every test interaction, the number of items that score at least as high
        (pessimistic ties; the item itself not counted), training items excluded: 0 is the top.
        Same sparsity as ``test_interactions``, as LightFM: its users, ranked among its items
        (the feature matrices may have more rows). A test item that is also a training
        item (possible with ``check_intersections=False``) keeps its score and is ranked among
        the non-training items, as LightFM ranks it."""
        check_threads(num_threads)
        self._check_fitted()
        T = as_csr(test_interactions, "test_interactions")
        # as LightFM: the test matrix's users, ranked among its items; a feature matrix may have
        # rows beyond them, the identity (no feature matrix) must cover the model exactly
        for side, n in zip(("user", "item"), T.shape):
            features = user_features if side == "user" else item_features
            known = self._n_rows(side, features)
            if n > known or (features is None and n != known):
                raise ValueError(
                    f"test_interactions has {n} {side}s but the model has {known}"
                    + (f" (the rows of {side}_features)" if features is not None else "")
                )
        n_users, n_items = T.shape
        Tr = None
        if train_interactions is not None:
            Tr = as_csr(
                train_interactions, "train_interactions", n_rows=n_users, n_cols=n_items
            ).to_scipy()
            if check_intersections and T.to_scipy().multiply(Tr).nnz:
                raise ValueError(
                    "test_interactions and train_interactions share entries: "
                    "pass disjoint matrices (or check_intersections=False)"
                )
        V = self._represent("item", item_features)[:n_items]
        ranks = np.zeros(T.nnz, dtype=np.float32)
        block = max(1, 2**22 // max(n_items, 1))  # rows of scores held at once
        for lo in range(0, n_users, block):
            hi = min(n_users, lo + block)
            a, b = T.indptr[lo], T.indptr[hi]
            if a == b:
                continue
            U = self._represent("user", user_features, np.arange(lo, hi))
            d = U.shape[1] - 1
            with np.errstate(over="ignore", invalid="ignore"):  # checked just below
                S = U[:, :d] @ V[:, :d].T + U[:, d:] + V[:, d][None, :]
            check_scores_finite(S)  # ranks counted against inf and NaN would be wrong
            rows = np.repeat(np.arange(hi - lo), np.diff(T.indptr[lo : hi + 1]))
            cols = T.indices[a:b]
            own = S[rows, cols]  # before masking: a training item keeps its score
            if Tr is not None:
                t = Tr[lo:hi].tocoo()
                S[t.row, t.col] = -np.inf  # training items are not competitors
            # the item itself is among the items >= its score unless it was masked
            counted_self = S[rows, cols] >= own
            for c in range(0, b - a, block):
                e = slice(c, min(b - a, c + block))
                ranks[a + e.start : a + e.stop] = (S[rows[e]] >= own[e, None]).sum(
                    axis=1
                ) - counted_self[e]
        return sp.csr_matrix((ranks, T.indices.copy(), T.indptr.copy()), shape=T.shape)

    # ---- the shared recommender API ------------------------------------------------------------
    def recommend(
        self,
        userid,
        user_items=None,
        N: int = 10,
        filter_already_liked_items: bool = True,
        filter_items=None,
        recalculate_user: bool = False,
        items=None,
        user_features=None,
        item_features=None,
    ):
        """The base API's recommend (see :class:`tacitrec.base.RecommenderBase`), plus the
        feature matrices: with ``user_features`` any row of it can be recommended for,
        including users not seen in training (cold start)."""
        if recalculate_user:
            raise NotImplementedError(
                "LightFM represents users by their features: pass the "
                "user's feature row in user_features instead"
            )
        shape = (self._n_rows("user", user_features), self._n_rows("item", item_features))

        def run(users, liked, N, *, filter_liked, filter_items, items, recalculate_user):
            return self._score_top(
                users,
                liked,
                N,
                filter_liked=filter_liked,
                filter_items=filter_items,
                items=items,
                user_features=user_features,
                item_features=item_features,
            )

        return self._checked_recommend(
            shape,
            run,
            userid,
            user_items,
            N,
            filter_already_liked_items=filter_already_liked_items,
            filter_items=filter_items,
            recalculate_user=False,
            items=items,
            items_from=None if item_features is None else "item_features",
        )

    def _shape(self):
        return self._n_rows("user", None, False), self._n_rows("item", None, False)

    def _recommend(
        self, userids, user_items, N, *, filter_liked, filter_items, items, recalculate_user
    ):
        return self._score_top(
            userids,
            user_items,
            N,
            filter_liked=filter_liked,
            filter_items=filter_items,
            items=items,
        )

    def _score_top(
        self,
        userids,
        user_items,
        N,
        *,
        filter_liked,
        filter_items,
        items,
        user_features=None,
        item_features=None,
    ):
        Ua, Va = self._scoring_factors(user_features, item_features, userids)
        liked = user_items if (filter_liked and user_items is not None) else None
        return _core.topk_dot(
            Ua, Va, N, liked, items=items, filter_items=filter_items, num_threads=self._threads()
        )

    def _scoring_factors(self, user_features, item_features, userids=None):
        """User and item factors whose dot products are LightFM's scores:
        ``[q_u, b_u, 1] . [q_i, 1, b_i] = q_u . q_i + b_u + b_i``."""
        U = self._represent("user", user_features, userids)
        V = self._represent("item", item_features)
        d = U.shape[1] - 1
        Ua = np.hstack([U, np.ones((len(U), 1), np.float32)])
        Va = np.hstack([V[:, :d], np.ones((len(V), 1), np.float32), V[:, d:]])
        return np.ascontiguousarray(Ua), np.ascontiguousarray(Va)

    def as_factor_model(self, user_features=None, item_features=None):
        """A :class:`~tacitrec.MatrixFactorizationBase` whose ``recommend`` returns the same ids
        and scores as this model's with these feature matrices: the user and item
        representations are computed once (users x (d + 2) and items x (d + 2) float32). This is
        what to serve or ship to many workers (:mod:`tacitrec.distributed` does): it scores
        without the feature matrices. Its ``similar_items`` compares the augmented
        representations, not LightFM's embeddings."""
        from .base import MatrixFactorizationBase

        served = MatrixFactorizationBase(num_threads=self._threads())
        Ua, Va = self._scoring_factors(user_features, item_features)
        served._user_factors, served._item_factors = Ua, Va
        return served

    def approximate(self, user_features=None, item_features=None, **index_params):
        """An approximate recommender (HNSW index, the optional extra ``ann``) over this model's
        representations with these feature matrices: ``as_factor_model(user_features,
        item_features).approximate(**index_params)`` (see
        :meth:`tacitrec.MatrixFactorizationBase.approximate`). Which items it returns is
        approximate (recall measured, not promised), their scores exact; this model's own
        ``recommend`` stays exact."""
        return self.as_factor_model(user_features, item_features).approximate(**index_params)

    # LightFM's attributes
    def _part(self, side: str, k: int, bias: bool) -> Optional[np.ndarray]:
        arrays = getattr(self, "_" + side)
        if arrays is None:
            return None
        a = arrays[k]
        return a[:, -1] if bias else a[:, :-1]

    def _assign(self, side: str, k: int, bias: bool, value, name: str) -> None:
        """Sets the embedding or bias part of array ``k`` (0: the parameters, 1 and 2: the
        optimiser's accumulators) to a validated float32 copy of ``value``."""
        arrays = getattr(self, "_" + side)
        if arrays is None:
            raise NotFittedError(
                f"cannot assign {name} before the model has parameters: call "
                "fit() first (fit(interactions, epochs=0) only initialises "
                "them)"
            )
        n, d = arrays[k].shape[0], arrays[k].shape[1] - 1
        part = as_float32_copy(value, name, (n,) if bias else (n, d))
        if k == 1 and self.learning_schedule == "adagrad" and not (part > 0).all():
            raise ValueError(
                f"{name} must be positive under adagrad (sums of squared gradients, starting at 1)"
            )
        if k > 0 and not (part >= 0).all():
            raise ValueError(f"{name} must be non-negative (running averages of squares)")
        new = arrays[k].copy()  # views handed out before keep the old values, as in LightFM
        if bias:
            new[:, d] = part
        else:
            new[:, :d] = part
        arrays[k] = new

    item_embeddings = _parameter_attribute(
        "item",
        False,
        "Item feature embeddings (item features x no_components), float32. "
        "Assignable on a fitted model (to warm-start or load external vectors): the value is "
        "copied as float32 and must have this shape and finite values; the optimiser's "
        "accumulators are kept.",
    )
    item_biases = _parameter_attribute(
        "item",
        True,
        "Item feature biases (item features), float32; assignable as :attr:`item_embeddings`.",
    )
    user_embeddings = _parameter_attribute(
        "user",
        False,
        "User feature embeddings (user features x no_components), float32; "
        "assignable as :attr:`item_embeddings`.",
    )
    user_biases = _parameter_attribute(
        "user",
        True,
        "User feature biases (user features), float32; assignable as :attr:`item_embeddings`.",
    )

    item_embedding_gradients = _accumulator_attribute(
        "item",
        1,
        False,
        "The optimiser's accumulators, as LightFM names them (read-only float32 views, ``None`` "
        "before fitting): under adagrad, ``*_gradients`` are the sums of squared gradients "
        "(starting at 1) and ``*_momentum`` stay 0; under adadelta, ``*_gradients`` are the "
        "running averages of squared gradients and ``*_momentum`` of squared steps (both "
        "starting at 0). ``item_embedding_*`` and ``user_embedding_*`` are features x "
        "no_components, ``item_bias_*`` and ``user_bias_*`` one per feature. Assignable on a "
        "fitted model (to carry a LightFM model's optimiser state over): the value is copied "
        "as float32 and must have this shape and finite, non-negative values (positive for "
        "adagrad's ``*_gradients``).",
    )
    item_embedding_momentum = _accumulator_attribute("item", 2, False)
    item_bias_gradients = _accumulator_attribute("item", 1, True)
    item_bias_momentum = _accumulator_attribute("item", 2, True)
    user_embedding_gradients = _accumulator_attribute("user", 1, False)
    user_embedding_momentum = _accumulator_attribute("user", 2, False)
    user_bias_gradients = _accumulator_attribute("user", 1, True)
    user_bias_momentum = _accumulator_attribute("user", 2, True)

    @classmethod
    def _saved_params(cls, params):
        # files saved before ``regularization`` and ``order`` existed were trained with the L2
        # penalty and users' interactions grouped: fit_partial goes on as they were trained
        if isinstance(params, dict):
            return dict(dict(regularization="l2", order="users"), **params)
        return params

    def __setstate__(self, d) -> None:
        d.setdefault("regularization", "l2")  # pickled before the options: as it was trained
        d.setdefault("order", "users")
        super().__setstate__(d)

    def _get_state(self):
        self._check_fitted()
        state = {}
        for side in ("user", "item"):
            for name, a in zip(("params", "grad_acc", "step_acc"), getattr(self, "_" + side)):
                state[f"{side}_{name}"] = a
            state[f"{side}_with_features"] = np.array(self._with_features[side])
        return state

    def _set_state(self, state) -> None:
        for side in ("user", "item"):
            arrays = [
                as_state_array(state[f"{side}_{n}"], f"{side}_{n}", np.float32, 2)
                for n in ("params", "grad_acc", "step_acc")
            ]
            if any(a.shape != arrays[0].shape for a in arrays):
                raise ModelFormatError(f"the saved {side} parameters have inconsistent shapes")
            if arrays[0].shape[1] != int(self.no_components) + 1:
                raise ModelFormatError(
                    f"the saved {side} parameters have {arrays[0].shape[1] - 1} components but "
                    f"no_components is {self.no_components}"
                )
            setattr(self, "_" + side, arrays)
            flag = np.asarray(state[f"{side}_with_features"])
            if flag.shape != () or flag.dtype != np.bool_:
                raise ModelFormatError(
                    f"the saved {side}_with_features must be one boolean, got "
                    f"dtype {flag.dtype} and shape {flag.shape}"
                )
            self._with_features[side] = bool(flag)


__all__ = ["LightFM"]

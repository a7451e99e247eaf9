"""What the SGD factorisation models (BPR, LMF) share beyond :class:`MatrixFactorizationBase`:
their interaction input, per-epoch seeds and the item popularity kept for folding in users."""

from __future__ import annotations

from typing import Any, Dict, Optional

import numpy as np

from ._validation import Csr, as_csr, as_state_array, column_counts
from .base import MatrixFactorizationBase


class SGDFactorizationBase(MatrixFactorizationBase):
    """Factors with ``_extra_columns`` bias/constant columns after the ``factors`` latent ones
    (implicit's layout, so that a plain dot product scores with the biases). ``similar_items`` /
    ``similar_users`` use the latent columns only (implicit includes the bias columns in the
    cosine, so that popular items look alike)."""

    _count_params = {"factors": (1, None), "iterations": (0, None)}
    _nonnegative_params = ("learning_rate", "regularization")
    random_state: Any  # a hyper-parameter of the subclasses

    def __init__(self, num_threads: int = 0):
        super().__init__(num_threads=num_threads)
        self._popularity: Optional[np.ndarray] = None

    @staticmethod
    def _interactions(X, name: str, n_cols=None) -> Csr:
        """``X`` as canonical CSR without explicit zeros; negative values are rejected."""
        c = as_csr(X, name, n_cols=n_cols)
        # reductions, not masks: a mask is a byte per interaction, and the heap keeps it
        if c.data.size and c.data.min() < 0:
            raise ValueError(
                f"{name} has negative values: {name} holds interaction weights, which must be >= 0"
            )
        if np.count_nonzero(c.data) < c.data.size:  # explicit zeros are not interactions
            m = c.to_scipy().copy()
            m.eliminate_zeros()
            c = as_csr(m, name)
        return c

    @staticmethod
    def _seed(rng: np.random.Generator) -> int:
        return int(rng.integers(0, 2**63))

    def _set_popularity(self, c: Csr) -> None:
        self._popularity = column_counts(c.indices, c.shape[1]).astype(np.float32)

    def _get_state(self) -> Dict[str, np.ndarray]:
        state = super()._get_state()
        if self._popularity is not None:
            state["item_popularity"] = self._popularity
        return state

    def _set_state(self, state) -> None:
        super()._set_state(state)
        pop = state.get("item_popularity")
        self._popularity = (
            None if pop is None else as_state_array(pop, "item_popularity", np.float32, 1)
        )

    def _fold_in_seed(self) -> int:
        """The seed of fold-in draws: fixed per model, so a user folds in the same way alone or
        in a batch, and from call to call."""
        seed = self.random_state if isinstance(self.random_state, (int, np.integer)) else 0
        return int(seed) & (2**63 - 1)

    # ---- folding users in ---------------------------------------------------------------------
    def _fold_in(self, c: Csr, ids: np.ndarray) -> np.ndarray:
        """Factors of the rows of ``c`` (one per id, uint64) with the item factors fixed."""
        raise NotImplementedError

    def recalculate_user(self, userid, user_items):
        """The folded-in factors of users (scalar or array) from their rows of ``user_items``
        (one row per id), with the item factors fixed (see the module docstring); not stored.
        Any non-negative id is accepted; it seeds the user's draws, so a user gets the same
        vector alone or in a batch."""
        self._check_params()
        _, n_items = self._shape()
        ids, scalar, c = self._rows_per_id(
            userid,
            user_items,
            ("userid", "user_items"),
            lambda m, name: self._interactions(m, name, n_cols=n_items),
        )
        out = self._fold_in(c, ids.astype(np.uint64))
        return out[0] if scalar else out

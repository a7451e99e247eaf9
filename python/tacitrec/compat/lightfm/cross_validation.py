"""``lightfm.cross_validation`` on tacitrec: :func:`random_train_test_split`."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..._validation import check_fraction

__all__ = ["random_train_test_split"]


def random_train_test_split(interactions, test_percentage=0.2, random_state=None):
    """Splits the stored interactions of a sparse users x items matrix at random into ``(train,
    test)`` COO matrices of its shape and dtype: the interactions are shuffled, the first
    ``int((1 - test_percentage) * nnz)`` go to train and the rest to test, as LightFM (the same
    integer seed or RandomState state gives LightFM's split).

    Differs from LightFM: the (user, item) pairs of a COO matrix that stores some pair more than
    once are split, each with all its copies, so that a pair cannot land in both sets and the
    copies still count in training (LightFM splits the copies independently; without repeated
    pairs the split is LightFM's); ``test_percentage`` outside [0, 1] raises ValueError, and one
    that is not a real number (a bool or a string included) TypeError.
    The input is not modified. For a split with an exact test share, see
    :func:`tacitrec.evaluation.train_test_split`."""
    if not sp.issparse(interactions) or interactions.ndim != 2:
        raise ValueError(
            f"interactions must be a 2-D scipy.sparse matrix, got {type(interactions).__name__}"
        )
    check_fraction(test_percentage, "test_percentage")  # kept as given: LightFM's arithmetic
    if not isinstance(random_state, np.random.RandomState):
        random_state = np.random.RandomState(random_state)
    coo = sp.coo_matrix(interactions, copy=True)
    n_rows, n_cols = coo.shape
    keys = coo.row.astype(np.int64) * n_cols + coo.col
    pairs, pair_of = np.unique(keys, return_inverse=True)
    order = np.arange(len(pairs))
    random_state.shuffle(order)
    cutoff = int((1.0 - test_percentage) * len(pairs))
    if len(pairs) < coo.nnz:  # the pairs in shuffled order, each with all its copies
        rank = np.empty(len(pairs), np.int64)
        rank[order] = np.arange(len(pairs))
        entry_rank = rank[pair_of.ravel()]
        order = np.argsort(entry_rank, kind="stable")
        cutoff = int(np.searchsorted(entry_rank[order], cutoff))

    def part(idx):
        return sp.coo_matrix(
            (coo.data[idx], (coo.row[idx], coo.col[idx])), shape=coo.shape, dtype=coo.dtype
        )

    return part(order[:cutoff]), part(order[cutoff:])

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

    Differs from LightFM: repeated (user, item) entries of a COO matrix are summed first, so
    that a pair cannot land in both sets (LightFM splits the duplicates independently; without
    duplicates the split is LightFM's); ``test_percentage`` outside [0, 1] raises ValueError, and
    one that is not a real number (a bool or a string included) TypeError.
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
    if len(np.unique(keys)) < coo.nnz:
        coo.sum_duplicates()
    order = np.arange(coo.nnz)
    random_state.shuffle(order)
    cutoff = int((1.0 - test_percentage) * coo.nnz)

    def part(idx):
        return sp.coo_matrix(
            (coo.data[idx], (coo.row[idx], coo.col[idx])), shape=coo.shape, dtype=coo.dtype
        )

    return part(order[:cutoff]), part(order[cutoff:])

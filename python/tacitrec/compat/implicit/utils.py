"""``implicit.utils``: the warning class and the helpers that user code imports
(:func:`nonzeros`, :func:`check_csr`, :func:`check_random_state`,
:func:`augment_inner_product_matrix`)."""

from __future__ import annotations

import numbers
import time
import warnings

import numpy as np
import scipy.sparse as sp


class ParameterWarning(Warning):
    """Warned when an argument is accepted but converted (implicit's: a non-CSR matrix given to
    ``fit``)."""


def nonzeros(m, row):
    """``(column, value)`` pairs of the stored entries of row ``row`` of the CSR matrix ``m``.

    Unlike implicit, a row outside ``0..m.shape[0] - 1`` raises IndexError (implicit reads a
    negative row as nothing and a row past the end as a NumPy IndexError), and a row that is not
    an integer TypeError, when called."""
    if isinstance(row, (bool, np.bool_)) or not isinstance(row, numbers.Integral):
        raise TypeError(f"row must be an integer, got {type(row).__name__}")
    row, n_rows = int(row), len(m.indptr) - 1
    if not 0 <= row < n_rows:
        raise IndexError(f"row {row} is out of range: m has {n_rows} rows (0..{n_rows - 1})")
    return _nonzeros(m, row)


def _nonzeros(m, row: int):
    for index in range(m.indptr[row], m.indptr[row + 1]):
        yield m.indices[index], m.data[index]


def check_csr(user_items):
    """``user_items`` itself when it is a ``scipy.sparse.csr_matrix``; anything else is converted
    with its ``tocsr()`` and a :class:`ParameterWarning` says so (and how long it took), as
    implicit's ``check_csr``. (A ``csr_array`` is not a ``csr_matrix`` from SciPy 1.11 on: it
    warns too, and its ``tocsr()`` returns it unchanged, as in implicit.)"""
    if isinstance(user_items, sp.csr_matrix):
        return user_items
    start = time.time()
    converted = user_items.tocsr()
    warnings.warn(
        f"Method expects CSR input, and was passed {type(user_items).__name__} instead. "
        f"Converting to CSR took {time.time() - start} seconds",
        ParameterWarning,
        stacklevel=2,
    )
    return converted


def check_random_state(random_state) -> np.random.Generator:
    """A ``numpy.random.Generator`` from ``random_state``, as implicit's ``check_random_state``:
    a Generator is returned as it is; None, an int seed (or anything else
    ``numpy.random.default_rng`` takes: a SeedSequence, a BitGenerator) seeds a new one.

    A legacy ``numpy.random.RandomState`` seeds a new Generator with one draw
    ``randint(2**31)`` from it, which is what implicit 0.7.3 means to do: its own helper calls
    a ``rand_int`` method that RandomState does not have, and raises AttributeError."""
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(2**31))
    return np.random.default_rng(random_state)


def augment_inner_product_matrix(factors):
    """``(max_norm, augmented)``: ``factors`` with one column appended,
    ``sqrt(max_norm**2 - |row|**2)``, so that every row of ``augmented`` has the norm
    ``max_norm`` (the largest row norm of ``factors``). The cosine of an augmented row with a
    query that has 0 in the extra column is then its inner product divided by a constant, so an
    angular nearest-neighbour index answers maximum-inner-product queries (Bachrach et al. 2014,
    "Speeding Up the Xbox Recommender System Using a Euclidean Transformation for Inner-Product
    Spaces"). As implicit's helper: float factors keep their dtype; an empty matrix raises
    ValueError (it has no largest norm)."""
    factors = np.asarray(factors)
    norms = np.linalg.norm(factors, axis=1)
    max_norm = norms.max()
    extra = np.sqrt(max_norm**2 - norms**2)  # >= 0: squaring keeps the order of the norms
    return max_norm, np.hstack([factors, extra.reshape(-1, 1)])


__all__ = [
    "ParameterWarning",
    "nonzeros",
    "check_csr",
    "check_random_state",
    "augment_inner_product_matrix",
]

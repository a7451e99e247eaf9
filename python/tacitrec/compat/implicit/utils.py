"""``implicit.utils``: the warning class and the row iterator that user code imports."""

from __future__ import annotations

import numbers

import numpy as np


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


__all__ = ["ParameterWarning", "nonzeros"]

"""``implicit.utils``: the warning class and the row iterator that user code imports."""

from __future__ import annotations


class ParameterWarning(Warning):
    """Warned when an argument is accepted but converted (implicit's: a non-CSR matrix given to
    ``fit``)."""


def nonzeros(m, row):
    """``(column, value)`` pairs of the stored entries of row ``row`` of the CSR matrix ``m``."""
    for index in range(m.indptr[row], m.indptr[row + 1]):
        yield m.indices[index], m.data[index]


__all__ = ["ParameterWarning", "nonzeros"]

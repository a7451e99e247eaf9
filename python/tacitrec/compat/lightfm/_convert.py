"""LightFM 1.17's lenient argument types: its integer arguments given as integral floats (as
hyper-parameter searches such as hyperopt's ``quniform`` produce them) or bools, and id arrays of
float, bool or object dtype, which LightFM casts to int32. Only values that are whole numbers are
converted; anything else is passed on for tacitrec to refuse with an error naming it (LightFM
would truncate 1.5 to 1 silently)."""

from __future__ import annotations

import numpy as np


def integral(value):
    """``value`` as an int when it is a bool or a float holding a whole number; else as given."""
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if (
        isinstance(value, (float, np.floating))
        and np.isfinite(value)
        and float(value) == int(value)
    ):
        return int(value)
    return value


def id_array(ids):
    """``ids`` (an array-like of float, bool or object dtype) as int64 when every value is a whole
    number; else as given."""
    if np.isscalar(ids):
        return integral(ids)
    a = np.asarray(ids)
    if a.dtype.kind not in "fbO":
        return ids
    try:
        f = a.astype(np.float64)
    except (TypeError, ValueError):
        return ids
    if not (np.isfinite(f).all() and (f == np.trunc(f)).all()):
        return ids
    return f.astype(np.int64)

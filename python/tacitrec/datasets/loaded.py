"""What the loaders of real data sets return, and how they build it from parsed columns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import scipy.sparse as sp

from .. import _ids


@dataclass
class LoadedData:
    """What :func:`load_movielens`, :func:`load_lastfm` and the fetchers return.

    Row ``u`` of ``user_items`` and ``user_features`` is user ``user_ids[u]``; column ``i`` of
    ``user_items`` and row ``i`` of ``item_features`` is item ``item_ids[i]``.
    """

    #: users x items CSR (float32): ratings (MovieLens) or play counts (Last.fm), repeated
    #: (user, item) rows summed. Every user and item of the ratings file has a row / column, also
    #: when ``min_rating`` removed all of its entries.
    user_items: sp.csr_matrix
    #: the original user ids: int64 sorted numerically when they are integers, else str (object
    #: array) sorted as strings.
    user_ids: np.ndarray
    #: the original item ids, like ``user_ids``.
    item_ids: np.ndarray
    #: title / artist name of every item (object array of str; "" for an item the metadata file
    #: does not name), or None without a metadata file.
    item_names: Optional[np.ndarray] = None
    #: users x user features CSR (float32, 0/1), or None without a user file. Users of the user
    #: file that never appear in the ratings are dropped; rated users it lacks get an empty row.
    user_features: Optional[sp.csr_matrix] = None
    #: names of the columns of ``user_features`` (``gender=F``, ``age=25``, ...), sorted.
    user_feature_names: Optional[np.ndarray] = None
    #: items x item features CSR (float32, 0/1), or None; rows as for ``user_features``.
    item_features: Optional[sp.csr_matrix] = None
    #: names of the columns of ``item_features`` (``genre=Comedy``, ``tag=rock``), sorted.
    item_feature_names: Optional[np.ndarray] = None


def numeric_ids(keys):
    """``(ids, codes)`` of a column of numeric ids: the ids sorted (int64 when they are all
    integers) and each key's position in them."""
    ids, codes = _ids.encode(keys)
    if ids.dtype.kind == "f" and np.array_equal(ids, np.round(ids)):
        ids = ids.astype(np.int64)
    return ids, codes


def _onehot(n_rows, rows, names):
    """0/1 float32 CSR (n_rows x distinct names, columns sorted by name) of (row, name) pairs,
    leaving out rows < 0; and the column names."""
    rows = np.asarray(rows, dtype=np.int64)
    keep = rows >= 0
    columns, cols = _ids.encode(np.asarray(names, dtype=str)[keep])
    X = sp.csr_matrix(
        (np.ones(keep.sum(), np.float32), (rows[keep], cols)), shape=(n_rows, len(columns))
    )
    X.sum_duplicates()
    X.data[:] = 1
    return X, columns


def _positions(ids, keys):
    """Position of every key in the sorted ids, -1 where it is absent."""
    return _ids.lookup(ids, np.asarray(keys, dtype=ids.dtype).reshape(-1))


def assemble(users, items, values, keep=None, names=None, user_pairs=None, item_pairs=None):
    """LoadedData from (ids, codes) of the users and the items of every rating, the values, a
    mask of the ratings to keep (the others only define ids), {item id: name} and lists of
    (id, feature name); None where there is no such file."""
    (user_ids, rows), (item_ids, cols) = users, items
    if keep is not None:
        rows, cols, values = rows[keep], cols[keep], values[keep]
    X = sp.csr_matrix(
        (values.astype(np.float32), (rows, cols)), shape=(len(user_ids), len(item_ids))
    )
    X.sum_duplicates()
    out = LoadedData(X, user_ids, item_ids)
    if names is not None:
        pos = _positions(item_ids, list(names))
        out.item_names = np.full(len(item_ids), "", dtype=object)
        out.item_names[pos[pos >= 0]] = np.array(list(names.values()), dtype=object)[pos >= 0]
    for side, ids, pairs in (("user", user_ids, user_pairs), ("item", item_ids, item_pairs)):
        if pairs is not None:
            rows_of = _positions(ids, [k for k, _ in pairs]) if pairs else np.empty(0, np.int64)
            F, columns = _onehot(len(ids), rows_of, [v for _, v in pairs])
            setattr(out, f"{side}_features", F)
            setattr(out, f"{side}_feature_names", columns)
    return out


def field_pairs(rows, key, fields):
    """(id, "name=value") pairs of the named fields of every row, skipping empty values."""
    if rows is None:
        return None
    return [
        (r[key], f"{name}={r[j].strip()}")
        for r in rows
        for name, j in fields.items()
        if r[j].strip()
    ]


def titles(rows, key, title, genres, sep):
    """{id: title} and (id, "genre=g") pairs from rows listing an item's genres in one field."""
    if rows is None:
        return None, None
    pairs = [
        (r[key], f"genre={g.strip()}")
        for r in rows
        for g in r[genres].split(sep)
        if g.strip() and g.strip() != "(no genres listed)"
    ]
    return {r[key]: r[title] for r in rows}, pairs


__all__ = ["LoadedData"]

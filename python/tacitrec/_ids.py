"""Original ids to dense indices: the one id encoder of the dataset loaders, the command line,
:class:`~tacitrec.Dataset`, the frame functions and the engine adapters.

Two operations, each for NumPy arrays (files, parallel arrays) and pyarrow arrays (data frames,
whose ids keep their Arrow type), always vectorised:

- :func:`encode`: the distinct ids of some values and each value's code (its index among them),
  the ids sorted or in order of first appearance;
- :func:`lookup`: the index of each value among ids known before, -1 where it is not one.

NumPy arrays go through NumPy's sort and search (a lookup table for compact integer ids),
pyarrow arrays through Arrow's hash kernels; a Python dictionary only serves ids NumPy cannot
order (mixed or arbitrary objects). A dictionary-encoded pyarrow array (a pandas categorical, a
Parquet dictionary column) is read as :func:`tacitrec.io.read_interactions` reads one: only its
dictionary is hashed (or cast), and the rows follow their indices into it; its ids are the
values the rows use, never the dictionary's unused entries, in the order of the rows (not of
the dictionary), and come back as plain arrays of the dictionary's value type.
:class:`Encoder` is the streaming form of :func:`encode` for readers that see the ids a line or
a block at a time: it keeps one entry per distinct id.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

ORDERS = ("sorted", "appearance")


def _pyarrow():
    try:
        import pyarrow as pa
    except ImportError as e:
        raise ImportError("data frames need pyarrow: pip install pyarrow") from e
    return pa


def is_arrow(values) -> bool:
    """Whether ``values`` is a pyarrow array (checked without importing pyarrow)."""
    return type(values).__module__.split(".")[0] == "pyarrow"


def _as_codes(indices) -> np.ndarray:
    return np.asarray(indices.to_numpy(zero_copy_only=False), dtype=np.int64)


def _is_dictionary(values) -> bool:
    return is_arrow(values) and _pyarrow().types.is_dictionary(values.type)


def _indices(values) -> np.ndarray:
    """The indices of a dictionary-encoded pyarrow array into its dictionary (int64; -1 where
    the value is null)."""
    indices = values.indices
    if indices.null_count:
        indices = indices.fill_null(-1)
    return _as_codes(indices)


def value_type(values):
    """The Arrow type of the values of a pyarrow array: a dictionary-encoded array's value
    type, any other array's type."""
    typ = values.type
    return typ.value_type if _pyarrow().types.is_dictionary(typ) else typ


def cast(values, to, what: str = "ids", known_as: str = "the known ids"):
    """The pyarrow array ``values`` as Arrow type ``to`` (a plain array; a dictionary-encoded
    one through its dictionary: only the dictionary is cast, then taken by the indices; nulls
    stay null), or a ValueError naming ``what`` and ``known_as`` when it cannot be cast (a
    string that is not a number to a number type, a fraction to an integer type)."""
    pa = _pyarrow()
    if _is_dictionary(values):
        return cast(values.dictionary, to, what, known_as).take(values.indices)
    if values.type.equals(to):
        return values
    try:
        return values.cast(to)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, TypeError):
        raise ValueError(
            f"{what} of type {values.type} cannot be compared with {known_as} ({to})"
        ) from None


def encode(values, order: str = "sorted", known=None):
    """``(ids, codes)``: the distinct values and the index of every value in them (int64).

    ``values`` is a 1-D NumPy array or a pyarrow array without nulls; ``ids`` is of the same
    kind (a plain pyarrow array of the value type for a dictionary-encoded one, holding only
    the values its rows use). ``order="sorted"``: the ids sorted (numbers by value, strings
    by code point); ``order="appearance"``: in order of first appearance. ``known`` (distinct
    ids, an array of the same kind) are ids whether the values hold them or not; in order of
    appearance they come first, so that ``ids[:len(known)]`` equals them.
    """
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    n_known = 0 if known is None else len(known)
    if is_arrow(values):
        pa = _pyarrow()
        import pyarrow.compute as pc

        if values.null_count:
            raise ValueError(f"ids must not be null, got {values.null_count} nulls")
        if pa.types.is_dictionary(values.type):
            return _encode_dictionary(values, order, known)
        if known is not None:
            known = known if known.type.equals(values.type) else known.cast(values.type)
            values = pa.concat_arrays([known, values])
        encoded = pc.dictionary_encode(values)
        ids, codes = encoded.dictionary, _as_codes(encoded.indices)[n_known:]
        if order == "sorted" and len(ids):
            sort = _as_codes(pc.sort_indices(ids))
            rank = np.empty(len(sort), np.int64)
            rank[sort] = np.arange(len(sort))
            ids, codes = ids.take(pa.array(sort)), rank[codes]
        return ids, codes
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError(f"ids must be 1-D, got shape {values.shape}")
    if known is not None:
        values = np.concatenate([np.asarray(known), values])
    if order == "sorted":
        ids, codes = np.unique(values, return_inverse=True)
        return ids, codes.reshape(-1).astype(np.int64, copy=False)[n_known:]
    ids, first, codes = np.unique(values, return_index=True, return_inverse=True)
    by_first = np.argsort(first, kind="stable")
    rank = np.empty(len(ids), np.int64)
    rank[by_first] = np.arange(len(ids))
    return ids[by_first], rank[codes.reshape(-1)][n_known:]


def _encode_dictionary(values, order: str, known):
    """:func:`encode` of a dictionary-encoded pyarrow array: the dictionary (after ``known``)
    is encoded, each row takes its entry's code, and only the codes the rows (and ``known``)
    use are kept, renumbered in ``order`` (their order among the dictionary's sorted ids, or
    of first appearance among ``known`` then the rows)."""
    pa = _pyarrow()
    dictionary = values.dictionary
    n_known = 0
    if known is not None:
        n_known = len(known)
        known = known if known.type.equals(dictionary.type) else known.cast(dictionary.type)
        dictionary = pa.concat_arrays([known, dictionary])
    # a dictionary may repeat a value: its entries' codes say which are one id
    dict_ids, dict_codes = encode(dictionary, order=order)
    row_codes = np.concatenate([dict_codes[:n_known], dict_codes[n_known:][_indices(values)]])
    used, codes = encode(row_codes, order=order)
    return dict_ids.take(pa.array(used)), codes[n_known:]


def lookup(ids, values, what: str = "ids", known_as: str = "the known ids") -> np.ndarray:
    """The index of every value of ``values`` in ``ids`` (int64; -1 where it is not an id).

    ``ids`` are distinct: a NumPy array, a list (kept as it is for ids NumPy cannot order), or a
    pyarrow array; when either side is a pyarrow array, values are cast to the ids' Arrow type
    (a ValueError naming ``what`` and ``known_as`` when they cannot be). NumPy ids and values
    are compared with NumPy's search when both are numbers or both strings, otherwise in a
    dictionary (so ``1`` finds ``1.0`` there, as Python's ``==``).
    """
    if is_arrow(ids) or is_arrow(values):
        return _lookup_arrow(ids, values, what, known_as)
    arr = values if isinstance(values, np.ndarray) else _sequence_array(values)
    if arr.ndim != 1:
        raise ValueError(f"{what} must be 1-D, got shape {arr.shape}")
    if len(arr) == 0:
        return np.zeros(0, np.int64)
    if len(ids) == 0:
        return np.full(len(arr), -1, np.int64)
    keys = ids if isinstance(ids, np.ndarray) else _array_or_none(ids)
    if keys is None:
        return _lookup_dict(ids, arr)
    if keys.dtype.kind in "iu" and arr.dtype.kind in "iu":
        lo, hi = int(keys.min()), int(keys.max())
        if hi - lo <= 4 * len(keys) + (1 << 20):  # compact integer ids: a lookup table
            table = np.full(hi - lo + 1, -1, dtype=np.int64)
            table[keys - lo] = np.arange(len(keys))
            if int(arr.min()) >= lo and int(arr.max()) <= hi:
                return table[arr - lo]
            inside = (arr >= lo) & (arr <= hi)
            out = np.full(len(arr), -1, dtype=np.int64)
            out[inside] = table[arr[inside] - lo]
            return out
    if keys.dtype.kind in "iufUS" and arr.dtype.kind == keys.dtype.kind:
        if len(keys) > 1 and not (keys[:-1] < keys[1:]).all():
            order = np.argsort(keys, kind="stable")
            keys = keys[order]
        else:
            order = None
        pos = np.minimum(np.searchsorted(keys, arr), len(keys) - 1)
        found = keys[pos] == arr
        if order is not None:
            pos = order[pos]
        return np.where(found, pos, -1).astype(np.int64, copy=False)
    return _lookup_dict(ids, arr)


def _sequence_array(seq) -> np.ndarray:
    """A sequence of ids as a 1-D NumPy array that keeps every id as it is: an object array
    where NumPy would make a 2-D array of tuples, fail, or turn numbers mixed with strings
    into strings (``[1, "1"]`` would become two equal ids)."""
    seq = seq if isinstance(seq, list) else list(seq)
    try:
        arr = np.asarray(seq)
    except ValueError:
        arr = None
    if arr is not None and arr.ndim == 1:
        kind = {"U": str, "S": bytes}.get(arr.dtype.kind)
        if kind is None or all(isinstance(x, kind) for x in seq):
            return arr
    out = np.empty(len(seq), dtype=object)
    out[:] = seq
    return out


def _array_or_none(ids) -> Optional[np.ndarray]:
    """A list of ids as a 1-D NumPy array NumPy can order, or None (tuples, mixed types...)."""
    keys = _sequence_array(ids)
    return None if keys.dtype == object else keys


def _lookup_dict(ids, arr: np.ndarray) -> np.ndarray:
    index = {k: j for j, k in enumerate(ids.tolist() if isinstance(ids, np.ndarray) else ids)}
    return np.fromiter((index.get(v, -1) for v in arr.tolist()), np.int64, len(arr))


def _lookup_arrow(ids, values, what: str, known_as: str) -> np.ndarray:
    pa = _pyarrow()
    import pyarrow.compute as pc

    ids = ids if is_arrow(ids) else pa.array(ids)
    if pa.types.is_dictionary(ids.type):
        ids = cast(ids, ids.type.value_type)
    values = values if is_arrow(values) else pa.array(values)
    if pa.types.is_dictionary(values.type):  # the dictionary looked up, the rows follow it
        found = np.append(_lookup_arrow(ids, values.dictionary, what, known_as), -1)
        return found[_indices(values)]  # a null row (index -1) takes the appended -1
    values = cast(values, ids.type, what, known_as)
    return _as_codes(pc.index_in(values, value_set=ids).fill_null(-1))


class Encoder:
    """Codes of ids seen a part at a time (str or bytes), in order of first appearance; memory:
    one entry per distinct id. :meth:`sorted` gives the sorted ids and renumbers the codes."""

    def __init__(self):
        self.index: dict = {}

    def __len__(self) -> int:
        return len(self.index)

    def code(self, key) -> int:
        """The code of one id."""
        code = self.index.get(key)
        if code is None:
            code = self.index[key] = len(self.index)
        return code

    def codes(self, keys) -> np.ndarray:
        """The codes of a list of ids (int64)."""
        index = self.index
        return np.fromiter((index.setdefault(k, len(index)) for k in keys), np.int64, len(keys))

    def sorted(self, codes: np.ndarray, dtype=str, decode: Optional[Callable] = None):
        """``(ids, codes, order)``: the ids (``decode``-d when given, as ``dtype``) sorted, the
        codes renumbered to positions in them, and the first-appearance code of each sorted id."""
        keys = list(self.index) if decode is None else [decode(k) for k in self.index]
        ids = np.array(keys, dtype=dtype) if keys else np.array([], dtype=dtype)
        order = np.argsort(ids, kind="stable")
        rank = np.empty(len(ids), np.int64)
        rank[order] = np.arange(len(ids))
        return ids[order], rank[np.asarray(codes, np.int64)], order


__all__ = ["encode", "lookup", "cast", "value_type", "Encoder", "is_arrow"]

"""The one id encoder (tacitrec._ids) against plain-Python references."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tacitrec import _ids

ints = st.lists(st.integers(-50, 50), max_size=60)
texts = st.lists(st.text("abcé\u4e2d", max_size=3), max_size=60)


def appearance(values):
    return list(dict.fromkeys(values))


@settings(max_examples=60, deadline=None)
@given(st.one_of(ints, texts))
def test_encode_sorted_and_in_order_of_appearance(values):
    arr = np.array(values) if values else np.array([], dtype=np.int64)
    ids, codes = _ids.encode(arr)
    assert ids.tolist() == sorted(set(values)) and codes.dtype == np.int64
    assert ids[codes].tolist() == values
    ids, codes = _ids.encode(arr, order="appearance")
    assert ids.tolist() == appearance(values) and ids[codes].tolist() == values


@settings(max_examples=40, deadline=None)
@given(ints, ints)
def test_encode_after_known_ids(known, values):
    known = appearance(known)
    arr = np.array(values, dtype=np.int64)
    ids, codes = _ids.encode(arr, order="appearance", known=np.array(known, dtype=np.int64))
    assert ids.tolist() == appearance(known + values)
    assert len(codes) == len(values) and ids[codes].tolist() == values
    ids, codes = _ids.encode(arr, known=np.array(known, dtype=np.int64))
    assert ids.tolist() == sorted(set(known + values)) and ids[codes].tolist() == values


@pytest.mark.parametrize("values", [[3, 1, 3, 7, 1], ["b", "a", "b", "c"], []])
def test_encode_arrow_equals_numpy(values):
    pa = pytest.importorskip("pyarrow")
    col = pa.array(values, pa.int64() if not values or isinstance(values[0], int) else None)
    for order in ("sorted", "appearance"):
        ids, codes = _ids.encode(col, order=order)
        np_ids, np_codes = _ids.encode(
            np.array(values, dtype=object if not values else None), order=order
        )
        assert ids.to_pylist() == np_ids.tolist() and codes.tolist() == np_codes.tolist()
    known = (
        pa.array([7, 3], pa.int32())
        if not values or isinstance(values[0], int)
        else pa.array(["z"])
    )
    ids, codes = _ids.encode(col, order="appearance", known=known)  # cast to the values' type
    assert ids.to_pylist() == appearance(known.to_pylist() + values)
    assert [ids.to_pylist()[c] for c in codes] == values
    with pytest.raises(ValueError, match="order must be one of"):
        _ids.encode(col, order="random")


def reference_lookup(ids, values):
    index = {k: j for j, k in enumerate(ids)}
    return [index.get(v, -1) for v in values]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(-(10**12), 10**12), unique=True, max_size=40),
    st.lists(st.integers(-(10**12), 10**12), max_size=40),
    st.booleans(),
)
def test_lookup_integers_sparse_and_compact(ids, extra, compact):
    if compact:  # a dense range: the lookup-table path
        ids = [i % 97 for i in ids]
        ids, extra = appearance(ids), [e % 120 for e in extra]
    values = ids[::2] + extra
    got = _ids.lookup(np.array(ids, dtype=np.int64), np.array(values, dtype=np.int64))
    assert got.dtype == np.int64 and got.tolist() == reference_lookup(ids, values)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text("xyz", max_size=4), unique=True, max_size=30), texts, st.booleans())
def test_lookup_strings_sorted_or_not(ids, extra, presort):
    ids = sorted(ids) if presort else ids
    values = ids[1::2] + extra
    got = _ids.lookup(np.array(ids, dtype=str), np.array(values, dtype=str))
    assert got.tolist() == reference_lookup(ids, values)


def test_lookup_of_objects_numpy_cannot_order_uses_python_equality():
    ids = [(1, 2), "a", 3]
    assert _ids.lookup(ids, np.array([3.0, "a", None], dtype=object)).tolist() == [2, 1, -1]
    assert _ids.lookup(np.array([], dtype=np.int64), np.array([1, 2])).tolist() == [-1, -1]
    assert _ids.lookup(np.array([1, 2]), np.array([], dtype=np.int64)).tolist() == []
    with pytest.raises(ValueError, match="user id must be 1-D"):
        _ids.lookup([1], np.ones((2, 2)), what="user id")


def test_lookup_of_python_lists_keeps_every_id_as_it_is():
    # NumPy would make ["1", "1"] of [1, "1"] (two equal ids) and a 2-D array of tuples
    assert _ids.lookup([1, "1", 2.5], [1, "1", 2.5, "2.5", 2]).tolist() == [0, 1, 2, -1, -1]
    ids = [("x", 1), ("y", 2)]
    assert _ids.lookup(ids, [("y", 2), ("x", 1), ("x", 2)]).tolist() == [1, 0, -1]
    assert _ids.lookup(["b", "a"], ["a", "c"]).tolist() == [1, -1]


def test_lookup_arrow_casts_the_values_or_says_why_not():
    pa = pytest.importorskip("pyarrow")
    ids = pa.array(["u3", "u1", "u2"])
    assert _ids.lookup(ids, pa.array(["u2", "u9", "u3"])).tolist() == [2, -1, 0]
    assert _ids.lookup(ids, np.array(["u1"])).tolist() == [1]  # NumPy values
    assert _ids.lookup(pa.array([10, 20], pa.int32()), pa.array([20, 30])).tolist() == [1, -1]
    with pytest.raises(
        ValueError,
        match="user ids of type string cannot be compared with the "
        r"model's user ids \(int64\)",
    ):
        _ids.lookup(
            pa.array([1, 2]), pa.array(["x"]), what="user ids", known_as="the model's user ids"
        )


def _categorical(values, dictionary):
    """``values`` dictionary-encoded over ``dictionary`` (which may hold unused entries)."""
    pa = pytest.importorskip("pyarrow")
    where = {v: k for k, v in enumerate(dictionary)}
    indices = pa.array([None if v is None else where[v] for v in values], pa.int8())
    return pa.DictionaryArray.from_arrays(indices, pa.array(dictionary))


@pytest.mark.parametrize(
    "values, dictionary",
    [
        (["b", "d", "b", "a"], ["z", "a", "b", "c", "d"]),  # unused entries, not row order
        ([30, 10, 30], [10, 20, 30]),
        (["x", "x"], ["x", "y", "x"]),  # a dictionary may repeat a value
        ([], ["q"]),
    ],
)
def test_dictionary_arrays_are_the_values_their_rows_use(values, dictionary):
    # a pandas categorical or a Parquet dictionary column: its ids are the values the rows
    # use, as for the plain array of those values (was: the whole dictionary, in its order)
    pa = pytest.importorskip("pyarrow")
    col = _categorical(values, dictionary)
    plain = pa.array(values, col.type.value_type)
    for order in ("sorted", "appearance"):
        ids, codes = _ids.encode(col, order=order)
        want_ids, want_codes = _ids.encode(plain, order=order)
        assert ids.type == col.type.value_type  # a plain array of the values' type
        assert ids.to_pylist() == want_ids.to_pylist() and codes.tolist() == want_codes.tolist()
        known = pa.array(dictionary[-1:], col.type.value_type)
        ids, codes = _ids.encode(col, order=order, known=known)
        want_ids, want_codes = _ids.encode(plain, order=order, known=known)
        assert ids.to_pylist() == want_ids.to_pylist() and codes.tolist() == want_codes.tolist()
    # lookup through the dictionary; a null row is not found
    known_ids = pa.array(dictionary[::-1], col.type.value_type)
    with_null = _categorical(values + [None], dictionary)
    assert _ids.lookup(known_ids, with_null).tolist() == (
        _ids.lookup(known_ids, plain).tolist() + [-1]
    )
    assert _ids.cast(col, col.type.value_type).to_pylist() == values
    # tacitrec.io reads a dictionary column so too: the same (sorted) ids
    if values:
        from tacitrec import io

        got = io.read_interactions(pa.table({"u": col, "i": plain}), "u", "i")
        assert got.user_ids.tolist() == _ids.encode(col)[0].to_pylist()


def test_cast_of_ids_names_what_cannot_be_cast():
    pa = pytest.importorskip("pyarrow")
    assert _ids.cast(pa.array(["3", "4"]), pa.int64()).to_pylist() == [3, 4]
    assert _ids.cast(pa.array([3.0, None]), pa.int64()).to_pylist() == [3, None]
    with pytest.raises(ValueError, match=r"column 'user' of type double cannot be compared"):
        _ids.cast(pa.array([3.5]), pa.int64(), what="column 'user'")
    with pytest.raises(ValueError, match=r"of type string cannot be compared with the ids \(int"):
        _ids.cast(_categorical(["x"], ["x"]).dictionary, pa.int64(), known_as="the ids")


def test_streaming_encoder_sorts_and_decodes():
    enc = _ids.Encoder()
    codes = [enc.code(k) for k in ["b", "a", "b"]]
    codes += enc.codes(["c", "a"]).tolist()
    assert codes == [0, 1, 0, 2, 1] and len(enc) == 3
    ids, renumbered, order = enc.sorted(np.array(codes))
    assert ids.dtype.kind == "U" and ids.tolist() == ["a", "b", "c"]
    assert renumbered.tolist() == [1, 0, 1, 2, 0] and order.tolist() == [1, 0, 2]
    raw = _ids.Encoder()
    codes = raw.codes([b"\xe9t\xe9", "été".encode(), b"\0x"])  # latin-1, UTF-8, a NUL
    ids, renumbered, _ = raw.sorted(codes, object, lambda b: b.decode("latin-1"))
    assert ids.dtype == object and ids.tolist() == ["\0x", "Ã©tÃ©", "été"]
    assert ids[renumbered].tolist() == ["été", "Ã©tÃ©", "\0x"]
    empty, none, _ = _ids.Encoder().sorted(np.zeros(0, np.int64))
    assert empty.tolist() == [] and none.tolist() == []

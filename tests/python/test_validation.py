"""Coercion of inputs to the canonical form, and the errors for bad input."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from tacitrec._validation import (
    all_finite,
    as_csr,
    as_factors,
    check_count,
    check_ids,
    check_random_state,
)
from conftest import random_user_items


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo", "lil", "dok"])
@pytest.mark.parametrize("array_api", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64, np.int32, np.bool_])
def test_any_sparse_format_and_dtype_gives_the_same_canonical_csr(fmt, array_api, dtype):
    X = random_user_items(dtype=np.float64)
    ref = X.astype(dtype).astype(np.float32)
    Y = X.astype(dtype).asformat(fmt)
    if array_api:
        Y = sp.csr_array(Y).asformat(fmt)
    c = as_csr(Y, "user_items")
    assert c.indptr.dtype == np.int64 and c.indices.dtype == np.int32
    assert c.data.dtype == np.float32 and c.shape == X.shape
    np.testing.assert_array_equal(c.indptr, ref.indptr)
    np.testing.assert_array_equal(c.indices, ref.indices)
    np.testing.assert_array_equal(c.data, ref.data)


def test_duplicates_are_summed_and_input_is_not_modified():
    rows, cols = np.array([1, 0, 1, 1]), np.array([2, 1, 0, 2])
    vals = np.array([1.0, 2.0, 3.0, 4.0])
    X = sp.csr_matrix((vals, (rows, cols)), shape=(2, 3))
    # build an unsorted CSR with a duplicate by hand
    Y = sp.csr_matrix(
        (np.array([5.0, 1.0, 2.0, 2.0]), np.array([2, 0, 2, 1]), np.array([0, 0, 4])), shape=(2, 3)
    )
    before = (Y.data.copy(), Y.indices.copy(), Y.indptr.copy())
    c = as_csr(Y, "user_items")
    np.testing.assert_array_equal(c.indices, [0, 1, 2])
    np.testing.assert_array_equal(c.data, [1.0, 2.0, 7.0])
    np.testing.assert_array_equal(Y.data, before[0])
    np.testing.assert_array_equal(Y.indices, before[1])
    np.testing.assert_array_equal(Y.indptr, before[2])
    assert as_csr(X, "x").nnz == 3


@pytest.mark.parametrize("fmt", ["coo", "csr"])
def test_repeats_stay_apart_sorted_in_their_stored_order(fmt):
    rows, cols = np.array([1, 0, 1, 1, 1]), np.array([2, 1, 0, 2, 2])
    vals = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    Y = sp.coo_matrix((vals, (rows, cols)), shape=(2, 3))
    Y = (
        Y
        if fmt == "coo"
        else sp.csr_matrix(  # unsorted, repeats, built by hand
            (np.array([1.0, 3.0, 4.0, 5.0, 2.0]), np.array([2, 0, 2, 2, 1]), np.array([0, 0, 5])),
            shape=(2, 3),
        )
    )
    c = as_csr(Y, "interactions", repeats=True)
    if fmt == "coo":
        np.testing.assert_array_equal(c.indptr, [0, 1, 5])
        np.testing.assert_array_equal(c.indices, [1, 0, 2, 2, 2])
        np.testing.assert_array_equal(c.data, [2.0, 3.0, 1.0, 4.0, 5.0])
    else:
        np.testing.assert_array_equal(c.indptr, [0, 0, 5])
        np.testing.assert_array_equal(c.indices, [0, 1, 2, 2, 2])
        np.testing.assert_array_equal(c.data, [3.0, 2.0, 1.0, 4.0, 5.0])
    # without repeats (and for input without them) the canonical matrix as before
    assert as_csr(Y, "interactions").nnz == 3
    # the result passes again where repeats are allowed (LightFM's fit), not elsewhere
    assert as_csr(c, "interactions", repeats=True) is c
    with pytest.raises(ValueError, match="unsorted or duplicate column indices"):
        as_csr(c, "interactions")
    X = sp.random(5, 6, density=0.4, format="coo", random_state=1)
    a, b = as_csr(X, "x", repeats=True), as_csr(X, "x")
    for u, v in zip(a[:3], b[:3]):
        np.testing.assert_array_equal(u, v)


def test_arrays_given_as_a_csr_tuple_get_the_same_checks():
    """io.open_interactions(scipy=False) hands fits a Csr of arrays from disk: a corrupt file
    must raise naming the argument (an index out of range reached scipy's C++ and crashed)."""
    from tacitrec import AlternatingLeastSquares
    from tacitrec._validation import Csr

    good = as_csr(sp.random(6, 5, density=0.5, format="csr", random_state=0), "x")
    assert as_csr(good, "user_items") is good
    bad_index = good._replace(indices=good.indices.copy())
    bad_index.indices[3] = 1000
    unsorted = good._replace(indices=good.indices.copy())
    row = int(np.argmax(np.diff(good.indptr) >= 2))
    a = good.indptr[row]
    unsorted.indices[[a, a + 1]] = unsorted.indices[[a + 1, a]]
    nan = good._replace(data=good.data.copy())
    nan.data[0] = np.nan
    wrong = good._replace(indices=good.indices.astype(np.int64))
    for X, kind, message in (
        (bad_index, IndexError, "user_items column index in row"),
        (unsorted, ValueError, "user_items.*unsorted or duplicate"),
        (nan, ValueError, "user_items contains NaN"),
        (wrong, TypeError, "user_items.indices must be a 1-D int32 array"),
        (Csr(good.indptr[:-1], good.indices, good.data, good.shape), ValueError, "indptr"),
        (good._replace(shape=(6, -5)), TypeError, r"user_items.shape must be two counts"),
        (good._replace(shape=(6.0, 5)), TypeError, r"user_items.shape must be two counts"),
    ):
        with pytest.raises(kind, match=message):
            as_csr(X, "user_items")
        with pytest.raises(kind, match=message):
            AlternatingLeastSquares(factors=2, iterations=1).fit(X)


def test_dense_input_is_a_type_error_naming_the_argument():
    with pytest.raises(TypeError, match="user_items.*scipy.sparse"):
        as_csr(np.ones((3, 3)), "user_items")
    with pytest.raises(TypeError, match="user_items is required"):
        as_csr(None, "user_items")
    with pytest.raises(TypeError, match="real numbers"):
        as_csr(sp.csr_matrix(np.array([[1j]])), "user_items")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 1e300])
def test_non_finite_values_are_rejected(bad):
    X = sp.csr_matrix(np.array([[1.0, 0.0], [0.0, bad]]))
    with pytest.raises(ValueError, match="user_items.*NaN or infinite"):
        as_csr(X, "user_items")


@given(
    st.lists(st.sampled_from([0.0, -1.5, 2.0, 3e38, -3e38, np.inf, -np.inf, np.nan]), max_size=12)
)
@settings(max_examples=200, deadline=None)
def test_all_finite_matches_numpy(values):
    # no temporary the size of the array, same answer as np.isfinite(a).all(), also where float32
    # sums would overflow (3e38 + 3e38) or infinities cancel (inf - inf)
    a = np.array(values, dtype=np.float32).reshape(-1, 1)
    assert all_finite(a) == bool(np.isfinite(a).all())
    with pytest.raises(TypeError, match="float32"):
        all_finite(a.astype(np.float64))


def test_shape_checks_name_the_argument():
    X = random_user_items()
    with pytest.raises(ValueError, match="user_items has 40 columns, expected 41"):
        as_csr(X, "user_items", n_cols=41)
    with pytest.raises(ValueError, match="test_user_items has 60 rows, expected 3"):
        as_csr(X, "test_user_items", n_rows=3)


def test_invalid_indices_are_rejected():
    X = sp.csr_matrix((np.ones(2), np.array([0, 5]), np.array([0, 2])), shape=(1, 3))
    with pytest.raises(ValueError, match="column indices outside"):
        as_csr(X, "user_items")


def test_columns_beyond_32_bit_indices_are_refused_not_wrapped():
    # one entry in column 2**31 + 1: as int32 it would wrap to a negative index
    n_cols = 2**31 + 5
    X = sp.csr_matrix(
        (np.ones(1, np.float32), np.array([2**31 + 1], np.int64), np.array([0, 1, 1], np.int64)),
        shape=(2, n_cols),
    )
    with pytest.raises(ValueError, match=f"user_items has {n_cols} columns: at most 2\\*\\*31"):
        as_csr(X, "user_items")
    ok = sp.csr_matrix(
        (np.ones(1, np.float32), np.array([2**31 - 1], np.int64), np.array([0, 1], np.int64)),
        shape=(1, 2**31),
    )
    assert as_csr(ok, "user_items").indices.tolist() == [2**31 - 1]


def test_ids():
    ids, scalar = check_ids(np.int64(3), 5, "userid")
    assert scalar and ids.tolist() == [3] and ids.dtype == np.int32
    ids, scalar = check_ids([4, 0, 4], 5, "userid")
    assert not scalar and ids.tolist() == [4, 0, 4]
    assert check_ids([], 5, "userid")[0].shape == (0,)
    with pytest.raises(IndexError, match="userid 5 is out of range: the model has 5 users"):
        check_ids([1, 5], 5, "userid", "users")
    with pytest.raises(IndexError, match="userid -1 is negative"):
        check_ids(-1, 5, "userid")
    with pytest.raises(TypeError, match="userid"):
        check_ids(1.0, 5, "userid")
    with pytest.raises(TypeError, match="bool"):
        check_ids(True, 5, "userid")
    with pytest.raises(ValueError, match="1-D"):
        check_ids([[1]], 5, "userid")


def test_counts_factors_and_random_state():
    assert check_count(3, "N") == 3
    with pytest.raises(ValueError, match="N must be at least 1"):
        check_count(0, "N")
    with pytest.raises(TypeError, match="N must be an integer"):
        check_count(2.5, "N")
    f = np.ones((2, 3))
    out = as_factors(f, "user_factors")
    assert out.dtype == np.float32 and out.flags.c_contiguous
    out[0, 0] = 5
    assert f[0, 0] == 1  # a copy
    with pytest.raises(ValueError, match="item_factors has 3 factors, expected 4"):
        as_factors(f, "item_factors", 4)
    with pytest.raises(ValueError, match="NaN"):
        as_factors([[np.nan]], "user_factors")
    a = check_random_state(7).random(3)
    np.testing.assert_array_equal(a, check_random_state(7).random(3))
    with pytest.raises(TypeError, match="random_state"):
        check_random_state("seed")


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 12),
    st.integers(1, 12),
    st.lists(st.tuples(st.integers(0, 11), st.integers(0, 11), st.integers(-3, 3)), max_size=60),
)
def test_canonical_csr_matches_dense_property(n_rows, n_cols, triplets):
    t = [(r, c, v) for r, c, v in triplets if r < n_rows and c < n_cols]
    rows = np.array([r for r, _, _ in t], dtype=np.int64)
    cols = np.array([c for _, c, _ in t], dtype=np.int64)
    vals = np.array([v for _, _, v in t], dtype=np.float64)
    X = sp.coo_matrix((vals, (rows, cols)), shape=(n_rows, n_cols))
    c = as_csr(X, "x")
    np.testing.assert_array_equal(c.to_scipy().toarray(), X.toarray().astype(np.float32))
    for r in range(n_rows):
        row = c.indices[c.indptr[r] : c.indptr[r + 1]]
        assert np.all(np.diff(row) > 0)
    pick = np.array([r % n_rows for r in range(0, 3 * n_rows, 2)])
    np.testing.assert_array_equal(c.take_rows(pick).to_scipy().toarray(), X.toarray()[pick])


def test_complex_and_text_factors_are_refused_not_truncated():
    with pytest.raises(ValueError, match="user_factors must hold real numbers, got dtype complex"):
        as_factors(np.ones((2, 3)) * (1 + 1j), "user_factors")
    with pytest.raises(ValueError, match="must hold real numbers"):
        as_factors("1", "user_factors")
    with pytest.raises(ValueError, match="max_sampled must be at least 1, got -1.0"):
        check_count(-1.0, "max_sampled")  # out of range reported before the type

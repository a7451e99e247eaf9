"""Sparse matrices built from raw, possibly inconsistent arrays: every entry point must raise a
clear error or work, never crash the interpreter (SciPy trusts such arrays and reads out of
bounds). Each example runs in a child process, so a crash fails the test instead of the run.
``TACITREC_FUZZ_EXAMPLES`` sets the number of examples (25 in CI)."""

import os
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tacitrec
from tacitrec._validation import check_sparse_arrays
from tacitrec.evaluation import ranking_metrics_at_k, train_test_split
from tacitrec.knn import bm25_weight

EXAMPLES = int(os.environ.get("TACITREC_FUZZ_EXAMPLES", "25"))


@st.composite
def raw_csr(draw):
    n_rows, n_cols = draw(st.integers(0, 4)), draw(st.integers(1, 6))
    nnz = draw(st.integers(0, 8))
    indptr = draw(
        st.lists(st.integers(-2, 10), min_size=n_rows + 1, max_size=n_rows + 1)
        | st.lists(st.integers(-2, 10), min_size=0, max_size=6)
    )
    indices = draw(st.lists(st.integers(-2, 8), min_size=nnz, max_size=nnz))
    data = np.float32(draw(st.lists(st.floats(0.5, 3), min_size=nnz, max_size=nnz)))
    fmt = draw(st.sampled_from(["csr", "csc"]))
    major = n_rows if fmt == "csr" else n_cols
    if len(indptr) != major + 1:
        indptr = indptr[: major + 1] + [nnz] * max(0, major + 1 - len(indptr))
    cls = sp.csr_matrix if fmt == "csr" else sp.csc_matrix
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return cls(
                (data, np.array(indices, dtype=np.int32), np.array(indptr)), shape=(n_rows, n_cols)
            )
    except (ValueError, TypeError):  # SciPy's own constructor refused: nothing to test
        return cls((n_rows, n_cols), dtype=np.float32)


def _calls(X):
    n_users, n_items = X.shape
    model = tacitrec.PopularityRecommender().fit(sp.csr_matrix(np.ones((3, n_items))))
    yield lambda: tacitrec.PopularityRecommender().fit(X)
    yield lambda: tacitrec.AlternatingLeastSquares(factors=2, iterations=1).fit(
        X, show_progress=False
    )
    yield lambda: tacitrec.BM25Recommender(K=3).fit(X, show_progress=False)
    yield lambda: tacitrec.LightFM(no_components=2).fit(X)
    yield lambda: train_test_split(X, 0.5, random_state=0)
    yield lambda: bm25_weight(X)
    yield lambda: model.recommend(np.arange(n_users), X, N=2)
    yield lambda: ranking_metrics_at_k(model, X, X, K=2, show_progress=False)


def _child() -> None:
    """In a fresh interpreter: the matrix from stdin through every entry point. Any Python
    exception is fine, a crash is not; an unexpected exception kind exits with 3."""
    X = pickle.loads(sys.stdin.buffer.read())
    code = 0
    for call in _calls(X):
        try:
            call()
        except (ValueError, TypeError, IndexError):
            pass
        except BaseException:  # noqa: BLE001
            code = 3
    sys.exit(code)


def _survives(X) -> int:
    """Runs every entry point on ``X`` in a new process (not a fork: a forked child would
    inherit thread pools without their threads); returns its exit code, negative for a
    signal."""
    here = os.path.dirname(os.path.abspath(__file__))
    script = (
        f"import sys; sys.path.insert(0, {here!r}); import test_raw_arrays; "
        "test_raw_arrays._child()"
    )
    return subprocess.run(
        [sys.executable, "-c", script], input=pickle.dumps(X), capture_output=True, timeout=120
    ).returncode


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(raw_csr())
def test_inconsistent_arrays_raise_and_never_crash(X):
    code = _survives(X)
    assert code == 0, f"killed by signal {-code}" if code < 0 else f"exit code {code}"


def _consistent(X) -> bool:
    """Plain-Python reference: do the arrays describe a matrix of X's shape?"""
    major, minor = X.shape if X.format == "csr" else X.shape[::-1]
    indptr, indices = [int(v) for v in X.indptr], [int(v) for v in X.indices]
    return (
        len(indptr) == major + 1
        and indptr[0] == 0
        and indptr[-1] == len(indices)
        and all(a <= b for a, b in zip(indptr, indptr[1:]))
        and all(0 <= i < minor for i in indices)
        and len(X.data) == len(indices)
    )


@settings(max_examples=EXAMPLES * 5, deadline=None)
@given(raw_csr())
def test_the_check_accepts_exactly_the_consistent_arrays(X):
    # SciPy's own check_format(full_check=True) is no reference: it accepts an indptr of
    # [0, -1] ("-1 stored elements")
    try:
        check_sparse_arrays(X, "X")
        accepted = True
    except ValueError:
        accepted = False
    assert accepted == _consistent(X)


def test_the_reported_reproduction():
    X = sp.csr_matrix(
        (np.float32([0.5, 2, 1, 0.5, 0.5]), np.array([-1, 3, 3, 1, 5]), np.array([0, 10000000, 5])),
        shape=(2, 5),
    )
    assert _survives(X) == 0
    with pytest.raises(ValueError, match="user_items is not a valid sparse matrix: indptr"):
        tacitrec.AlternatingLeastSquares().fit(X)


@pytest.mark.parametrize(
    "indptr, indices, problem",
    [
        ([0, 1, 3], [0, 1], "indptr runs from 0 to 3, expected 0 to 2"),
        ([0, 1, 2], [0, 7], "column indices outside 0..4"),
        ([0, 2, 1, 2], [0, 1], r"indptr has shape \(4,\), expected \(3,\)"),
        ([0, 2, 1], [0, 1], "indptr runs from 0 to 1"),
        ([0, -1, 2], [0, 1], "indptr decreases"),
    ],
)
def test_each_problem_is_named(indptr, indices, problem):
    X = sp.csr_matrix(np.eye(2, 5, dtype=np.float32))
    X.indptr, X.indices = np.array(indptr), np.array(indices, dtype=np.int32)  # after checks
    with pytest.raises(ValueError, match=problem):
        check_sparse_arrays(X, "X")


def test_coo_rows_and_columns_are_checked():
    X = sp.coo_matrix((np.float32([1, 1]), (np.array([0, 1]), np.array([0, 1]))), shape=(2, 2))
    X.col[1] = 9  # made inconsistent after construction
    with pytest.raises(ValueError, match="col indices outside 0..1"):
        tacitrec.PopularityRecommender().fit(X)

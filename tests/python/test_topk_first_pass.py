"""The int8 first pass of batch top-k gives exactly the full f32 path's results (issue 18).

``TACITREC_EXACT_TOPK=full`` forces the full path; ``always`` uses the first pass where the CPU
has AVX-512 VNNI and the call qualifies from 64 queries (by default only from 512, where it repays
quantising the items). On other CPUs every run takes the full path and the comparison still holds.
"""

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import sparse

from tacitrec import MatrixFactorizationBase


def _factors(rng, rows, f, kind):
    if kind == "ties":
        return rng.integers(-2, 3, size=(rows, f)).astype(np.float32)
    x = rng.standard_normal((rows, f)).astype(np.float32)
    if kind == "power_law":
        norms = (1.0 / (1.0 - 0.999 * rng.random(rows))) ** 0.7
        x *= norms[:, None].astype(np.float32)
        x[rng.random(rows) < 0.2] = 0.0
    elif kind == "tiny":
        x *= np.float32(2.0**-35)
    elif kind == "huge":
        x *= np.float32(2.0**45)  # beyond the first pass's range: the full path runs
    return x


def _both(call):
    """``call()`` with the first pass wherever it applies, then with the full path forced; the
    first pass without AMX tiles (``no-tiles``) must give the same as the full path too."""
    saved = os.environ.pop("TACITREC_EXACT_TOPK", None)
    try:
        os.environ["TACITREC_EXACT_TOPK"] = "always"
        ids_a, sc_a = call()
        os.environ["TACITREC_EXACT_TOPK"] = "no-tiles"
        ids_v, sc_v = call()
        os.environ["TACITREC_EXACT_TOPK"] = "full"
        ids_f, sc_f = call()
    finally:
        os.environ.pop("TACITREC_EXACT_TOPK", None)
        if saved is not None:
            os.environ["TACITREC_EXACT_TOPK"] = saved
    np.testing.assert_array_equal(ids_v, ids_f)
    np.testing.assert_array_equal(sc_v.view(np.int32), sc_f.view(np.int32))
    return (ids_a, sc_a), (ids_f, sc_f)


@settings(max_examples=25, deadline=None)
@given(
    n_users=st.integers(64, 180),
    n_items=st.integers(200, 6000),
    f=st.sampled_from([2, 7, 16, 32, 64]),
    n=st.integers(1, 20),
    ukind=st.sampled_from(["gauss", "ties", "power_law", "tiny", "huge"]),
    ikind=st.sampled_from(["gauss", "ties", "power_law", "tiny", "huge"]),
    seed=st.integers(0, 2**32 - 1),
    filt=st.booleans(),
    subset=st.booleans(),
)
def test_recommend_identical_to_full_path(n_users, n_items, f, n, ukind, ikind, seed, filt, subset):
    rng = np.random.default_rng(seed)
    model = MatrixFactorizationBase(num_threads=2)
    model.user_factors = _factors(rng, n_users, f, ukind)
    model.item_factors = _factors(rng, n_items, f, ikind)
    liked = sparse.random(
        n_users, n_items, density=0.02, format="csr", random_state=seed, dtype=np.float32
    )
    kw = {}
    if filt:
        kw["filter_items"] = rng.choice(n_items, size=n_items // 10, replace=False)
    if subset:
        kw["items"] = rng.choice(n_items, size=n_items // 2, replace=False)
    users = np.arange(n_users)
    (ids_a, sc_a), (ids_f, sc_f) = _both(lambda: model.recommend(users, liked, N=n, **kw))
    np.testing.assert_array_equal(ids_a, ids_f)
    np.testing.assert_array_equal(sc_a.view(np.int32), sc_f.view(np.int32))


@pytest.mark.parametrize("kind", ["gauss", "power_law"])
def test_similar_items_identical_to_full_path(kind):
    rng = np.random.default_rng(3)
    model = MatrixFactorizationBase(num_threads=2)
    model.user_factors = _factors(rng, 50, 32, kind)
    model.item_factors = _factors(rng, 2500, 32, kind)
    items = np.arange(300)
    (ids_a, sc_a), (ids_f, sc_f) = _both(lambda: model.similar_items(items, N=10))
    np.testing.assert_array_equal(ids_a, ids_f)
    np.testing.assert_array_equal(sc_a.view(np.int32), sc_f.view(np.int32))


def test_first_pass_matches_numpy_reference():
    """Against a plain NumPy top-k of the dot products (no exact ties on Gaussian factors)."""
    rng = np.random.default_rng(5)
    model = MatrixFactorizationBase(num_threads=2)
    U = rng.standard_normal((200, 64)).astype(np.float32)
    V = rng.standard_normal((5000, 64)).astype(np.float32)
    model.user_factors, model.item_factors = U, V
    ids, scores = model.recommend(np.arange(200), None, N=10, filter_already_liked_items=False)
    ref = U.astype(np.float64) @ V.T.astype(np.float64)
    want = np.argsort(-ref, axis=1, kind="stable")[:, :10]
    np.testing.assert_array_equal(ids, want)
    np.testing.assert_allclose(scores, np.take_along_axis(ref, want, 1), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("n", [1, 10, 16, 17])
def test_liked_items_are_the_best_scored(n):
    """Users whose liked items are their best-scored ones (the user vector is the sum of its
    liked items' vectors), on a catalogue long enough for the seed pass, with tied copies of
    rows: the threshold taken before the scan must leave liked items out."""
    rng = np.random.default_rng(11)
    n_users, n_items, f = 150, 5000, 48
    base = _factors(rng, 1200, f, "power_law")
    V = base[rng.integers(0, base.shape[0], n_items)]
    rows, cols = [], []
    for u in range(n_users):
        liked = rng.choice(n_items, size=30, replace=False)
        rows += [u] * 30
        cols += list(liked)
    X = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_users, n_items))
    U = (X @ V).astype(np.float32)
    model = MatrixFactorizationBase(num_threads=2)
    model.user_factors, model.item_factors = U, V
    users = np.arange(n_users)
    (ids_a, sc_a), (ids_f, sc_f) = _both(lambda: model.recommend(users, X, N=n))
    np.testing.assert_array_equal(ids_a, ids_f)
    np.testing.assert_array_equal(sc_a.view(np.int32), sc_f.view(np.int32))
    assert not np.isin(ids_a, cols).all()
    for u in range(n_users):
        assert not np.isin(ids_a[u], X[u].indices).any()

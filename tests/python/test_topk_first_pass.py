"""The int8 first pass of batch top-k gives exactly the full f32 path's results (issue 18).

``TACITREC_EXACT_TOPK=full`` forces the full path; the default uses the first pass where the CPU
has AVX-512 VNNI and the call qualifies (64+ queries). On other CPUs both runs take the full path
and the comparison still holds.
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
    """``call()`` with the first pass allowed, then with the full path forced."""
    saved = os.environ.pop("TACITREC_EXACT_TOPK", None)
    try:
        ids_a, sc_a = call()
        os.environ["TACITREC_EXACT_TOPK"] = "full"
        ids_f, sc_f = call()
    finally:
        os.environ.pop("TACITREC_EXACT_TOPK", None)
        if saved is not None:
            os.environ["TACITREC_EXACT_TOPK"] = saved
    return (ids_a, sc_a), (ids_f, sc_f)


@settings(max_examples=25, deadline=None)
@given(
    n_users=st.integers(64, 180),
    n_items=st.integers(200, 3000),
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

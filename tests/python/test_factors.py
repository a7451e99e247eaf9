"""MatrixFactorizationBase specifics: factor assignment, similar items/users by cosine."""

import numpy as np
import pytest

from tacitrec import MatrixFactorizationBase
from conftest import reference_topk


@pytest.fixture
def model():
    rng = np.random.default_rng(5)
    m = MatrixFactorizationBase()
    m.user_factors = rng.standard_normal((40, 6))
    f = rng.standard_normal((25, 6))
    f[3] = 0  # a zero vector has cosine 0 with everything
    m.item_factors = f
    return m


def _cosine(F):
    n = np.linalg.norm(F, axis=1)
    n[n == 0] = 1
    G = F / n[:, None]
    return G @ G.T


def test_similar_items_is_cosine_and_includes_the_item(model):
    C = _cosine(model.item_factors.astype(np.float64))
    ids, sc = model.similar_items([0, 3, 10], N=5)
    for row, i in enumerate([0, 3, 10]):
        if i != 3:
            assert ids[row][0] == i and abs(sc[row][0] - 1) < 1e-5
        assert list(ids[row]) == reference_topk(C[i], 5)
        np.testing.assert_allclose(sc[row], C[i][ids[row]], atol=1e-5)
    i1, s1 = model.similar_items(10, N=5, filter_items=[10], items=list(range(20)))
    assert i1.ndim == 1 and 10 not in i1 and max(i1) < 20


def test_one_query_equals_its_row_of_a_batch_at_catalogue_scale():
    """One query divides by the item norms as it streams the rows (the positions split across
    threads); a batch scores the kept normalised rows: the same ids, scores within rounding."""
    rng = np.random.default_rng(11)
    m = MatrixFactorizationBase(num_threads=2)
    m.user_factors = rng.standard_normal((3, 16))
    f = rng.standard_normal((80_000, 16)) * rng.pareto(2.0, 80_000)[:, None]
    f[5] = 0
    m.item_factors = f
    batch_ids, batch_sc = m.similar_items([9, 4, 5], N=20, filter_items=[1, 2])
    for row, item in enumerate([9, 4, 5]):
        ids, sc = m.similar_items(item, N=20, filter_items=[1, 2])
        np.testing.assert_array_equal(ids, batch_ids[row])
        np.testing.assert_allclose(sc, batch_sc[row], rtol=1e-6, atol=1e-7)
    F = m.item_factors.astype(np.float64)
    n = np.linalg.norm(F, axis=1)
    want = F @ (F[9] / n[9]) / np.where(n == 0, 1, n)
    want[[1, 2]] = -np.inf
    assert list(batch_ids[0]) == list(np.argsort(-want, kind="stable")[:20])
    # a zero query ties every item at 0: the lowest ids, less the filtered ones
    assert list(batch_ids[2]) == [0] + list(range(3, 22)) and not batch_sc[2].any()


def test_similar_users(model):
    C = _cosine(model.user_factors.astype(np.float64))
    ids, sc = model.similar_users(7, N=4, filter_users=[7])
    assert 7 not in ids
    np.testing.assert_allclose(sc, np.sort(np.delete(C[7], 7))[::-1][:4], atol=1e-5)
    with pytest.raises(IndexError, match="userid 40"):
        model.similar_users(40)
    with pytest.raises(IndexError, match="filter_users 99"):
        model.similar_users(1, filter_users=[99])


def test_assignment_copies_validates_and_refreshes_cache(model):
    model.similar_items(0, N=3)  # fills the cache
    f = model.item_factors.copy()
    f[0] = -f[0]
    model.item_factors = f
    ids, sc = model.similar_items(1, N=25)
    C = _cosine(f.astype(np.float64))
    np.testing.assert_allclose(sc, C[1][ids], atol=1e-5)
    assert list(ids) == reference_topk(C[1], 25)
    f[1] = 100  # the model holds a copy
    assert model.item_factors[1, 0] != 100
    with pytest.raises(ValueError, match="user_factors has 5 factors, expected 6"):
        model.user_factors = np.ones((3, 5))
    with pytest.raises(ValueError, match="NaN"):
        model.item_factors = np.full((3, 6), np.nan)


def test_factors_edited_in_place_are_seen_by_similar_items_and_users(model):
    """The normalised factors kept for batch calls are checked against a fingerprint of the
    factors on every call, and a single query divides by the norms as it reads the rows: editing
    the factors in place (implicit's cached norms go stale then) changes the results of both."""
    model.similar_items([0, 1], N=3)
    model.similar_users([0, 1], N=3)  # both caches filled
    model.item_factors[1] = 2 * model.item_factors[0]  # item 1 now points where item 0 does
    model.user_factors[7] = -model.user_factors[0]
    for factors, call in (
        (model.item_factors, model.similar_items),
        (model.user_factors, model.similar_users),
    ):
        C = _cosine(factors.astype(np.float64))
        for ids, sc in (call(0, N=len(factors)), [r[0] for r in call([0, 2], N=len(factors))]):
            np.testing.assert_allclose(sc, C[0][ids], atol=1e-5)
            assert list(ids) == reference_topk(C[0], len(factors))
    ids, sc = model.similar_items(0, N=2)
    assert set(ids) == {0, 1} and np.allclose(sc, 1.0, atol=1e-6)
    # a single bit anywhere changes the fingerprint
    from tacitrec import _core

    f = model.item_factors.copy()
    before = _core.factors_fingerprint(f)
    f.view(np.uint32)[24, 5] ^= 1
    assert _core.factors_fingerprint(f) != before


def test_recalculate_user_is_refused_without_support(model):
    import scipy.sparse as sp

    with pytest.raises(NotImplementedError, match="recalculate"):
        model.recommend(0, sp.csr_matrix((1, 25)), recalculate_user=True)


def test_user_items_may_be_omitted_when_nothing_needs_it(model):
    ids, sc = model.recommend([1, 2], N=3, filter_already_liked_items=False)
    S = model.user_factors @ model.item_factors.T
    for row, u in enumerate([1, 2]):
        assert list(ids[row]) == reference_topk(S[u], 3)


@pytest.mark.parametrize("scale", [1e-25, 1e-22, 1e20, 3e38])
def test_cosines_of_rows_past_float32_squares_are_true_for_one_query_and_a_batch(scale):
    """Rows whose float32 squares under- or overflow (values below about 1e-19 or above 1.8e19;
    at 3e38 the dot product with a unit query overflows too) have their true cosines, the same
    for one query (which divides by the norms as it scores) and for a batch (normalised rows):
    a zero f32 norm made such rows score 0, an infinite one raised or scored 0."""
    m = MatrixFactorizationBase()
    m.user_factors = np.ones((2, 2))
    m.item_factors = np.array([[1.0, 1.0], [1.0, 1.0], [1.0, -1.0], [1.0, 0.0]]) * scale
    want = np.array([1.0, 1.0, 0.0, np.sqrt(0.5)])
    for ids, sc in (m.similar_items(0, N=4), [r[0] for r in m.similar_items([0, 2], N=4)]):
        assert list(ids) == [0, 1, 3, 2]
        np.testing.assert_allclose(sc, want[ids], atol=1e-6)


def test_scores_that_overflow_float32_are_an_error_not_a_ranking():
    """Finite factors near 1e20 give dot products past float32's range: +inf scores (tied, so
    ranked by id), -inf ones (that look like padding) and NaN ones (inf - inf, that were dropped
    as if filtered). Each call that would rank them raises, one user or a batch, whether the
    exact driver or the int8 first pass is asked for (its range stops short of overflow, so
    it hands such factors back to the exact driver)."""
    rng = np.random.default_rng(0)
    m = MatrixFactorizationBase()
    m.user_factors = rng.standard_normal((70, 4)) * 1e20
    m.item_factors = rng.standard_normal((6, 4)) * 1e20
    one, every = {"filter_already_liked_items": False}, np.arange(70)
    calls = (lambda: m.recommend(0, N=6, **one), lambda: m.recommend(every, N=3, **one))
    for first_pass in ("full", "always"):
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("TACITREC_EXACT_TOPK", first_pass)
            for call in calls:
                with pytest.raises(ValueError, match="scores: a score overflowed float32"):
                    call()
    # the largest factors that cannot overflow rank as float64 does
    m.user_factors = m.user_factors / 1e20 * 1e18
    m.item_factors = m.item_factors / 1e20 * 1e18
    S = m.user_factors.astype(np.float64) @ m.item_factors.T.astype(np.float64)
    ids, _ = m.recommend(every, N=6, **one)
    for u in range(70):
        assert list(ids[u]) == reference_topk(S[u], 6)


@pytest.mark.parametrize("name", ["AlternatingLeastSquares", "BPR", "LMF"])
def test_a_fit_whose_factors_exceed_the_memory_available_raises_before_allocating(
    name, monkeypatch
):
    """Factors larger than the memory available (a shape inflated by raw ids, say) raise
    MemoryError naming the bytes, before the fit allocates them or transposes the matrix (Linux
    would grant the allocation and kill the process when its pages are touched). The bytes are
    (users + items) x (4 x columns + 8); a continued fit allocates no new factors."""
    import scipy.sparse as sp
    import tacitrec
    from tacitrec import _validation

    cls = {
        "AlternatingLeastSquares": tacitrec.AlternatingLeastSquares,
        "BPR": tacitrec.BayesianPersonalizedRanking,
        "LMF": tacitrec.LogisticMatrixFactorization,
    }[name]
    X = sp.random(30, 200_000, density=1e-4, format="csr", random_state=0, dtype=np.float32)
    X.data[:] = 1.0
    model = cls(factors=8, iterations=1, random_state=0)
    columns = 8 + model._extra_columns
    need = (30 + 200_000) * (4 * columns + 8)
    monkeypatch.setattr(_validation, "available_memory", lambda: need - 1)
    message = rf"on 30 users x 200,000 items .* needs at least {need / 1e9:.2f} GB"
    with pytest.raises(MemoryError, match=message):
        model.fit(X, show_progress=False)
    assert model.item_factors is None  # nothing was drawn
    monkeypatch.setattr(_validation, "available_memory", lambda: need)
    model.fit(X, show_progress=False)
    assert model.item_factors.shape == (200_000, columns)
    monkeypatch.setattr(_validation, "available_memory", lambda: 0)
    model.fit(X, show_progress=False)  # continues from its factors: nothing new to allocate

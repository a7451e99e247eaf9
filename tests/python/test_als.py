"""Implicit ALS against dense NumPy solutions of the normal equations and implicit's definitions."""

import numpy as np
import pytest
import scipy.sparse as sp

from tacitrec import AlternatingLeastSquares, ModelFitError
from conftest import random_user_items


def data(seed=0):
    X = random_user_items(n_users=40, n_items=30, density=0.2, seed=seed)
    X = X.tolil()
    X[3, 5] = -2.0  # a disliked item
    X[7, :] = 0  # an empty user
    X = X.tocsr()
    X.eliminate_zeros()
    return X


def exact_rows(C, Y, reg):
    """Dense solution of every row's normal equations (implicit's confidence convention)."""
    C = C.toarray().astype(np.float64)
    Y = Y.astype(np.float64)
    out = np.zeros((C.shape[0], Y.shape[1]))
    for u in range(C.shape[0]):
        if not C[u].any():
            continue
        conf = np.where(C[u] != 0, np.abs(C[u]), 1.0)
        pref = (C[u] > 0).astype(np.float64)
        A = Y.T @ (conf[:, None] * Y) + reg * np.eye(Y.shape[1])
        out[u] = np.linalg.solve(A, Y.T @ (conf * pref))
    return out


def implicit_loss(C, U, V, reg):
    C = C.toarray().astype(np.float64)
    S = U.astype(np.float64) @ V.astype(np.float64).T
    conf = np.where(C != 0, np.abs(C), 1.0)
    pref = (C > 0).astype(np.float64)
    num = (conf * (pref - S) ** 2).sum() + conf[C < 0].sum()  # implicit counts negatives too
    num += reg * ((U.astype(np.float64) ** 2).sum() + (V.astype(np.float64) ** 2).sum())
    return num / conf.sum()


def test_recalculate_user_is_the_exact_solution():
    X = data()
    m = AlternatingLeastSquares(
        factors=6, regularization=0.1, alpha=2.0, iterations=3, random_state=0
    ).fit(X, show_progress=False)
    users = np.arange(X.shape[0])
    got = m.recalculate_user(users, X)
    want = exact_rows(2.0 * X, m.item_factors, 0.1)
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)
    assert np.all(got[7] == 0)
    one = m.recalculate_user(5, X[5])
    assert one.shape == (6,)
    np.testing.assert_allclose(one, want[5], rtol=1e-3, atol=1e-4)
    items = m.recalculate_item([0, 4], X.T.tocsr()[[0, 4]])
    np.testing.assert_allclose(
        items, exact_rows(2.0 * X.T.tocsr()[[0, 4]], m.user_factors, 0.1), rtol=1e-3, atol=1e-4
    )


def test_recalculate_and_explain_follow_factors_edited_in_place():
    """recalculate_user / recalculate_item / explain keep the fixed side's Gram matrix between
    calls, checked against a fingerprint of those factors on every call: editing them in place
    (implicit's cached YtY goes stale then) gives the exact solution for the new factors."""
    X = data()
    m = AlternatingLeastSquares(
        factors=6, regularization=0.1, alpha=2.0, iterations=3, random_state=0
    ).fit(X, show_progress=False)
    users = np.arange(X.shape[0])
    m.recalculate_user(users, X)
    m.recalculate_item([0, 4], X.T.tocsr()[[0, 4]])
    m.item_factors[3] *= 5.0
    m.user_factors[2] = 1.0
    got = m.recalculate_user(users, X)
    np.testing.assert_allclose(got, exact_rows(2.0 * X, m.item_factors, 0.1), rtol=1e-3, atol=1e-4)
    items = m.recalculate_item([0, 4], X.T.tocsr()[[0, 4]])
    want = exact_rows(2.0 * X.T.tocsr()[[0, 4]], m.user_factors, 0.1)
    np.testing.assert_allclose(items, want, rtol=1e-3, atol=1e-4)
    total, _, _ = m.explain(11, X, 3, N=3)
    assert total == pytest.approx(float(got[11] @ m.item_factors[3]), rel=1e-3, abs=1e-5)


def test_cholesky_fit_matches_dense_alternation_and_cg_converges_to_it():
    X = data(1)
    chol = AlternatingLeastSquares(
        factors=5, regularization=0.05, use_cg=False, iterations=1, random_state=3
    ).fit(X, show_progress=False)
    # the same alternation in NumPy from the same initial factors
    rng = np.random.default_rng(3)
    U = rng.random((40, 5), dtype=np.float32) * np.float32(0.01)
    V = rng.random((30, 5), dtype=np.float32) * np.float32(0.01)
    U = exact_rows(X, V, 0.05)
    V = exact_rows(X.T.tocsr(), U, 0.05)
    np.testing.assert_allclose(chol.item_factors, V, rtol=1e-3, atol=1e-4)
    errors = []
    for steps in (1, 2, 5, 20):
        cg = AlternatingLeastSquares(
            factors=5, regularization=0.05, cg_steps=steps, iterations=1, random_state=3
        ).fit(X, show_progress=False)
        errors.append(np.abs(cg.item_factors - chol.item_factors).max())
    assert errors[-1] < 1e-3 and errors[0] > 10 * errors[-1], errors


@pytest.mark.parametrize("use_cg", [True, False])
def test_training_loss_is_implicits_definition_and_decreases(use_cg):
    X = data(2)
    losses = []
    m = AlternatingLeastSquares(
        factors=8,
        regularization=0.02,
        alpha=3.0,
        use_cg=use_cg,
        iterations=6,
        calculate_training_loss=True,
        random_state=0,
    )
    m.fit(X, show_progress=False, callback=lambda it, secs, loss: losses.append((it, loss)))
    assert [it for it, _ in losses] == list(range(6))
    assert losses[-1][1] == pytest.approx(
        implicit_loss(3.0 * X, m.user_factors, m.item_factors, 0.02), rel=1e-4
    )
    assert losses[-1][1] < losses[0][1]
    calls = []
    AlternatingLeastSquares(factors=4, iterations=2, random_state=0).fit(
        X, show_progress=False, callback=lambda *a: calls.append(a)
    )
    assert [c[2] for c in calls] == [None, None]


def test_deterministic_for_any_thread_count_and_continuing_fit():
    X = random_user_items(n_users=300, n_items=80, density=0.1, seed=5)
    fits = [
        AlternatingLeastSquares(factors=16, iterations=4, random_state=7, num_threads=t).fit(
            X, show_progress=False
        )
        for t in (1, 2)
    ]
    np.testing.assert_array_equal(fits[0].user_factors, fits[1].user_factors)
    np.testing.assert_array_equal(fits[0].item_factors, fits[1].item_factors)
    # a second fit on the same shape continues from the current factors
    m = AlternatingLeastSquares(factors=16, iterations=2, random_state=7).fit(
        X, show_progress=False
    )
    m.fit(X, show_progress=False)
    np.testing.assert_array_equal(m.item_factors, fits[0].item_factors)
    # another shape re-initialises instead of failing
    m.fit(random_user_items(n_users=50, n_items=20, seed=1), show_progress=False)
    assert m.user_factors.shape == (50, 16) and m.item_factors.shape == (20, 16)


def test_recommend_with_recalculated_users_and_partial_fit():
    X = data(3)
    m = AlternatingLeastSquares(factors=6, iterations=5, random_state=1).fit(X, show_progress=False)
    new_row = sp.csr_matrix(np.eye(1, 30, 4) * 3.0)
    ids, scores = m.recommend(100, new_row, N=5, recalculate_user=True)  # an unknown user
    x = m.recalculate_user(100, new_row)
    S = m.item_factors @ x
    S[4] = -np.inf
    np.testing.assert_array_equal(ids, np.argsort(-S, kind="stable")[:5])
    np.testing.assert_allclose(scores, S[ids], rtol=1e-5)
    m.partial_fit_users([2, 45], X[[3, 5]])
    assert m.user_factors.shape == (46, 6)
    np.testing.assert_allclose(m.user_factors[45], m.recalculate_user(5, X[5]), rtol=1e-6)
    assert np.all(m.user_factors[40:45] == 0)
    with pytest.raises(ValueError, match="one row per id"):
        m.partial_fit_users([1, 2], X[[1]])
    # a new item with no users yet gets zero factors; the item dimension grows
    m.partial_fit_items([31], sp.csr_matrix((1, 46)))
    assert m.item_factors.shape == (32, 6) and np.all(m.item_factors[31] == 0)


def test_partial_fit_growth_is_checked_against_the_memory_available(monkeypatch):
    """An id far beyond the users (a raw id) grows the factors to that many rows: checked like a
    fit's new factors, MemoryError naming the bytes, the model unchanged."""
    from tacitrec import _validation

    X = data(3)
    m = AlternatingLeastSquares(factors=6, iterations=2, random_state=1).fit(X, show_progress=False)
    before = m.user_factors.copy()
    need = 1_000_001 * 6 * 4
    monkeypatch.setattr(_validation, "available_memory", lambda: need - 1)
    with pytest.raises(MemoryError, match="user factors to 1,000,001 rows .* needs at least"):
        m.partial_fit_users([1_000_000], X[[5]])
    np.testing.assert_array_equal(m.user_factors, before)
    monkeypatch.setattr(_validation, "available_memory", lambda: need)
    m.partial_fit_users([1_000_000], X[[5]])
    assert m.user_factors.shape == (1_000_001, 6)


def test_explain_decomposes_the_recalculated_score():
    X = data(4)
    m = AlternatingLeastSquares(factors=6, regularization=0.1, iterations=5, random_state=2).fit(
        X, show_progress=False
    )
    u, item = 11, 17
    total, top, weights = m.explain(u, X, item, N=3)
    want = float(m.recalculate_user(u, X[u]) @ m.item_factors[item])
    assert total == pytest.approx(want, rel=1e-4, abs=1e-6)
    assert len(top) == min(3, X[u].nnz) and top == sorted(top, key=lambda t: -t[1])
    again = m.explain(u, X[u], item, user_weights=weights, N=3)  # one row, reused weights
    assert again[0] == pytest.approx(total) and again[1] == top
    # the one id validation: no negative, fractional, string or missing user ids
    with pytest.raises(IndexError, match="userid -2 is negative"):
        m.explain(-2, X, item)
    for bad in (1.5, "1", None):
        with pytest.raises(TypeError, match="userid must be an integer"):
            m.explain(bad, X, item)


def test_explain_takes_one_user_one_item_and_its_own_weights():
    X = data()
    m = AlternatingLeastSquares(factors=4, iterations=2, random_state=0).fit(X, show_progress=False)
    for bad in ([0, 1], []):
        with pytest.raises(ValueError, match="userid must be one user id"):
            m.explain(bad, X, 3)
    for bad in ([3, 4], [3], []):
        with pytest.raises(ValueError, match="itemid must be one item id"):
            m.explain(0, X, bad)
    _, _, weights = m.explain(0, X[0], 3)
    for bad in (np.zeros((2, 2)), np.ones(4), np.full((4, 4), np.nan), (weights[0],)):
        with pytest.raises(TypeError, match=r"user_weights must be the \(c, lower\) Cholesky"):
            m.explain(0, X[0], 3, user_weights=bad)
    with pytest.raises(ValueError, match=r"user_weights .* its c has shape \(2, 2\)"):
        m.explain(0, X[0], 3, user_weights=(np.eye(2), False))
    with pytest.raises(ValueError, match="user_weights contains NaN"):
        m.explain(0, X[0], 3, user_weights=(np.full((4, 4), np.nan), False))
    with pytest.raises(TypeError, match="user_weights' lower must be True or False"):
        m.explain(0, X[0], 3, user_weights=(weights[0], "no"))
    assert m.explain(0, X[0], 3, user_weights=list(weights))[0] == m.explain(0, X[0], 3)[0]


def test_bad_parameters_and_divergence():
    X = data()
    with pytest.raises(ValueError, match="dtype must be float32 or float64"):
        AlternatingLeastSquares(dtype=np.int32).fit(X, show_progress=False)
    with pytest.raises(ValueError, match="use_gpu=True: tacitrec has no GPU path"):
        AlternatingLeastSquares(use_gpu=True)
    with pytest.raises(ValueError, match="factors must be at least 1"):
        AlternatingLeastSquares(factors=0).fit(X, show_progress=False)
    with pytest.raises(ValueError, match="regularization"):
        AlternatingLeastSquares(regularization=-1).fit(X, show_progress=False)
    for name in ("regularization", "alpha"):  # True was taken for 1.0 (factors=True is refused)
        with pytest.raises(ValueError, match=f"{name} must be a finite number >= 0, got True"):
            AlternatingLeastSquares(**{name: True}).fit(X, show_progress=False)
    # all-zero factors are a fixed point of every solver: the fit would return zeros
    with pytest.raises(ValueError, match="init_std must be > 0"):
        AlternatingLeastSquares(init_std=0).fit(X, show_progress=False)
    with pytest.raises(ValueError, match="alpha=1e\\+38 overflows float32"):
        AlternatingLeastSquares(alpha=1e38).fit(X * 1e5, show_progress=False)
    # finite but huge confidences overflow the CG residuals: a clear error, not NaN factors
    with pytest.raises(ModelFitError, match="user_factors became NaN or infinite in iteration 0"):
        AlternatingLeastSquares(factors=4, iterations=2, random_state=0).fit(
            X * 1e25, show_progress=False
        )


def test_quality_on_planted_data():
    from tacitrec import PopularityRecommender
    from tacitrec.datasets import synthetic
    from tacitrec.evaluation import ranking_metrics_at_k, train_test_split

    X = synthetic(n_users=1500, n_items=500, random_state=1).user_items
    train, test = train_test_split(X, 0.8, random_state=0)
    als = AlternatingLeastSquares(
        factors=32, regularization=0.05, iterations=10, alpha=2.0, random_state=0
    ).fit(train, show_progress=False)
    pop = PopularityRecommender().fit(train)
    a = ranking_metrics_at_k(als, train, test, K=10, show_progress=False)
    p = ranking_metrics_at_k(pop, train, test, K=10, show_progress=False)
    assert a["ndcg"] > 1.2 * p["ndcg"], (a, p)


def test_matches_implicit_when_installed():
    """Optional: same seed and hyper-parameters give implicit 0.7.3's losses (skipped without
    it)."""
    pytest.importorskip("implicit")
    import warnings
    from implicit.cpu.als import AlternatingLeastSquares as Peer

    X = random_user_items(n_users=200, n_items=60, density=0.1, seed=2)
    for use_cg in (True, False):
        ours, theirs = [], []
        params = dict(
            factors=8,
            regularization=0.05,
            use_cg=use_cg,
            iterations=5,
            calculate_training_loss=True,
            random_state=4,
        )
        AlternatingLeastSquares(**params).fit(
            X, show_progress=False, callback=lambda i, s, loss, out=ours: out.append(loss)
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Peer(**params).fit(
                X, show_progress=False, callback=lambda i, s, loss, out=theirs: out.append(loss)
            )
        np.testing.assert_allclose(ours, theirs, rtol=1e-4)


@pytest.mark.parametrize("solver", ["cg", "cholesky"])
@pytest.mark.parametrize(
    "objective", [{}, {"unobserved_weight": 0.3, "regularization_exponent": 1.0}]
)
def test_a_block_solved_against_its_touched_rows_equals_the_whole_solve(solver, objective):
    """The distributed fit's kernel call: rows solved against only the fixed rows they touch
    (columns remapped), the whole side's Gram matrix (the sum of its blocks' float64 Grams) and
    its row count give the same rows as a solve against the whole fixed side."""
    from tacitrec import _core

    rng = np.random.default_rng(4)
    X = random_user_items(40, 300, density=0.02, seed=4)
    Y = rng.normal(size=(300, 7)).astype(np.float32)
    x0 = rng.random((40, 7), dtype=np.float32)
    params = dict(
        regularization=0.1,
        solver=solver,
        cg_steps=3,
        unobserved_weight=objective.get("unobserved_weight"),
        regularization_exponent=objective.get("regularization_exponent", 0.0),
    )
    gram = sum(_core.als_gram(Y[a:b]) for a, b in [(0, 100), (100, 101), (101, 300)])
    np.testing.assert_allclose(gram, Y.astype(np.float64).T @ Y.astype(np.float64), rtol=1e-12)
    csr = (X.indptr.astype(np.int64), X.indices.astype(np.int32), X.data, X.shape)
    whole = x0.copy()
    _core.als_solve(csr, whole, Y, 1, **params)
    touched = np.unique(X.indices)
    local = np.searchsorted(touched, X.indices).astype(np.int32)
    block = x0.copy()
    sub = (csr[0], local, X.data, (40, len(touched)))
    _core.als_solve(
        sub, block, np.ascontiguousarray(Y[touched]), 1, gram=gram, fixed_rows=300, **params
    )
    np.testing.assert_allclose(block, whole, rtol=1e-6, atol=1e-7)
    if objective:  # the row count matters for the scaled regularisation: a wrong one differs
        wrong = x0.copy()
        _core.als_solve(sub, wrong, np.ascontiguousarray(Y[touched]), 1, gram=gram, **params)
        assert np.abs(wrong - whole).max() > 1e-3
    with pytest.raises(ValueError, match="gram"):
        _core.als_solve(csr, x0.copy(), Y, 1, gram=np.zeros((6, 6)), **params)
    with pytest.raises(ValueError, match="fixed_rows"):
        _core.als_solve(csr, x0.copy(), Y, 1, gram=gram, fixed_rows=299, **params)

"""iALS as Rendle, Zhang & Koren (2022) tuned it (unobserved_weight, regularization_exponent,
init_std) and the iALS++ subspace solver (Rendle et al. 2021), against dense NumPy references."""

import numpy as np
import pytest
import scipy.sparse as sp

from tacitrec import AlternatingLeastSquares
from conftest import random_user_items


def data(seed=0, n_users=40, n_items=30):
    X = random_user_items(n_users=n_users, n_items=n_items, density=0.2, seed=seed).tolil()
    X[3, 5] = -2.0  # a disliked item
    X[7, :] = 0  # an empty user
    X = X.tocsr()
    X.eliminate_zeros()
    return X


def row_regs(C, reg, a0, nu):
    """reg * (n + a0 N)^nu per row (n stored entries, N columns); a0=None counts entries only."""
    n = np.diff(C.indptr).astype(np.float64)
    return reg * (n + (0.0 if a0 is None else a0 * C.shape[1])) ** nu


def exact_rows(C, Y, reg, a0=None, nu=0.0):
    """The exact minimiser of every row's objective, in float64: implicit's convention
    (a0=None: missing pairs weigh 1, observed ones |c| instead) or Rendle et al.'s (every pair
    pushed to 0 with weight a0, observed pairs also pulled to p with weight |c|)."""
    regs = row_regs(C, reg, a0, nu)
    C = C.toarray().astype(np.float64)
    Y = Y.astype(np.float64)
    out = np.zeros((C.shape[0], Y.shape[1]))
    for u in range(C.shape[0]):
        obs = C[u] != 0
        if not obs.any():
            continue
        if a0 is None:
            w = np.where(obs, np.abs(C[u]), 1.0)  # every column, missing ones weigh 1
        else:
            w = a0 + np.abs(C[u])  # observed: a0 (to 0) + |c| (to p); missing: a0
        target = np.where(C[u] > 0, C[u], 0.0)  # the weighted target sum: |c| p
        A = Y.T @ (w[:, None] * Y) + regs[u] * np.eye(Y.shape[1])
        out[u] = np.linalg.solve(A, Y.T @ target)
    return out


def objective(C, U, V, reg, a0, nu):
    """Rendle et al.'s objective, divided by the total weight (the reported loss)."""
    Cd = C.toarray().astype(np.float64)
    U, V = U.astype(np.float64), V.astype(np.float64)
    S = U @ V.T
    obs = Cd != 0
    pref = (Cd > 0).astype(np.float64)
    num = (np.abs(Cd)[obs] * (pref[obs] - S[obs]) ** 2).sum() + a0 * (S**2).sum()
    num += (row_regs(C, reg, a0, nu) * (U**2).sum(1)).sum()
    num += (row_regs(C.T.tocsr(), reg, a0, nu) * (V**2).sum(1)).sum()
    return num / (np.abs(Cd[obs]).sum() + a0 * Cd.size)


def initial(n_users, n_items, f, seed, std=None):
    rng = np.random.default_rng(seed)
    if std is None:
        return (
            rng.random((n_users, f), dtype=np.float32) * np.float32(0.01),
            rng.random((n_items, f), dtype=np.float32) * np.float32(0.01),
        )
    s = std / np.sqrt(f)
    return (
        rng.normal(0.0, s, (n_users, f)).astype(np.float32),
        rng.normal(0.0, s, (n_items, f)).astype(np.float32),
    )


OBJECTIVES = [
    dict(unobserved_weight=None, regularization_exponent=1.0),  # Spark's count scaling
    dict(unobserved_weight=0.3, regularization_exponent=0.0),
    dict(unobserved_weight=0.3, regularization_exponent=1.0),
    dict(unobserved_weight=0.05, regularization_exponent=0.5),
]


def _ref_kw(kw):
    return dict(a0=kw["unobserved_weight"], nu=kw["regularization_exponent"])


@pytest.mark.parametrize("kw", OBJECTIVES)
def test_recalculate_user_solves_the_objectives_normal_equations(kw):
    X = data()
    m = AlternatingLeastSquares(
        factors=6, regularization=0.05, alpha=2.0, iterations=3, random_state=0, **kw
    ).fit(X, show_progress=False)
    want = exact_rows(2.0 * X, m.item_factors, 0.05, **_ref_kw(kw))
    got = m.recalculate_user(np.arange(X.shape[0]), X)
    np.testing.assert_allclose(got, want, rtol=2e-3, atol=1e-4)
    assert np.all(got[7] == 0)
    items = m.recalculate_item([0, 4], X.T.tocsr()[[0, 4]])
    # an item's regularisation counts its users against all users of the model
    Xt = (2.0 * X.T.tocsr())[[0, 4]]
    Xt = sp.csr_matrix((Xt.data, Xt.indices, Xt.indptr), shape=(2, X.shape[0]))
    np.testing.assert_allclose(
        items, exact_rows(Xt, m.user_factors, 0.05, **_ref_kw(kw)), rtol=2e-3, atol=1e-4
    )


@pytest.mark.parametrize("kw", OBJECTIVES)
def test_cholesky_epoch_is_the_dense_alternation_and_cg_approaches_it(kw):
    X = data(1)
    common = dict(factors=5, regularization=0.02, iterations=1, random_state=3, init_std=0.1, **kw)
    chol = AlternatingLeastSquares(solver="cholesky", **common).fit(X, show_progress=False)
    U, V = initial(40, 30, 5, 3, std=0.1)
    U = exact_rows(X, V, 0.02, **_ref_kw(kw))
    V = exact_rows(X.T.tocsr(), U, 0.02, **_ref_kw(kw))
    np.testing.assert_allclose(chol.user_factors, U, rtol=2e-3, atol=2e-4)
    np.testing.assert_allclose(chol.item_factors, V, rtol=2e-3, atol=2e-4)
    errors = []
    for steps in (1, 20):
        cg = AlternatingLeastSquares(cg_steps=steps, **common).fit(X, show_progress=False)
        errors.append(np.abs(cg.item_factors - chol.item_factors).max())
    assert errors[-1] < 2e-3 and errors[0] > 10 * errors[-1], errors


def ials_pp_epoch(C, U, V, reg, block, a0=None, nu=0.0):
    """One iALS++ epoch in NumPy (float64): for each block of columns, every user's block set to
    its exact minimiser with the rest fixed, then every item's."""
    U, V = U.astype(np.float64).copy(), V.astype(np.float64).copy()
    Ct = C.T.tocsr()
    for lo in range(0, U.shape[1], block):
        b = slice(lo, min(lo + block, U.shape[1]))
        for M, X, Y in ((C, U, V), (Ct, V, U)):
            regs = row_regs(M, reg, a0, nu)
            D = M.toarray().astype(np.float64)
            for u in range(D.shape[0]):
                obs = D[u] != 0
                if not obs.any():
                    X[u] = 0
                    continue
                w = np.where(obs, np.abs(D[u]), 1.0) if a0 is None else a0 + np.abs(D[u])
                target = np.where(D[u] > 0, D[u], 0.0)
                # minimise over X[u, b] with X[u, rest] fixed
                rest = X[u].copy()
                rest[b] = 0
                Yb = Y[:, b]
                A = Yb.T @ (w[:, None] * Yb) + regs[u] * np.eye(Yb.shape[1])
                rhs = Yb.T @ (target - w * (Y @ rest))
                X[u, b] = np.linalg.solve(A, rhs)
    return U, V


@pytest.mark.parametrize(
    "kw", [dict(unobserved_weight=None, regularization_exponent=0.0)] + OBJECTIVES
)
def test_ials_pp_epoch_is_block_coordinate_descent(kw):
    X = data(2)
    f = 7
    common = dict(factors=f, regularization=0.03, iterations=1, random_state=5, init_std=0.5, **kw)
    U0, V0 = initial(40, 30, f, 5, std=0.5)
    for block in (3, f, 100):
        m = AlternatingLeastSquares(solver="ials++", block_size=block, **common).fit(
            X, show_progress=False
        )
        U, V = ials_pp_epoch(X, U0, V0, 0.03, min(block, f), **_ref_kw(kw))
        np.testing.assert_allclose(m.user_factors, U, rtol=2e-3, atol=2e-4)
        np.testing.assert_allclose(m.item_factors, V, rtol=2e-3, atol=2e-4)
    # with one block, an epoch is exactly one Cholesky ALS epoch
    whole = AlternatingLeastSquares(solver="ials++", block_size=f, **common).fit(
        X, show_progress=False
    )
    chol = AlternatingLeastSquares(solver="cholesky", **common).fit(X, show_progress=False)
    np.testing.assert_allclose(whole.user_factors, chol.user_factors, rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(whole.item_factors, chol.item_factors, rtol=1e-3, atol=1e-5)


def test_ials_pp_reaches_the_exact_als_objective_and_never_increases_it():
    X = data(3, n_users=80, n_items=60)
    kw = dict(
        factors=8,
        regularization=0.01,
        unobserved_weight=0.2,
        regularization_exponent=1.0,
        init_std=0.1,
        random_state=0,
        calculate_training_loss=True,
    )
    losses = {}
    for solver, block, iters in (("cholesky", 128, 40), ("ials++", 2, 40)):
        got = []
        m = AlternatingLeastSquares(solver=solver, block_size=block, iterations=iters, **kw)
        m.fit(X, show_progress=False, callback=lambda it, secs, loss, got=got: got.append(loss))
        losses[solver] = got
        assert got[-1] == pytest.approx(
            objective(X, m.user_factors, m.item_factors, 0.01, 0.2, 1.0), rel=1e-4
        )
    pp = np.array(losses["ials++"])
    assert np.all(np.diff(pp) <= 1e-6 * pp[:-1]), pp  # descent: never up (up to rounding)
    assert pp[-1] == pytest.approx(losses["cholesky"][-1], rel=2e-2), (pp[-1], losses)
    assert pp[0] > pp[-1] * 1.2


def test_implicits_objective_is_a_scaled_paper_objective():
    """With binary data and confidence c, implicit's row solve from sqrt(t) Y equals sqrt(t)
    times the paper's from Y, with alpha_0 = 1 / (c - 1), regularization / c, t = c / (c - 1)
    (the module docstring's derivation)."""
    X = data(4)
    X.data[:] = 1.0
    c, reg, f = 5.0, 0.2, 4
    t = c / (c - 1)
    rng = np.random.default_rng(0)
    Y = rng.normal(size=(30, f)).astype(np.float32)
    today = AlternatingLeastSquares(factors=f, alpha=c, regularization=reg)
    today.user_factors, today.item_factors = np.zeros((40, f), np.float32), np.sqrt(t) * Y
    paper = AlternatingLeastSquares(
        factors=f, unobserved_weight=1 / (c - 1), regularization=reg / c
    )
    paper.user_factors, paper.item_factors = np.zeros((40, f), np.float32), Y
    users = np.arange(40)
    np.testing.assert_allclose(
        today.recalculate_user(users, X),
        np.sqrt(t) * paper.recalculate_user(users, X),
        rtol=1e-3,
        atol=1e-5,
    )


def test_loss_is_the_papers_objective():
    X = data(5)
    for kw in OBJECTIVES[1:]:
        got = []
        m = AlternatingLeastSquares(
            factors=6,
            regularization=0.05,
            alpha=1.5,
            iterations=2,
            calculate_training_loss=True,
            random_state=0,
            **kw,
        )
        m.fit(X, show_progress=False, callback=lambda it, secs, loss, got=got: got.append(loss))
        assert got[-1] == pytest.approx(
            objective(1.5 * X, m.user_factors, m.item_factors, 0.05, **_ref_kw(kw)), rel=1e-4
        )


def test_init_std_draws_normal_factors_and_defaults_are_implicits():
    X = data(6)
    m = AlternatingLeastSquares(factors=64, iterations=0, init_std=0.1, random_state=9).fit(
        X, show_progress=False
    )
    U, V = initial(40, 30, 64, 9, std=0.1)
    np.testing.assert_array_equal(m.user_factors, U)
    np.testing.assert_array_equal(m.item_factors, V)
    assert np.std(m.item_factors) == pytest.approx(0.1 / 8, rel=0.05)
    # the defaults: implicit's uniform draw, and None / 0 / use_cg select today's solver exactly
    base = AlternatingLeastSquares(factors=5, iterations=2, random_state=1).fit(
        X, show_progress=False
    )
    same = AlternatingLeastSquares(
        factors=5,
        iterations=2,
        random_state=1,
        solver="cg",
        unobserved_weight=None,
        regularization_exponent=0.0,
    ).fit(X, show_progress=False)
    np.testing.assert_array_equal(base.user_factors, same.user_factors)
    np.testing.assert_array_equal(base.item_factors, same.item_factors)
    chol = AlternatingLeastSquares(factors=5, iterations=2, random_state=1, use_cg=False).fit(
        X, show_progress=False
    )
    chol2 = AlternatingLeastSquares(
        factors=5, iterations=2, random_state=1, use_cg=True, solver="cholesky"
    ).fit(X, show_progress=False)
    np.testing.assert_array_equal(chol.item_factors, chol2.item_factors)


def test_ials_pp_is_deterministic_for_any_thread_count_and_continues():
    X = random_user_items(n_users=300, n_items=80, density=0.1, seed=5)
    kw = dict(
        factors=24,
        block_size=8,
        solver="ials++",
        unobserved_weight=0.1,
        regularization_exponent=1.0,
        init_std=0.1,
        random_state=7,
    )
    fits = [
        AlternatingLeastSquares(iterations=3, num_threads=t, **kw).fit(X, show_progress=False)
        for t in (1, 2)
    ]
    np.testing.assert_array_equal(fits[0].user_factors, fits[1].user_factors)
    np.testing.assert_array_equal(fits[0].item_factors, fits[1].item_factors)
    m = AlternatingLeastSquares(iterations=2, **kw).fit(X, show_progress=False)
    m.iterations = 1
    m.fit(X, show_progress=False)  # warm start: a third epoch from the current factors
    np.testing.assert_allclose(m.item_factors, fits[0].item_factors, rtol=1e-5, atol=1e-6)


def test_explain_under_the_papers_objective():
    X = data(7)
    m = AlternatingLeastSquares(
        factors=6,
        regularization=0.01,
        unobserved_weight=0.2,
        regularization_exponent=1.0,
        iterations=4,
        random_state=2,
    ).fit(X, show_progress=False)
    total, top, _ = m.explain(11, X, 17, N=3)
    want = float(m.recalculate_user(11, X[11]) @ m.item_factors[17])
    assert total == pytest.approx(want, rel=1e-3, abs=1e-6)


@pytest.mark.parametrize(
    "name,value,match",
    [
        ("unobserved_weight", -0.1, "unobserved_weight"),
        ("unobserved_weight", float("nan"), "unobserved_weight"),
        ("unobserved_weight", "0.1", "unobserved_weight"),
        ("regularization_exponent", -1.0, "regularization_exponent"),
        ("regularization_exponent", float("inf"), "regularization_exponent"),
        ("init_std", -0.1, "init_std"),
        ("solver", "lu", "solver must be one of 'cg', 'cholesky', 'ials\\+\\+'"),
        ("block_size", 0, "block_size"),
    ],
)
def test_bad_values_name_the_argument(name, value, match):
    X = data()
    with pytest.raises((ValueError, TypeError), match=match) as info:
        AlternatingLeastSquares(factors=4, iterations=1, **{name: value}).fit(
            X, show_progress=False
        )
    if not isinstance(value, str) or name == "solver":
        assert info.type is ValueError
    with pytest.raises((ValueError, TypeError), match=match):
        AlternatingLeastSquares().set_params(**{name: value})

"""LMF: one iteration against a NumPy implementation of implicit's update, thread independence,
fold-in, quality on planted data."""

import numpy as np
import pytest
import scipy.sparse as sp

from tacitrec import LogisticMatrixFactorization, ModelFitError, PopularityRecommender
from conftest import random_user_items


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def half_step(C, X, Y, G, fixed, lr, reg, n_neg, neg_item):
    """Every non-empty row of X from C with Y fixed; negatives all ``neg_item`` (``n_neg(n)``
    of them for a row with n positives)."""
    X = X.copy()
    for u in range(C.shape[0]):
        row = C[u]
        pos = np.flatnonzero(row)
        if len(pos) == 0:
            continue
        g = sum(row[i] * (1 - sigmoid(X[u] @ Y[i])) * Y[i] for i in pos)
        g = g - n_neg(len(pos)) * sigmoid(X[u] @ Y[neg_item]) * Y[neg_item]
        g = g - reg * X[u]
        G[u] += g * g
        step = lr / np.sqrt(1e-6 + G[u]) * g
        step[fixed] = 0
        X[u] += step
    return X


@pytest.mark.parametrize(
    "max_negatives,n_neg",
    [(None, lambda n: 3 * n), (2, lambda n: min(2, 3 * n)), ("auto", lambda n: min(4, 3 * n))],
)
def test_one_iteration_matches_numpy(max_negatives, n_neg):
    # one item and a column of zeros: every negative draw is item 0, so the update is exact
    rng = np.random.default_rng(0)
    C = np.zeros((6, 1), dtype=np.float32)
    C[[0, 2, 3, 5], 0] = [1.0, 2.0, 0.5, 3.0]
    m = LogisticMatrixFactorization(
        factors=2,
        learning_rate=0.3,
        regularization=0.2,
        neg_prop=3,
        iterations=0,
        random_state=0,
        max_negatives=max_negatives,
    )
    m.fit(sp.csr_matrix(C), show_progress=False)
    # perturb the latent factors and the user biases (not the constant column) of active users
    noise = rng.normal(size=m.user_factors.shape).astype(np.float32) * 0.1
    noise[:, 2] = 0
    noise[[1, 4]] = 0
    m.user_factors = m.user_factors + noise
    X0, Y0 = m.user_factors.astype(np.float64), m.item_factors.astype(np.float64)
    m.iterations = 1
    m.fit(sp.csr_matrix(C), show_progress=False)
    want = half_step(C.astype(np.float64), X0, Y0, np.zeros_like(X0), 2, 0.3, 0.2, n_neg, 0)
    np.testing.assert_allclose(m.user_factors, want, rtol=1e-5, atol=1e-6)
    assert np.all(m.user_factors[[1, 4]] == 0)  # users without interactions stay at zero
    assert np.all(m.user_factors[[0, 2, 3, 5], 2] == 1) and np.all(m.item_factors[:, 3] == 1)


def test_item_half_step_matches_numpy_without_negatives():
    X = random_user_items(n_users=30, n_items=12, density=0.3, seed=1)
    m = LogisticMatrixFactorization(
        factors=3, learning_rate=0.5, regularization=0.1, neg_prop=0, iterations=0, random_state=1
    ).fit(X, show_progress=False)
    X0, Y0 = m.user_factors.astype(np.float64), m.item_factors.astype(np.float64)
    m.iterations = 2
    m.fit(X, show_progress=False)
    C = X.toarray().astype(np.float64)
    Gu, Gi = np.zeros_like(X0), np.zeros_like(Y0)
    none = lambda n: 0  # noqa: E731
    for _ in range(2):
        X0 = half_step(C, X0, Y0, Gu, 3, 0.5, 0.1, none, 0)
        Y0 = half_step(C.T, Y0, X0, Gi, 4, 0.5, 0.1, none, 0)
    np.testing.assert_allclose(m.user_factors, X0, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(m.item_factors, Y0, rtol=1e-4, atol=1e-5)


def test_threads_do_not_change_factors():
    X = random_user_items(n_users=200, n_items=80, density=0.1, seed=2)
    a, b = (
        LogisticMatrixFactorization(factors=6, iterations=4, random_state=3, num_threads=t).fit(
            X, show_progress=False
        )
        for t in (1, 2)
    )
    assert np.array_equal(a.user_factors, b.user_factors)
    assert np.array_equal(a.item_factors, b.item_factors)


def test_quality_and_fold_in_on_planted_data():
    from tacitrec.datasets import synthetic
    from tacitrec.evaluation import ranking_metrics_at_k, train_test_split

    X = synthetic(n_users=1500, n_items=500, random_state=1).user_items
    train, test = train_test_split(X, 0.8, random_state=0)
    m = LogisticMatrixFactorization(factors=16, iterations=20, random_state=0).fit(
        train, show_progress=False
    )
    r = ranking_metrics_at_k(m, train, test, K=10, show_progress=False)
    p = ranking_metrics_at_k(
        PopularityRecommender().fit(train), train, test, K=10, show_progress=False
    )
    # measured ndcg@10 0.35 against popularity's 0.19
    assert r["ndcg"] > 1.5 * p["ndcg"], (r, p)
    users = np.arange(300)
    batch = m.recalculate_user(users, train[users])
    assert np.array_equal(m.recalculate_user(7, train[7]), batch[7])
    assert np.all(batch[:, 16] == 1.0)
    ids, _ = m.recommend(users, train[users], N=10, recalculate_user=True)
    hits = sum(len(np.intersect1d(ids[k], test[u].indices)) for k, u in enumerate(users))
    stored, _ = m.recommend(users, train[users], N=10)
    hits_stored = sum(len(np.intersect1d(stored[k], test[u].indices)) for k, u in enumerate(users))
    assert hits > 0.8 * hits_stored, (hits, hits_stored)


def test_divergence_and_bad_parameters():
    X = random_user_items(n_users=40, n_items=30, density=0.2, seed=3)
    with pytest.raises(ModelFitError, match="learning_rate"):
        LogisticMatrixFactorization(
            factors=4, iterations=5, learning_rate=1e38, random_state=0
        ).fit(X, show_progress=False)
    with pytest.raises(ValueError, match="max_negatives"):
        LogisticMatrixFactorization(max_negatives=-1).fit(X, show_progress=False)
    with pytest.raises(ValueError, match="neg_prop"):
        LogisticMatrixFactorization(neg_prop=-3).fit(X, show_progress=False)
    m = LogisticMatrixFactorization(factors=4, iterations=1, random_state=0).fit(
        X, show_progress=False
    )
    m.fit(random_user_items(n_users=10, n_items=7, seed=4), show_progress=False)
    assert m.user_factors.shape == (10, 6) and m.item_factors.shape == (7, 6)

"""evaluation.beyond_accuracy against a plain-Python reference computed from the same lists."""

import math

import numpy as np
import pytest
import scipy.sparse as sp

from tacitrec import AlternatingLeastSquares, BM25Recommender, PopularityRecommender
from tacitrec.datasets import synthetic
from tacitrec.evaluation import beyond_accuracy


def reference(model, X, K, vectors):
    users = [u for u in range(X.shape[0]) if X[u].nnz]
    n_users = len(users)
    had = np.bincount(X.indices, minlength=X.shape[1])
    pop = had / n_users
    info = [-math.log2(max(h, 1) / n_users) for h in had]
    ids, _ = model.recommend(users, X[users], N=K)
    counts = [0] * X.shape[1]
    rows = []
    for row in ids:
        items = [int(i) for i in row if i >= 0]
        for i in items:
            counts[i] += 1
        div = float("nan")
        if vectors is not None and len(items) >= 2:
            pairs = [(a, b) for n, a in enumerate(items) for b in items[n + 1 :]]
            div = sum(1 - float(np.dot(vectors[a], vectors[b])) for a, b in pairs) / len(pairs)
        rows.append(
            (
                sum(np.float32(pop[i]) for i in items) / len(items),
                sum(np.float32(info[i]) for i in items) / len(items),
                div,
            )
        )
    xs = sorted(counts)
    n = len(xs)
    gini = sum((2 * (k + 1) - n - 1) * x for k, x in enumerate(xs)) / (n * sum(xs))
    mean = lambda j: float(np.nanmean([r[j] for r in rows]))  # noqa: E731
    return (
        {
            "coverage": sum(c > 0 for c in counts) / n,
            "gini": gini,
            "popularity": mean(0),
            "novelty": mean(1),
            "diversity": mean(2),
        },
        users,
        rows,
    )


@pytest.fixture(scope="module")
def data():
    return synthetic(n_users=300, n_items=120, random_state=2)


@pytest.mark.parametrize("kind", ["popularity", "bm25", "als"])
def test_equals_the_python_reference(data, kind):
    X = data.user_items
    if kind == "popularity":
        model = PopularityRecommender().fit(X)
    elif kind == "bm25":
        model = BM25Recommender(K=30).fit(X, show_progress=False)
    else:
        model = AlternatingLeastSquares(factors=8, random_state=0).fit(X, show_progress=False)
    features = data.item_features if kind == "bm25" else None
    got = beyond_accuracy(model, X, K=7, item_features=features)
    if features is not None:
        V = features.toarray().astype(np.float64)
    elif kind == "als":
        V = model.item_factors.astype(np.float64)
    else:
        V = None
    if V is not None:
        V = V / np.maximum(np.linalg.norm(V, axis=1, keepdims=True), 1e-300)
        V = V.astype(np.float32).astype(np.float64)
    want, users, rows = reference(model, X, 7, V)
    for key, value in want.items():
        if math.isnan(value):
            assert math.isnan(got[key]), key
        else:
            assert got[key] == pytest.approx(value, rel=1e-5, abs=1e-9), key
    # deciles: ten groups of users by activity, least active first, means of their rows
    activity = np.diff(X.indptr)[users]
    order = np.argsort(np.argsort(activity, kind="stable"), kind="stable")
    groups = got["by_activity_decile"]
    assert [g["decile"] for g in groups] == list(range(1, 11))
    assert sum(g["users"] for g in groups) == len(users)
    first = [rows[k] for k in range(len(users)) if order[k] * 10 // len(users) == 0]
    assert groups[0]["popularity"] == pytest.approx(np.mean([r[0] for r in first]), rel=1e-5)


def test_bounds_and_errors(data):
    X = data.user_items
    model = PopularityRecommender().fit(X)
    got = beyond_accuracy(model, X, K=5)
    assert got["coverage"] == pytest.approx(
        len(
            set(
                model.recommend(
                    np.flatnonzero(np.diff(X.indptr)), X[np.flatnonzero(np.diff(X.indptr))], N=5
                )[0]
                .ravel()
                .tolist()
            )
            - {-1}
        )
        / X.shape[1]
    )
    assert 0 <= got["gini"] <= 1 and 0 < got["popularity"] <= 1 and got["novelty"] >= 0
    with pytest.raises(ValueError, match="K"):
        beyond_accuracy(model, X, K=0)
    with pytest.raises(ValueError, match="no users"):
        beyond_accuracy(model, sp.csr_matrix(X.shape, dtype=np.float32))
    with pytest.raises(ValueError, match="users is empty: there is nothing to evaluate"):
        beyond_accuracy(model, X, users=[])
    # narrower than the model: was the kernel's "recommendations: item .. is outside 0..n"
    narrow = X[:, : X.shape[1] // 2].tocsr()
    with pytest.raises(ValueError, match=f"train has {narrow.shape[1]} columns but the model"):
        beyond_accuracy(model, narrow, K=X.shape[1])
    with pytest.raises(ValueError, match="item_features"):
        beyond_accuracy(model, X, item_features=sp.identity(X.shape[1] + 1, format="csr"))

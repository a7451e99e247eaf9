"""RP3BetaRecommender against a dense NumPy transcription of Dacrema et al.'s reference
``RP3betaRecommender`` (RecSys 2019): Pui row-L1-normalised values, Piu the binary transposed
matrix row-L1-normalised, both raised to alpha, columns divided by popularity^beta, diagonal
zeroed, top-K non-zero per row, then optional row L1 normalisation."""

import numpy as np
import pytest

from tacitrec import RP3BetaRecommender
from conftest import random_user_items


def _reference(X, alpha, beta, K, normalize):
    R = X.toarray().astype(np.float64)
    sums = R.sum(axis=1, keepdims=True)
    Pui = np.divide(R, sums, out=np.zeros_like(R), where=sums > 0)
    Xb = (R.T != 0).astype(np.float64)
    pop = Xb.sum(axis=1)
    degree = np.zeros_like(pop)
    degree[pop != 0] = np.power(pop[pop != 0], -beta)
    Piu = np.divide(Xb, pop[:, None], out=np.zeros_like(Xb), where=pop[:, None] > 0)
    # scipy's sparse .power touches stored entries only (0 ** 0 stays 0)
    Pui = np.where(R != 0, Pui**alpha, 0.0)
    Piu = np.where(Xb != 0, Piu**alpha, 0.0)
    W = (Piu @ Pui) * degree[None, :]
    np.fill_diagonal(W, 0.0)
    out = np.zeros_like(W)
    for i in range(W.shape[0]):
        order = sorted(range(W.shape[1]), key=lambda j: (-W[i, j], j))[:K]
        keep = [j for j in order if W[i, j] != 0]
        out[i, keep] = W[i, keep]
    if normalize:
        s = out.sum(axis=1, keepdims=True)
        out = np.divide(out, s, out=np.zeros_like(out), where=s > 0)
    return out


@pytest.mark.parametrize(
    "alpha,beta,K,normalize",
    [(1.0, 0.6, 100, False), (0.7, 0.3, 5, False), (1.3, 0.0, 8, True), (0.0, 1.0, 3, False)],
)
def test_weights_match_the_reference(alpha, beta, K, normalize):
    X = random_user_items(n_users=70, n_items=35, density=0.15, seed=11)
    m = RP3BetaRecommender(K=K, alpha=alpha, beta=beta, normalize_similarity=normalize)
    m.fit(X, show_progress=False)
    want = _reference(X, alpha, beta, K, normalize)
    got = m.similarity.toarray()
    if alpha == 0.0:  # all-equal walks: ties, compare the kept values per row only
        np.testing.assert_allclose(np.sort(got, axis=1), np.sort(want, axis=1), rtol=1e-5)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-9)
    assert np.all(m.similarity.diagonal() == 0)
    assert m.similarity.has_sorted_indices


def test_threads_do_not_change_the_fit_and_recommend_is_rows_times_weights():
    X = random_user_items(n_users=300, n_items=150, density=0.05, seed=2)
    a = RP3BetaRecommender(K=20, num_threads=1).fit(X, show_progress=False)
    b = RP3BetaRecommender(K=20, num_threads=2).fit(X, show_progress=False)
    assert (a.similarity != b.similarity).nnz == 0
    S = X.toarray() @ a.similarity.toarray()
    ids, sc = a.recommend(np.arange(10), X[:10], N=5)
    np.testing.assert_allclose(sc, np.take_along_axis(S[:10], ids, 1), rtol=1e-5)


def test_bad_arguments_name_themselves():
    X = random_user_items()
    with pytest.raises(ValueError, match="alpha"):
        RP3BetaRecommender(alpha=-1).fit(X, show_progress=False)
    with pytest.raises(ValueError, match="beta"):
        RP3BetaRecommender(beta=np.nan).fit(X, show_progress=False)
    with pytest.raises(TypeError, match="alpha"):
        RP3BetaRecommender(alpha="1").fit(X, show_progress=False)
    with pytest.raises(ValueError, match="K must be at least 1"):
        RP3BetaRecommender(K=0).fit(X, show_progress=False)
    neg = X.copy()
    neg.data[0] = -1
    with pytest.raises(ValueError, match="user_items.*>= 0"):
        RP3BetaRecommender().fit(neg, show_progress=False)
    # exponents that overflow float32 would serve inf scores
    with pytest.raises(ValueError, match="alpha / beta: 1 / -1000000: the RP3beta weights"):
        RP3BetaRecommender(beta=-1e6).fit(X, show_progress=False)
    # 0 x inf weights were NaN and dropped: an empty similarity, fitted without an error
    with pytest.raises(ValueError, match="alpha / beta: 2000 / -400"):
        RP3BetaRecommender(alpha=2000, beta=-400).fit(X, show_progress=False)

"""SpectralFilterRecommender against dense NumPy transcriptions of the authors' code (GF-CF's
``GF_CF.getUsersRating``, BSPM's ``BSPM.getUsersRating`` with torchdiffeq's fixed-grid solvers,
ChebyCF's ``ChebyCF.forward``) and the randomized SVD against NumPy's."""

import numpy as np
import pytest
import scipy.sparse as sp

from tacitrec import SpectralFilterRecommender
from tacitrec.spectral import chebycf_coefficients
from conftest import random_user_items, unpickled_over_shared_buffers


def _graph(X, a=0.5, b=0.5):
    R = (X.toarray() != 0).astype(np.float64)
    du, di = R.sum(1), R.sum(0)
    with np.errstate(divide="ignore"):
        su, si = np.where(du > 0, du**-a, 0), np.where(di > 0, di**-b, 0)
        sinv = np.where(di > 0, di**b, 0)
    return R, su[:, None] * R * si[None, :], si, sinv, di


def _odeint(f, y0, T, K, method):
    """torchdiffeq.odeint on linspace(0, T, K + 1) with a fixed-grid solver: all states."""
    h, ys, y = T / K, [y0], y0
    for _ in range(K):
        if method == "euler":
            y = y + h * f(y)
        else:  # torchdiffeq's rk4: the 3/8 rule
            k1 = f(y)
            k2 = f(y + h * k1 / 3)
            k3 = f(y + h * (k2 - k1 / 3))
            k4 = f(y + h * (k1 - k2 + k3))
            y = y + (k1 + 3 * (k2 + k3) + k4) * h / 8
        ys.append(y)
    return ys


def _bspm_reference(
    R, Rt, V, si, sinv, w, blur, idl, sharp, final_sharpening, t_point, sharpening=True
):
    P = Rt.T @ Rt
    M = np.diag(si) @ V @ V.T @ np.diag(sinv)
    idl_out = _odeint(lambda r: r @ M - r, R, *idl)
    blurred = _odeint(lambda r: r @ P - r, R, *blur)
    sharpen = lambda r: -(r @ P)  # noqa: E731
    if sharpening:
        y0 = w * idl_out[-1] + blurred[-1] if final_sharpening else blurred[-1]
        sharpened = _odeint(sharpen, y0, *sharp)
    if t_point:
        U2 = np.mean(blurred[1:] + (sharpened[1:] if sharpening else []), axis=0)
    else:
        U2 = sharpened[-1] if sharpening else blurred[-1]
    if final_sharpening and sharpening:
        return U2
    return U2 + w * idl_out[-1]


def _scores(m, X, N=None):
    N = N or X.shape[1]
    ids, sc = m.recommend(np.arange(X.shape[0]), X, N=N, filter_already_liked_items=False)
    out = np.full(X.shape, np.nan)
    np.put_along_axis(out, ids, sc, 1)
    return out


@pytest.fixture
def X():
    return random_user_items(n_users=90, n_items=40, density=0.12, seed=3)


def test_gfcf_matches_the_authors_formula(X):
    m = SpectralFilterRecommender(method="gf-cf", factors=12, svd_iterations=20).fit(
        X, show_progress=False
    )
    R, Rt, si, sinv, _ = _graph(X)
    V = m.singular_vectors.astype(np.float64)
    want = R @ Rt.T @ Rt + 0.3 * R @ np.diag(si) @ V @ V.T @ np.diag(sinv)
    np.testing.assert_allclose(_scores(m, X), want, atol=2e-6)
    lin = SpectralFilterRecommender(method="gf-cf", ideal_weight=0.0, factors=0).fit(
        X, show_progress=False
    )
    np.testing.assert_allclose(_scores(lin, X), R @ Rt.T @ Rt, atol=2e-6)


@pytest.mark.parametrize(
    "setting",
    [
        dict(),  # Gowalla: rk4, one step to 2.5, early merge
        dict(sharpen_solver="euler", sharpen_time=1.2, t_point_combination=True, ideal_weight=0.3),
        dict(sharpen_steps=2, sharpen_time=2.2, final_sharpening=False, ideal_weight=0.0),
        dict(
            blur_solver="rk4",
            blur_steps=2,
            blur_time=1.5,
            ideal_solver="rk4",
            ideal_steps=3,
            ideal_time=0.7,
            sharpen_steps=2,
            final_sharpening=False,
            t_point_combination=True,
        ),
        dict(sharpening=False, t_point_combination=True, blur_steps=2),
    ],
)
def test_bspm_matches_the_authors_process(X, setting):
    m = SpectralFilterRecommender(method="bspm", factors=10, **setting).fit(X, show_progress=False)
    R, Rt, si, sinv, _ = _graph(X)
    V = m.singular_vectors.astype(np.float64)
    w = setting.get("ideal_weight", 0.2)
    ode = lambda name, s, T: (  # noqa: E731
        T,
        setting.get(f"{name}_steps", 1),
        setting.get(f"{name}_solver", s),
    )
    want = _bspm_reference(
        R,
        Rt,
        V,
        si,
        sinv,
        w,
        ode("blur", "euler", setting.get("blur_time", 1.0)),
        ode("ideal", "euler", setting.get("ideal_time", 1.0)),
        ode("sharpen", "rk4", setting.get("sharpen_time", 2.5)),
        setting.get("final_sharpening", True),
        setting.get("t_point_combination", False),
        setting.get("sharpening", True),
    )
    np.testing.assert_allclose(_scores(m, X), want, atol=5e-6)


def test_chebycf_coefficients_and_filter(X):
    # the plateau is 1 on the low end of the spectrum and 0 on the high end
    c = chebycf_coefficients(8, 1.5)
    T = np.polynomial.chebyshev.chebval
    assert abs(T(-1.0, c) - 1) < 0.05 and abs(T(1.0, c)) < 0.05
    for setting in (
        dict(),
        dict(flatness=10, degree_power=0.0),
        dict(order=3, flatness=15, ideal_weight=0.1, degree_power=0.2),
    ):
        m = SpectralFilterRecommender(method="chebycf", factors=10, **setting).fit(
            X, show_progress=False
        )
        R, Rt, _, _, di = _graph(X)
        g = setting.get("degree_power", 0.4)
        pre = np.where(di > 0, di**-g, 0) if g > 0 else np.ones_like(di)
        post = np.where(di > 0, di**g, 0) if g > 0 else np.ones_like(di)
        L = np.eye(X.shape[1]) - 2 * Rt.T @ Rt
        coeffs = chebycf_coefficients(setting.get("order", 8), setting.get("flatness", 1.5))
        s = R * pre
        bases = [s, s @ L]
        for _ in range(2, len(coeffs)):
            bases.append(2 * bases[-1] @ L - bases[-2])
        V = m.singular_vectors.astype(np.float64)
        out = sum(ck * bk for ck, bk in zip(coeffs, bases))
        out = (out + setting.get("ideal_weight", 0.2) * s @ V @ V.T) * post
        np.testing.assert_allclose(_scores(m, X), out, atol=1e-5)


def test_randomized_svd_spans_the_leading_singular_vectors():
    X = random_user_items(n_users=400, n_items=120, density=0.05, seed=8)
    _, Rt, _, _, _ = _graph(X)
    _, s, Vt = np.linalg.svd(Rt)
    for k in (8, 30):
        m = SpectralFilterRecommender(factors=k, svd_iterations=10).fit(X, show_progress=False)
        V = m.singular_vectors.astype(np.float64)
        np.testing.assert_allclose(V.T @ V, np.eye(k), atol=1e-4)
        ref = Vt[:k].T
        # the projections agree up to the gap between singular values k and k + 1
        gap = (s[k - 1] - s[k]) / s[k - 1]
        err = np.abs(V @ V.T - ref @ ref.T).max()
        assert err < 0.05 or gap < 0.01, (k, err, gap)
        # each found vector is a singular vector: R~ v has the right length
        np.testing.assert_allclose(np.linalg.norm(Rt @ V, axis=0), s[:k], rtol=2e-2)


def test_factors_are_cut_to_the_matrix_and_threads_agree(X):
    a = SpectralFilterRecommender(factors=500, num_threads=1).fit(X, show_progress=False)
    assert a.singular_vectors.shape == (40, 40)
    b = SpectralFilterRecommender(factors=500, num_threads=2).fit(X, show_progress=False)
    np.testing.assert_array_equal(a.singular_vectors, b.singular_vectors)


@pytest.mark.parametrize("factors, oversampling, n_users", [(8, 5, 60), (30, None, 20), (8, 5, 5)])
def test_fit_is_checked_against_the_memory_available(monkeypatch, factors, oversampling, n_users):
    """With less memory available than the fit holds at least, MemoryError naming the sizes,
    before computing anything; with exactly that it fits. The bound: the graph's values and
    transpose (12 bytes an entry and an item with the degrees), l = min(k + oversampling, users,
    items): while the users' block is orthonormalised one block per item and three per user, at
    the end two per item, whichever is more."""
    from tacitrec import _validation

    n_items = 40
    X = sp.random(n_users, n_items, density=0.2, format="csr", dtype=np.float32, random_state=1)
    k = min(factors, n_users, n_items)
    lcols = min(k + (factors if oversampling is None else oversampling), n_users, n_items)
    blocks = max(4 * lcols * (n_items + 3 * n_users), 8 * lcols * n_items)
    need = 12 * X.nnz + 12 * n_items + blocks
    model = dict(factors=factors, svd_oversampling=oversampling)
    monkeypatch.setattr(_validation, "available_memory", lambda: need - 1)
    with pytest.raises(
        MemoryError, match=f"{n_users} users x {n_items} items .{X.nnz:,} stored interactions"
    ):
        SpectralFilterRecommender(**model).fit(X, show_progress=False)
    monkeypatch.setattr(_validation, "available_memory", lambda: need)
    m = SpectralFilterRecommender(**model).fit(X, show_progress=False)
    assert m.singular_vectors.shape == (n_items, k)


def test_bad_arguments_name_themselves(X):
    for kw, exc, match in [
        (dict(method="lightgcn"), ValueError, "method"),
        (dict(factors=-1), ValueError, "factors"),
        (dict(ideal_weight=np.nan), ValueError, "ideal_weight"),
        (dict(method="bspm", sharpen_solver="dopri5"), ValueError, "sharpen_solver"),
        (dict(method="bspm", blur_steps=0), ValueError, "blur_steps"),
        (dict(method="bspm", sharpen_time=-1.0), ValueError, "sharpen_time"),
        (dict(method="chebycf", order=0), ValueError, "order"),
        (dict(method="chebycf", flatness="flat"), TypeError, "flatness"),
        (dict(user_exponent=np.inf), ValueError, "user_exponent"),
    ]:
        with pytest.raises(exc, match=match):
            SpectralFilterRecommender(**kw).fit(X, show_progress=False)
    neg = X.copy()
    neg.data[0] = -1
    with pytest.raises(ValueError, match="user_items"):
        SpectralFilterRecommender().fit(neg, show_progress=False)


def test_chebycf_order_is_bounded_and_its_coefficients_take_linear_memory(X):
    from tacitrec.spectral import MAX_CHEBYCF_ORDER

    # the coefficients against NumPy's Chebyshev basis: c_n = 2/(K+1) sum_j f_j T_n(node_j)
    for K, flatness in ((1, 1.5), (8, 1.5), (60, 10.0)):
        x = np.round(np.cos((K - np.arange(K + 1)) / K * np.pi), 3)
        f = np.round(
            np.where(x < 0, 0.5 + 0.5 * np.abs(x) ** flatness, 0.5 - 0.5 * np.abs(x) ** flatness), 3
        )
        nodes = np.cos(((K + 1) + 0.5 - np.arange(1, K + 2)) / (K + 1) * np.pi)
        want = np.polynomial.chebyshev.chebvander(nodes, K).T @ f * (2 / (K + 1))
        want[0] /= 2
        np.testing.assert_allclose(chebycf_coefficients(K, flatness), want, rtol=1e-9, atol=1e-12)
    # an order past the bound is refused up front (order=10**6 kept order**2 floats: 8 TB)
    m = SpectralFilterRecommender(method="chebycf", order=MAX_CHEBYCF_ORDER + 1)
    with pytest.raises(ValueError, match=f"order={MAX_CHEBYCF_ORDER + 1} is too large"):
        m.fit(X, show_progress=False)


def test_graphs_wider_than_a_tile_and_a_partial_block():
    # more than 8,192 users and items: the products run on several column tiles of R~ and R~^T;
    # 70 queries: one whole block of 64 and a partial one

    X = sp.random(8500, 8600, density=0.001, format="csr", random_state=5, dtype=np.float32)
    X.data[:] = 1.0
    R = X.astype(np.float64)
    du, di = np.asarray(R.sum(1)).ravel(), np.asarray(R.sum(0)).ravel()
    with np.errstate(divide="ignore"):
        su, si = np.where(du > 0, du**-0.5, 0), np.where(di > 0, di**-0.5, 0)
    Rt = sp.diags(su) @ R @ sp.diags(si)
    Q = X[:70]
    q = Q.toarray().astype(np.float64)

    def P(b):  # b P for dense rows b
        return (Rt.T @ (Rt @ b.T)).T

    m = SpectralFilterRecommender(method="gf-cf", factors=16).fit(X, show_progress=False)
    V = m.singular_vectors.astype(np.float64)
    want = P(q) + 0.3 * (q * si) @ V @ V.T * np.where(di > 0, di**0.5, 0)
    np.testing.assert_allclose(_scores(m, Q), want, atol=2e-6)
    # a call of a few users runs on a narrower state
    np.testing.assert_allclose(_scores(m, Q[:3]), want[:3], atol=2e-6)

    m = SpectralFilterRecommender(method="chebycf", factors=16, order=6).fit(X, show_progress=False)
    V = m.singular_vectors.astype(np.float64)
    with np.errstate(divide="ignore"):
        pre, post = np.where(di > 0, di**-0.4, 0), np.where(di > 0, di**0.4, 0)
    s = q * pre
    bases = [s, s - 2 * P(s)]
    for _ in range(2, 7):
        bases.append(2 * (bases[-1] - 2 * P(bases[-1])) - bases[-2])
    coeffs = chebycf_coefficients(6, 1.5)
    out = sum(c * b for c, b in zip(coeffs, bases))
    want = (out + 0.2 * s @ V @ V.T) * post
    np.testing.assert_allclose(_scores(m, Q), want, atol=1e-5)
    np.testing.assert_allclose(_scores(m, Q[:3]), want[:3], atol=1e-5)


@pytest.mark.parametrize("method", ["gf-cf", "bspm", "chebycf"])
def test_calls_of_a_few_users_equal_their_rows_of_a_batch(X, method):
    """Calls of up to 16 users run on a narrower state than batches (and keep the graph's tiles
    between calls): the same recommendations and scores, bit for bit."""
    # items 40-59 repeat items 0-19: exact ties, which only bit-identical scores order alike
    X = sp.hstack([X, X[:, :20]]).tocsr()
    m = SpectralFilterRecommender(method=method, factors=10).fit(X, show_progress=False)
    users = np.arange(X.shape[0])
    ids, sc = m.recommend(users, X, N=30)
    for few in ([7], [0, 3, 50], list(range(16)), list(range(17))):
        got_ids, got_sc = m.recommend(np.array(few), X[few], N=30)
        np.testing.assert_array_equal(got_ids, ids[few])
        np.testing.assert_array_equal(got_sc, sc[few])


def test_tiles_of_another_graph_are_refused(X):
    from tacitrec import _core
    from tacitrec._validation import as_csr

    a = SpectralFilterRecommender(factors=4).fit(X, show_progress=False)
    b = SpectralFilterRecommender(factors=4).fit(X[:60], show_progress=False)
    a.recommend(0, X[0])  # builds a's tiles
    assert a._tiles is not None
    with pytest.raises(ValueError, match="tiles: must be built from this graph"):
        _core.spectral_recommend(
            as_csr(X[:1], "user_items"),
            b._graph,
            b._graph_t,
            a._tiles,
            b._factors,
            *b._scalings("gf-cf"),
            5,
            True,
            None,
            None,
            1,
            **b._filter_args(),
        )


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(method="bspm", item_exponent=50), "item_exponent=50.0 overflows float32"),
        (dict(method="chebycf", degree_power=50), "degree_power=50.0 overflows float32"),
        (dict(method="gf-cf", user_exponent=-60), "user_exponent / item_exponent: -60"),
    ],
)
def test_exponents_that_overflow_are_refused_at_fit(X, params, message):
    """Scores would be inf or NaN (and NaN scores dropped): an error instead, before serving."""
    with pytest.raises(ValueError, match=message):
        SpectralFilterRecommender(factors=4, **params).fit(X, show_progress=False)


def test_copies_share_the_tiles_and_pickles_rebuild_them(X):
    import copy
    import pickle

    m = SpectralFilterRecommender(factors=4).fit(X, show_progress=False)
    want = m.recommend(0, X[0])
    assert m._tiles is not None  # built by the call above
    c = copy.copy(m)  # as the frame and Dask serving paths copy the model
    assert c._tiles is m._tiles
    p = pickle.loads(pickle.dumps(m))
    assert p._tiles is None
    for other in (c, p):
        np.testing.assert_array_equal(other.recommend(0, X[0])[0], want[0])


def test_graph_is_validated_once_and_scalings_follow_the_exponent(X):
    """As the kNN models' similarity: serving calls skip the pass over the graph's structure
    once a call has validated the model's own read-only arrays; buffers shared with the caller
    are validated by every call. The item scalings are kept between calls, and a changed
    exponent makes new ones."""

    X = sp.csr_matrix(X)
    flags = [a.flags.writeable for a in (X.indptr, X.indices, X.data)]
    m = SpectralFilterRecommender(method="bspm", factors=4).fit(X, show_progress=False)
    assert [a.flags.writeable for a in (X.indptr, X.indices, X.data)] == flags  # caller's kept
    assert not m._graph_checked and not m._graph_t_checked
    want = m.recommend(np.arange(3), X[:3], N=5)
    assert m._graph_checked and m._graph_t_checked
    again = m.recommend(np.arange(3), X[:3], N=5)
    np.testing.assert_array_equal(again[0], want[0])
    np.testing.assert_array_equal(again[1], want[1])
    for a in (m._graph.indptr, m._graph.indices, m._graph_t.indices):
        with pytest.raises(ValueError, match="WRITEABLE"):
            a.flags.writeable = True
    # the kept scalings follow item_exponent (set after fit, they scale the ideal term only)
    kept = m._scalings("bspm")
    assert m._scalings("bspm")[0] is kept[0]
    m.item_exponent = 0.3
    d = m._item_degree.astype(np.float64)
    np.testing.assert_array_equal(
        m._scalings("bspm")[0], np.where(d > 0, d**-0.3, 0).astype(np.float32)
    )
    assert not np.array_equal(m.recommend(np.arange(3), X[:3], N=5)[1], want[1])
    m.item_exponent = 0.5
    np.testing.assert_array_equal(m.recommend(np.arange(3), X[:3], N=5)[1], want[1])
    # pickle protocol 5 with out-of-band buffers: the caller's buffers, validated every call
    shared, corrupt = unpickled_over_shared_buffers(m)
    np.testing.assert_array_equal(shared.recommend(np.arange(3), X[:3], N=5)[0], want[0])
    assert not shared._graph_t_checked
    corrupt(shared._graph_t.indices)
    with pytest.raises(IndexError, match="graph_t"):
        shared.recommend(np.arange(3), X[:3], N=5)

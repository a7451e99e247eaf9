"""What the model base classes share: the fit loop (Ctrl-C, divergence, progress bar,
callback), ``set_params``, LightFM's serving threads and the id lists passed by keyword."""

import numpy as np
import pytest

from tacitrec import (
    AlternatingLeastSquares,
    BayesianPersonalizedRanking,
    EASERecommender,
    ItemItemRecommender,
    LightFM,
    LogisticMatrixFactorization,
    MatrixFactorizationBase,
    ModelFitError,
    PopularityRecommender,
    RP3BetaRecommender,
    SpectralFilterRecommender,
)
from tacitrec.base import _train_epochs
from tacitrec.compat.lightfm import LightFM as CompatLightFM
from conftest import random_user_items, reference_topk


# ---- the fit loop -----------------------------------------------------------------------------
def _loop(n, step, check=lambda epoch: None, summary=None):
    state = np.zeros(3, np.float32)
    calls = []
    _train_epochs(
        n,
        lambda epoch: step(epoch, state),
        check=check,
        desc="t",
        show_progress=False,
        summary=summary,
        callback=lambda *args: calls.append(args),
    )
    return state, calls


def test_the_loop_passes_the_summary_to_the_callback_after_each_epoch():
    def step(epoch, state):
        state += 1
        return epoch * 10

    state, calls = _loop(3, step, summary=lambda epoch, result: (None, (result, epoch + 1)))
    assert np.array_equal(state, [3, 3, 3])
    assert [c[0] for c in calls] == [0, 1, 2]
    assert [c[2:] for c in calls] == [(0, 1), (10, 2), (20, 3)]
    assert all(isinstance(c[1], float) and c[1] >= 0 for c in calls)


def test_an_interrupted_epoch_keeps_its_updates_and_ends_the_loop():
    calls = []
    state = np.zeros(3, np.float32)

    def step(epoch):
        state[:] += 1  # in place, as the Rust kernels update
        if epoch == 2:
            state[0] += 5  # part of the epoch: kept, not rolled back
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _train_epochs(
            5,
            step,
            check=lambda epoch: None,
            desc="t",
            show_progress=False,
            callback=lambda *args: calls.append(args),
        )
    assert np.array_equal(state, [8, 3, 3])  # the updates of the interrupted epoch too
    assert [c[0] for c in calls] == [0, 1] and all(len(c) == 2 for c in calls)


def test_a_failed_check_stops_the_loop_before_the_callback():
    def check(epoch):
        if epoch == 1:
            raise ModelFitError("diverged")

    def step(epoch, state):
        state += 1

    calls = []
    state = np.zeros(3, np.float32)
    with pytest.raises(ModelFitError, match="diverged"):
        _train_epochs(
            4,
            lambda e: step(e, state),
            check=check,
            desc="t",
            show_progress=False,
            callback=lambda *a: calls.append(a),
        )
    assert [c[0] for c in calls] == [0]
    assert np.array_equal(state, [2, 2, 2])  # a diverged epoch stays as it ended


@pytest.mark.parametrize(
    "build, shown",
    [
        (
            lambda: AlternatingLeastSquares(
                factors=3, iterations=2, calculate_training_loss=True, random_state=0
            ),
            ["ALS", "2/2", "loss="],
        ),
        (
            lambda: BayesianPersonalizedRanking(factors=3, iterations=2, random_state=0),
            ["BPR", "2/2", "train_auc=", "redrawn="],
        ),
        (
            lambda: LogisticMatrixFactorization(factors=3, iterations=2, random_state=0),
            ["LMF", "2/2"],
        ),
    ],
)
def test_progress_bar(build, shown, capsys):
    X = random_user_items()
    build().fit(X, show_progress=False)
    assert capsys.readouterr().err == ""
    build().fit(X, show_progress=True)
    err = capsys.readouterr().err
    for text in shown:
        assert text in err, (text, err)


def test_lightfm_progress_bar_follows_verbose(capsys):
    X = random_user_items()
    LightFM(no_components=3, random_state=0).fit(X, epochs=2)
    assert capsys.readouterr().err == ""
    LightFM(no_components=3, random_state=0).fit(X, epochs=2, verbose=True)
    err = capsys.readouterr().err
    assert "LightFM" in err and "2/2" in err


@pytest.mark.parametrize(
    "model, hint",
    [
        (
            BayesianPersonalizedRanking(
                factors=4, iterations=20, learning_rate=1e30, random_state=0
            ),
            r"learning_rate=1e\+30 is probably too large",
        ),
        (
            LogisticMatrixFactorization(
                factors=4, iterations=5, learning_rate=1e38, random_state=0
            ),
            r"learning_rate=1e\+38 is probably too large or regularization=0.6 too small",
        ),
    ],
)
def test_divergence_names_the_factors_and_the_epoch(model, hint):
    X = random_user_items(n_users=40, n_items=30, density=0.2, seed=3)
    with pytest.raises(
        ModelFitError,
        match=r"(user|item)_factors became NaN or infinite in "
        r"epoch \d+: " + hint,
    ):
        model.fit(X, show_progress=False)


def test_lightfm_divergence_names_the_parameters_and_the_epoch():
    X = random_user_items() * 1e30
    with pytest.raises(
        ModelFitError,
        match=r"the (user|item) parameters became NaN or infinite "
        r"in epoch \d+: lower learning_rate=1e\+30",
    ):
        LightFM(loss="logistic", learning_rate=1e30, random_state=0).fit(X, epochs=3)


# ---- set_params -------------------------------------------------------------------------------
CASES = [  # (model, a valid change, an invalid change and the name its error gives)
    (AlternatingLeastSquares(factors=3), {"iterations": 3}, {"factors": 0}, "factors"),
    (
        AlternatingLeastSquares(factors=3),
        {"alpha": 2.0},
        {"regularization": -1.0},
        "regularization",
    ),
    (AlternatingLeastSquares(factors=3), {"iterations": 0}, {"use_gpu": True}, "use_gpu"),
    (AlternatingLeastSquares(factors=3), {"cg_steps": 2}, {"dtype": np.int8}, "dtype"),
    (BayesianPersonalizedRanking(), {"learning_rate": 0.1}, {"max_redraws": 1001}, "max_redraws"),
    (
        BayesianPersonalizedRanking(),
        {"max_redraws": 5},
        {"negative_sampling": "x"},
        "negative_sampling",
    ),
    (LogisticMatrixFactorization(), {"iterations": 4}, {"neg_prop": -1}, "neg_prop"),
    (LogisticMatrixFactorization(), {"neg_prop": 3}, {"max_negatives": -2}, "max_negatives"),
    (MatrixFactorizationBase(), {}, {"num_threads": -1}, "num_threads"),
    (PopularityRecommender(), {"weighted": True}, {"num_threads": -1}, "num_threads"),
    (ItemItemRecommender(), {"num_threads": 1}, {"K": 0}, "K"),
    (RP3BetaRecommender(), {"beta": 0.2}, {"alpha": -1.0}, "alpha"),
    (EASERecommender(), {"dtype": np.float64}, {"regularization": 0.0}, "regularization"),
    (SpectralFilterRecommender(), {"factors": 4}, {"method": "nope"}, "method"),
    (LightFM(), {"loss": "warp"}, {"rho": 1.0}, "rho"),
    (LightFM(), {"k": 3}, {"num_threads": -1}, "num_threads"),
]


@pytest.mark.parametrize(
    "model, valid, invalid, name", CASES, ids=[f"{type(c[0]).__name__}-{c[3]}" for c in CASES]
)
def test_set_params(model, valid, invalid, name):
    before = model.get_params()
    with pytest.raises(ValueError, match=name):
        model.set_params(**valid, **invalid)
    assert model.get_params() == before  # nothing is set when one value is invalid
    with pytest.raises(
        ValueError, match=f"not_a_param is not a parameter of {type(model).__name__}"
    ):
        model.set_params(not_a_param=1)
    assert model.set_params(**valid) is model
    assert model.get_params() == dict(before, **valid)
    assert model.get_params(deep=False) == model.get_params()


def test_set_params_then_fit_equals_the_constructor():
    X = random_user_items(seed=3)
    a = AlternatingLeastSquares(factors=3, iterations=2, random_state=0)
    a.set_params(factors=5, regularization=0.1).fit(X, show_progress=False)
    b = AlternatingLeastSquares(factors=5, iterations=2, regularization=0.1, random_state=0).fit(
        X, show_progress=False
    )
    assert np.array_equal(a.user_factors, b.user_factors)
    assert np.array_equal(a.item_factors, b.item_factors)


# ---- LightFM's serving threads ----------------------------------------------------------------
def test_lightfm_num_threads_is_a_parameter():
    assert LightFM().num_threads == 0 and LightFM(num_threads=3).get_params()["num_threads"] == 3
    with pytest.raises(ValueError, match="num_threads must be >= 0"):
        LightFM(num_threads=-1)
    with pytest.raises(TypeError, match="num_threads must be an integer"):
        LightFM(num_threads=1.5)


def test_lightfm_serves_on_its_threads(tmp_path):
    X = random_user_items(n_users=50, n_items=30, seed=4)
    m = LightFM(no_components=4, loss="warp", random_state=0, num_threads=1).fit(X, epochs=3)
    ub, ue = m.get_user_representations()
    ib, ie = m.get_item_representations()
    scores = ue @ ie.T + ub[:, None] + ib[None, :]
    users = np.arange(50)
    one = m.recommend(users, X, N=5)
    m.set_params(num_threads=2)
    two = m.recommend(users, X, N=5)
    assert np.array_equal(one[0], two[0]) and np.array_equal(one[1], two[1])
    for u in users:
        want = reference_topk(scores[u], 5, excluded=X[u].indices)
        assert list(two[0][u][: len(want)]) == want
    assert m.as_factor_model().num_threads == 2
    m.save(tmp_path / "m.npz")
    assert LightFM.load(tmp_path / "m.npz").num_threads == 2


def test_compat_lightfm_keeps_lightfm_parameters():
    m = CompatLightFM(no_components=3)
    assert "num_threads" not in m.get_params()
    with pytest.raises(ValueError, match="num_threads is not a parameter"):
        m.set_params(num_threads=2)
    X = random_user_items(seed=5)
    ids, _ = m.fit(X, epochs=1).recommend(np.arange(3), X[:3], N=4)
    assert ids.shape == (3, 4)


# ---- id lists by keyword ----------------------------------------------------------------------
def _factor_model(X):
    rng = np.random.default_rng(0)
    m = MatrixFactorizationBase()
    m.user_factors = rng.normal(size=(X.shape[0], 4))
    m.item_factors = rng.normal(size=(X.shape[1], 4))
    return m, m.user_factors @ m.item_factors.T


def _lightfm(X):
    m = LightFM(no_components=4, loss="warp", random_state=0).fit(X, epochs=2)
    ub, ue = m.get_user_representations()
    ib, ie = m.get_item_representations()
    return m, ue @ ie.T + ub[:, None] + ib[None, :]


def _knn(X):
    m = ItemItemRecommender(K=40).fit(X, show_progress=False)
    return m, (X @ m.similarity).toarray()


def _ease(X):
    m = EASERecommender(regularization=5.0).fit(X, show_progress=False)
    return m, X @ m.weights


@pytest.mark.parametrize("build", [_factor_model, _lightfm, _knn, _ease])
def test_items_and_filter_items_reach_the_kernel_in_their_places(build):
    X = random_user_items(n_users=20, n_items=40, density=0.2, seed=6)
    model, scores = build(X)
    items = np.arange(0, 40, 2)  # the even items
    filter_items = np.arange(0, 40, 3)  # a list that overlaps them only in part
    users = np.arange(20)
    ids, got = model.recommend(users, X, N=40, items=items, filter_items=filter_items)
    for u in users:
        want = reference_topk(
            scores[u], 40, excluded=set(X[u].indices) | set(filter_items), candidates=items
        )
        assert list(ids[u][: len(want)]) == want
        assert np.all(ids[u][len(want) :] == -1)
        np.testing.assert_allclose(got[u][: len(want)], scores[u][want], rtol=1e-4, atol=1e-5)


# ---- switches ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "model, flag",
    [
        (lambda **kw: AlternatingLeastSquares(factors=2, iterations=1, **kw), "use_cg"),
        (
            lambda **kw: AlternatingLeastSquares(factors=2, iterations=1, **kw),
            "calculate_training_loss",
        ),
        (lambda **kw: BayesianPersonalizedRanking(factors=2, iterations=1, **kw), "use_weights"),
        (
            lambda **kw: BayesianPersonalizedRanking(factors=2, iterations=1, **kw),
            "verify_negative_samples",
        ),
        (lambda **kw: BayesianPersonalizedRanking(factors=2, iterations=1, **kw), "deterministic"),
        (lambda **kw: RP3BetaRecommender(K=5, **kw), "normalize_similarity"),
        (lambda **kw: PopularityRecommender(**kw), "weighted"),
        (lambda **kw: SpectralFilterRecommender(factors=2, **kw), "binary"),
        (lambda **kw: SpectralFilterRecommender(method="bspm", factors=2, **kw), "sharpening"),
    ],
)
def test_a_switch_that_is_not_a_boolean_is_refused_not_taken_as_true(model, flag):
    X = random_user_items(n_users=30, n_items=20, density=0.2, seed=4)
    # "no" was truthy: PopularityRecommender(weighted="no") counted weights
    with pytest.raises(TypeError, match=f"{flag} must be True or False, got str 'no'"):
        model(**{flag: "no"}).fit(X, show_progress=False)
    model(**{flag: np.False_}).fit(X, show_progress=False)  # NumPy's booleans are switches
    model(**{flag: 0}).fit(X, show_progress=False)


def test_recommend_switches_are_checked_and_zero_is_false():
    X = random_user_items(n_users=30, n_items=20, density=0.2, seed=5)
    m = PopularityRecommender(weighted=True).fit(X, show_progress=False)
    for name in ("filter_already_liked_items", "recalculate_user"):
        with pytest.raises(TypeError, match=f"{name} must be True or False, got str 'False'"):
            m.recommend(0, X[0], **{name: "False"})
    ids, scores = m.recommend(0, X[0], N=20, filter_already_liked_items=0)
    want = np.asarray(X.sum(axis=0)).ravel()  # weighted popularity, liked items kept
    np.testing.assert_allclose(scores, np.sort(want)[::-1], rtol=1e-6)

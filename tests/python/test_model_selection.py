"""tacitrec.model_selection: splits checked against their definitions, searches against direct
evaluations of the same settings."""

import numpy as np
import pytest
import scipy.sparse as sp

from tacitrec import AlternatingLeastSquares, BM25Recommender, LightFM, PopularityRecommender
from tacitrec.datasets import synthetic
from tacitrec.evaluation import ranking_metrics_at_k, train_test_split
from tacitrec.model_selection import grid_search, random_search, validation_split


@pytest.fixture(scope="module")
def data():
    X = synthetic(n_users=600, n_items=300, random_state=0).user_items
    train, _ = train_test_split(X, 0.8, random_state=0)
    return train


def test_split_by_user_keeps_history_on_both_sides(data):
    fit_part, valid = validation_split(data, 0.25, random_state=1)
    assert (fit_part + valid - data).nnz == 0 and fit_part.multiply(valid).nnz == 0
    counts, held = np.diff(data.indptr), np.diff(valid.indptr)
    many = counts >= 2
    assert (held[many] >= 1).all() and (held[many] < counts[many]).all()
    assert (held[~many] == 0).all()
    np.testing.assert_array_equal(
        held[many], np.clip(np.rint(counts[many] * 0.25), 1, counts[many] - 1)
    )
    again = validation_split(data, 0.25, random_state=1)[1]
    assert (again != valid).nnz == 0


def test_split_by_time_holds_out_each_users_latest():
    X = sp.csr_matrix(np.array([[1, 1, 1, 1, 0], [0, 1, 1, 0, 0], [1, 0, 0, 0, 0]], np.float32))
    T = sp.csr_matrix(np.array([[5, 9, 1, 7, 0], [0, 2, 3, 0, 0], [4, 0, 0, 0, 0]], np.float32))
    fit_part, valid = validation_split(X, 0.5, by="time", timestamps=T)
    assert valid.toarray().tolist() == [[0, 1, 0, 1, 0], [0, 0, 1, 0, 0], [0, 0, 0, 0, 0]]
    assert (fit_part + valid - X).nnz == 0
    # int64 nanoseconds since 1970 (pandas' datetime64[ns]) 100 ns apart: equal as float64,
    # where the tie went to the lower column; compared as integers, the later one is held
    base = 1_700_000_000_000_000_000
    ns = sp.csr_matrix((np.array([base + 100, base], np.int64), [0, 1], [0, 2]), shape=(1, 2))
    assert float(base + 100) == float(base)
    one = sp.csr_matrix(np.ones((1, 2), np.float32))
    assert validation_split(one, 0.5, by="time", timestamps=ns)[1].indices.tolist() == [0]
    with pytest.raises(ValueError, match="timestamps"):
        validation_split(X, 0.5, by="time")
    with pytest.raises(ValueError, match="positions"):
        validation_split(X, 0.5, by="time", timestamps=sp.csr_matrix(np.ones((3, 5))))
    for by in ("user", "interaction"):  # timestamps would be ignored
        with pytest.raises(
            ValueError, match=f"timestamps are only used with by='time', not by='{by}'"
        ):
            validation_split(X, 0.5, by=by, timestamps=T)
    with pytest.raises(ValueError, match="timestamps are only used with by='time'"):
        validation_split(X, 0.5, timestamps=np.arange(3))


def test_split_by_time_dates_a_repeated_pair_by_its_latest_event():
    # user 0 played item 0 at t=10 and t=11, item 1 at t=20: item 1 is the latest (the summed
    # times, 21, made item 0 look later); user 1's pair (1, 2) stored twice, latest t=3
    X = sp.coo_matrix((np.ones(6), ([0, 0, 0, 1, 1, 1], [0, 0, 1, 2, 2, 0])), shape=(2, 3))
    T = sp.coo_matrix(
        (np.array([10.0, 11, 20, 3, 1, 2]), ([0, 0, 0, 1, 1, 1], [0, 0, 1, 2, 2, 0])),
        shape=(2, 3),
    )
    fit_part, valid = validation_split(X, 0.5, by="time", timestamps=T)
    assert valid.toarray().tolist() == [[0, 1, 0], [0, 0, 2]]
    assert fit_part.toarray().tolist() == [[2, 0, 0], [1, 0, 0]]
    # the same as a matrix of the latest times without repeats
    latest = sp.csr_matrix(np.array([[11.0, 20, 0], [2, 0, 3]]))
    again = validation_split(X.tocsr(), 0.5, by="time", timestamps=latest)[1]
    assert (again != valid).nnz == 0


def test_split_refuses_non_finite_times_and_values_and_a_non_numeric_fraction():
    X = sp.csr_matrix(np.array([[1, 1, 1, 1], [1, 1, 0, 0]], np.float32))
    # NaN sorted after every time: the NaN interaction was held out as the "latest"
    T = sp.csr_matrix(np.array([[5, np.nan, 1, 7], [2, 3, 0, 0]], np.float32))
    with pytest.raises(ValueError, match="timestamps contains NaN or infinite values"):
        validation_split(X, 0.5, by="time", timestamps=T)
    bad = X.copy()
    bad.data[2] = np.inf
    for by in ("user", "interaction"):
        with pytest.raises(ValueError, match="train contains NaN or infinite values"):
            validation_split(bad, 0.5, by=by, random_state=0)
    assert np.isinf(bad.data[2]) and bad.nnz == 6  # the input is left as it was
    with pytest.raises(TypeError, match="fraction must be a number in \\(0, 1\\), got str"):
        validation_split(X, "0.5")


def test_split_by_interaction_is_train_test_split(data):
    a = validation_split(data, 0.2, by="interaction", random_state=3)
    b = train_test_split(data, 0.8, random_state=3)
    assert (a[0] != b[0]).nnz == 0 and (a[1] != b[1]).nnz == 0


def test_grid_search_scores_equal_direct_evaluation_and_best_wins(data):
    fit_part, valid = validation_split(data, 0.2, random_state=0)
    models = {"popularity": PopularityRecommender, "bm25": lambda: BM25Recommender(K=50)}
    search = grid_search(
        lambda kind: models[kind](),
        {"kind": ["popularity", "bm25"]},
        fit_part,
        valid,
        metric="ndcg",
        K=5,
        show_progress=False,
    )
    direct = {}
    for kind, make in models.items():
        m = make()
        m.fit(fit_part, show_progress=False)
        direct[kind] = ranking_metrics_at_k(m, fit_part, valid, K=5, show_progress=False)
    for trial in search.trials:
        assert trial.metrics == pytest.approx(direct[trial.params["kind"]], abs=1e-12)
    best = max(direct, key=lambda k: direct[k]["ndcg"])
    assert search.best_params == {"kind": best}
    table = search.table()
    assert [row["kind"] for row in table][0] == best
    assert table[0]["ndcg@5"] >= table[1]["ndcg@5"]


def test_early_stopping_keeps_the_best_iteration_and_refits_it(data):
    fit_part, valid = validation_split(data, 0.2, random_state=0)
    search = grid_search(
        AlternatingLeastSquares,
        {
            "factors": [48],
            "regularization": [0.001],
            "iterations": [12],
            "random_state": [0],
            "num_threads": [1],
        },
        fit_part,
        valid,
        K=10,
        patience=2,
        show_progress=False,
    )
    trial = search.trials[0]
    done, scores = zip(*trial.history)
    assert list(done) == list(range(1, len(done) + 1))
    assert trial.params["iterations"] == done[int(np.argmax(scores))]
    assert len(done) == 12 or len(done) - 1 - int(np.argmax(scores)) == 2  # stopped by patience
    refit = search.refit(fit_part)
    again = ranking_metrics_at_k(refit, fit_part, valid, K=10, show_progress=False)["ndcg"]
    assert again == pytest.approx(search.best_score, abs=1e-12)


def test_a_fit_callback_is_called_beside_early_stopping(data):
    # was TypeError: fit() got multiple values for keyword argument 'callback'
    fit_part, valid = validation_split(data, 0.2, random_state=0)
    calls = []

    def callback(iteration, elapsed, *rest):
        calls.append(iteration)
        return False  # ignored, as every fit ignores it

    grid = {"factors": [8], "iterations": [6], "random_state": [0]}
    search = grid_search(
        AlternatingLeastSquares,
        grid,
        fit_part,
        valid,
        K=10,
        patience=None,
        fit_params={"callback": callback},
        show_progress=False,
    )
    assert calls == list(range(6))  # every iteration, none stopped by the return value
    assert [d for d, _ in search.trials[0].history] == [1, 2, 3, 4, 5, 6]
    plain = grid_search(
        AlternatingLeastSquares, grid, fit_part, valid, K=10, patience=None, show_progress=False
    )
    assert search.trials[0].history == plain.trials[0].history


def test_lightfm_epochs_are_checked_one_at_a_time(data):
    fit_part, valid = validation_split(data, 0.2, random_state=0)
    search = grid_search(
        LightFM,
        {"no_components": [8], "epochs": [6], "random_state": [0]},
        fit_part,
        valid,
        K=10,
        eval_every=2,
        patience=None,
        show_progress=False,
    )
    assert [d for d, _ in search.trials[0].history] == [2, 4, 6]
    best = search.best_params["epochs"]
    model = LightFM(no_components=8, random_state=0).fit(fit_part, epochs=best)
    assert ranking_metrics_at_k(model, fit_part, valid, K=10, show_progress=False)[
        "ndcg"
    ] == pytest.approx(search.best_score, abs=1e-12)


def test_zero_iterations_are_scored_as_fitted(data):
    # a setting with no iteration was a TypeError (no check ran, so no best metrics)
    fit_part, valid = validation_split(data, 0.2, random_state=0)
    for make, grid in (
        (AlternatingLeastSquares, {"iterations": [0], "random_state": [0]}),
        (LightFM, {"epochs": [0], "random_state": [0]}),
    ):
        trial = grid_search(
            make, grid, fit_part, valid, K=10, eval_every=1, show_progress=False
        ).trials[0]
        assert trial.history == [(0, trial.metrics["ndcg"])]
        assert trial.params[next(iter(grid))] == 0
        model = make(random_state=0)
        if make is LightFM:
            model.fit(fit_part, epochs=0)
        else:
            model.iterations = 0
            model.fit(fit_part, show_progress=False)
        direct = ranking_metrics_at_k(model, fit_part, valid, K=10, show_progress=False)
        assert trial.metrics == pytest.approx(direct, abs=1e-12)


def test_random_search_draws_in_range_and_reproducibly(data):
    fit_part, valid = validation_split(data, 0.2, random_state=0)
    spec = {"K": ("int", 5, 40), "K1": ("log", 0.5, 50.0), "B": ("uniform", 0.2, 0.9)}
    a = random_search(
        BM25Recommender, spec, fit_part, valid, n_iter=4, random_state=5, show_progress=False
    )
    b = random_search(
        BM25Recommender, spec, fit_part, valid, n_iter=4, random_state=5, show_progress=False
    )
    assert [t.params for t in a.trials] == [t.params for t in b.trials]
    for t in a.trials:
        assert 5 <= t.params["K"] <= 40 and isinstance(t.params["K"], int)
        assert 0.5 <= t.params["K1"] <= 50 and 0.2 <= t.params["B"] <= 0.9


def test_bad_arguments(data):
    fit_part, valid = validation_split(data, 0.2, random_state=0)
    with pytest.raises(ValueError, match="metric"):
        grid_search(BM25Recommender, {"K": [5]}, fit_part, valid, metric="accuracy")
    with pytest.raises(ValueError, match="empty grid"):
        grid_search(BM25Recommender, {"K": []}, fit_part, valid, show_progress=False)
    with pytest.raises(ValueError, match="shape"):
        grid_search(BM25Recommender, {"K": [5]}, fit_part, valid[:10], show_progress=False)
    with pytest.raises(ValueError, match="fraction"):
        validation_split(data, 1.0)
    with pytest.raises(ValueError, match="distributions"):
        random_search(BM25Recommender, {"K": ("log", -1, 5)}, fit_part, valid)
    with pytest.raises(TypeError, match="param_grid"):
        grid_search(BM25Recommender, {"K": 5}, fit_part, valid)
    # was AttributeError: 'list' object has no attribute 'items'
    with pytest.raises(TypeError, match="distributions must be a dict .* got list"):
        random_search(BM25Recommender, [("K", [5])], fit_part, valid)
    # counts of iterations are checked, not coerced (-2 ran as 0, 2.7 as 2)
    from tacitrec import AlternatingLeastSquares, LightFM

    for grid, kind, message in (
        ({"epochs": [-2]}, ValueError, "epochs must be at least 0"),
        ({"epochs": [2.7]}, TypeError, "epochs must be an integer"),
    ):
        with pytest.raises(kind, match=message):
            grid_search(LightFM, grid, fit_part, valid, show_progress=False)
    with pytest.raises(TypeError, match="iterations must be an integer"):
        grid_search(AlternatingLeastSquares, {"iterations": ["x"]}, fit_part, valid)


@pytest.mark.parametrize(
    "spec, message",
    [
        (("normal", 0.0, 1.0), "a range is"),  # was drawn as one of the choices "normal", 0, 1
        (("log", 0.1), "a range is"),  # was drawn as one of "log", 0.1
        (("uniform", 0.1, "1"), "a range is"),
        (("int", 1.5, 3), "whole-number ends"),  # was drawn as 1, below the range
    ],
)
def test_a_malformed_range_is_refused_not_drawn_as_choices(data, spec, message):
    fit_part, valid = validation_split(data, 0.2, random_state=0)
    with pytest.raises(ValueError, match=f"distributions\\['K'\\]: .*{message}"):
        random_search(BM25Recommender, {"K": spec}, fit_part, valid, n_iter=2)
    # a tuple of choices that is not a range still draws from the choices
    r = random_search(
        BM25Recommender, {"K": (2, 3)}, fit_part, valid, n_iter=3, show_progress=False
    )
    assert {t.params["K"] for t in r.trials} <= {2, 3}


def test_search_names_its_own_arguments(data):
    fit_part, valid = validation_split(data, 0.2, random_state=0)
    nan_valid = valid.copy()
    nan_valid.data[0] = np.nan
    # these were reported as the model's user_items / the metrics' test_user_items
    with pytest.raises(ValueError, match="validation contains NaN or infinite values"):
        grid_search(BM25Recommender, {"K": [5]}, fit_part, nan_valid, show_progress=False)
    with pytest.raises(ValueError, match="fit_part contains NaN or infinite values"):
        grid_search(BM25Recommender, {"K": [5]}, nan_valid, valid, show_progress=False)
    assert np.isnan(nan_valid.data[0])
    # was AttributeError: 'int' object has no attribute 'fit'
    with pytest.raises(TypeError, match="model must be .* but it returned int"):
        grid_search(lambda K: K, {"K": [5]}, fit_part, valid, show_progress=False)


def test_a_diverging_setting_ranks_last_and_the_search_goes_on(data, capsys):
    from tacitrec import BayesianPersonalizedRanking, ModelFitError

    fit_part, valid = validation_split(data, 0.2, random_state=0)
    search = grid_search(
        BayesianPersonalizedRanking,
        {"learning_rate": [1e30, 0.05], "iterations": [3], "random_state": [0]},
        fit_part,
        valid,
        metric="ndcg",
        K=5,
        eval_every=None,
    )
    diverged, trained = search.trials
    assert "learning_rate" in diverged.error and "NaN or infinite" in diverged.error
    assert all(np.isnan(v) for v in diverged.metrics.values())
    model = BayesianPersonalizedRanking(learning_rate=0.05, iterations=3, random_state=0)
    model.fit(fit_part, show_progress=False)
    direct = ranking_metrics_at_k(model, fit_part, valid, K=5, show_progress=False)
    assert trained.error is None and trained.metrics == pytest.approx(direct, abs=1e-12)
    assert search.best is trained
    assert [row["learning_rate"] for row in search.table()] == [0.05, 1e30]
    assert "diverged" in capsys.readouterr().out
    failed = grid_search(
        BayesianPersonalizedRanking, {"learning_rate": [1e30]}, fit_part, valid, show_progress=False
    )
    with pytest.raises(ModelFitError, match="every trial's training diverged"):
        print(failed.best_params)


def test_a_searchs_random_state_seeds_every_trial_and_the_refit(data):
    fit_part, valid = validation_split(data, 0.2, random_state=0)
    grid = {"factors": [8, 16], "iterations": [3], "num_threads": [1]}

    def search(**kw):
        return grid_search(
            AlternatingLeastSquares, grid, fit_part, valid, K=10, show_progress=False, **kw
        )

    a, b = search(random_state=7), search(random_state=7)
    assert [t.metrics for t in a.trials] == [t.metrics for t in b.trials]
    # each trial is the model seeded with 7, fitted directly
    for trial in a.trials:
        params = {k: v for k, v in trial.params.items()}
        m = AlternatingLeastSquares(random_state=7, **params)
        m.fit(fit_part, show_progress=False)
        direct = ranking_metrics_at_k(m, fit_part, valid, K=10, show_progress=False)
        assert trial.metrics == pytest.approx(direct, abs=1e-12)
    refit = a.refit(fit_part)
    assert refit.random_state == 7
    again = ranking_metrics_at_k(refit, fit_part, valid, K=10, show_progress=False)["ndcg"]
    assert again == pytest.approx(a.best_score, abs=1e-12)
    # a seed in the setting wins; None leaves the model unseeded
    given = grid_search(
        AlternatingLeastSquares,
        dict(grid, random_state=[1]),
        fit_part,
        valid,
        K=10,
        show_progress=False,
        random_state=7,
    )
    assert given.refit(fit_part).random_state == 1
    assert search().refit(fit_part).random_state is None
    # random_search: an int seeds the models as given, a generator with one draw of its own
    spec = {"factors": [8, 16], "iterations": [2]}
    r = random_search(
        AlternatingLeastSquares,
        spec,
        fit_part,
        valid,
        n_iter=2,
        random_state=5,
        show_progress=False,
    )
    assert r.refit(fit_part).random_state == 5
    g = random_search(
        AlternatingLeastSquares,
        spec,
        fit_part,
        valid,
        n_iter=2,
        random_state=np.random.default_rng(5),
        show_progress=False,
    )
    assert isinstance(g.refit(fit_part).random_state, int)
    with pytest.raises(ValueError, match="random_state"):
        search(random_state=-1)

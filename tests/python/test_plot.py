"""tacitrec.plot draws what it is given, without a display (Agg)."""

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

from tacitrec import AlternatingLeastSquares, PopularityRecommender
from tacitrec import plot
from tacitrec.datasets import synthetic
from tacitrec.evaluation import ranking_metrics_at_k, train_test_split


@pytest.fixture(scope="module")
def fitted():
    X = synthetic(n_users=400, n_items=150, random_state=0).user_items
    train, test = train_test_split(X, 0.8, random_state=0)
    models = {
        "popularity": PopularityRecommender().fit(train),
        "als": AlternatingLeastSquares(factors=8, random_state=0).fit(train, show_progress=False),
    }
    return train, test, models


def test_metric_curves_plot_the_metrics(fitted, tmp_path):
    train, test, models = fitted
    ax = plot.metric_curves(models, train, test, metric="recall", Ks=(1, 5, 10))
    assert ax.get_xlabel() == "K" and ax.get_ylabel() == "recall@K"
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"popularity", "als"}
    want = [
        ranking_metrics_at_k(models["als"], train, test, K=k, show_progress=False)["recall"]
        for k in (1, 5, 10)
    ]
    np.testing.assert_allclose(lines["als"].get_ydata(), want)
    ax.figure.savefig(tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 1000
    assert tuple(ax.figure.get_size_inches()) == (6.4, 4.0)


def test_popularity_curves_show_the_head_share(fitted):
    train, _, models = fitted
    ax = plot.popularity_curves(models, train, K=5)
    lines = {line.get_label(): line.get_ydata() for line in ax.get_lines()}
    assert set(lines) == {"training interactions", "popularity", "als"}
    for y in lines.values():
        assert np.all(np.diff(y) >= -1e-12) and y[-1] == pytest.approx(1.0)
    # popularity recommends only head items: its curve reaches 1 before the data's does
    assert lines["popularity"][9] >= lines["training interactions"][9]


def test_training_curves_from_callbacks(fitted):
    train, test, _ = fitted
    model = AlternatingLeastSquares(
        factors=8, iterations=4, random_state=0, calculate_training_loss=True
    )
    history = plot.TrainingHistory(model, validation=(train, test), metric="ndcg", K=5)
    model.fit(train, show_progress=False, callback=history)
    assert [r["iteration"] for r in history.records] == [1, 2, 3, 4]
    assert all("loss" in r and "ndcg" in r for r in history.records)
    ax = plot.training_curves({"als": history})
    assert ax.get_lines()[0].get_ydata()[-1] == pytest.approx(
        ranking_metrics_at_k(model, train, test, K=5, show_progress=False)["ndcg"]
    )
    ax = plot.training_curves({"als": history}, key="loss")
    assert ax.get_ylabel() == "loss"
    with pytest.raises(ValueError, match="recorded nothing"):
        plot.training_curves({"empty": plot.TrainingHistory()})


def test_evaluate_plot_from_the_command_line(tmp_path):
    from tacitrec.cli import main

    rows = tmp_path / "rows.csv"
    rng = np.random.default_rng(0)
    rows.write_text(
        "".join(
            f"u{u},i{i}\n" for u, i in zip(rng.integers(0, 150, 2000), rng.zipf(1.5, 2000) % 60)
        )
    )
    out = tmp_path / "eval.png"
    assert (
        main(["evaluate", str(rows), "--model", "bm25", "-k", "5", "--plot", str(out), "-q"]) == 0
    )
    from matplotlib.image import imread

    image = imread(out)
    assert image.shape[0] == 450 and image.shape[1] == 1200  # 12 x 4.5 inches at 100 dpi

"""The demo entry point, run as a user would (a subprocess), checked against the library."""

import subprocess
import sys

import pytest

from tacitrec import PopularityRecommender
from tacitrec.datasets import synthetic
from tacitrec.evaluation import ranking_metrics_at_k, train_test_split


def test_demo_prints_the_metrics_the_library_computes():
    out = subprocess.run([sys.executable, "-m", "tacitrec", "--users", "400", "--items", "150",
                          "--seed", "3", "-k", "5"], capture_output=True, text=True, check=True,
                         timeout=120)
    line = next(l for l in out.stdout.splitlines() if l.startswith("popularity "))
    printed = [float(v) for v in line.split()[-7:]]
    X = synthetic(n_users=400, n_items=150, random_state=3).user_items
    train, test = train_test_split(X, 0.8, random_state=3)
    m = ranking_metrics_at_k(PopularityRecommender().fit(train), train, test, K=5,
                             show_progress=False)
    want = [m[k] for k in ("precision", "recall", "map", "ndcg", "auc", "mrr", "hit_rate")]
    assert printed == pytest.approx(want, abs=5e-5)
    assert "user 0:" in out.stdout
    # the personalised models beat the baseline on the planted data (ndcg column)
    ndcg = {l.split()[0]: float(l.split()[-4]) for l in out.stdout.splitlines()
            if l.startswith(("popularity ", "bm25 ", "als "))}
    assert ndcg["bm25"] > 1.5 * ndcg["popularity"] and ndcg["als"] > 1.2 * ndcg["popularity"]

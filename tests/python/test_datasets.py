"""Dataset generators and loaders."""

import numpy as np
import pytest

from tacitrec.datasets import synthetic


def test_synthetic_is_seeded_and_planted():
    a = synthetic(n_users=300, n_items=100, n_clusters=5, random_state=1)
    b = synthetic(n_users=300, n_items=100, n_clusters=5, random_state=1)
    assert (a.user_items != b.user_items).nnz == 0
    X = a.user_items.tocoo()
    same = a.user_cluster[X.row] == a.item_cluster[X.col]
    # draws (counts) from the user's own cluster: in_cluster=0.8 plus 1/5 of the global ones
    share = X.data[same].sum() / X.data.sum()
    assert share == pytest.approx(0.8 + 0.2 / 5, abs=0.03)
    with pytest.raises(ValueError, match="n_clusters"):
        synthetic(n_items=3, n_clusters=4)


def test_synthetic_features_reveal_the_clusters_up_to_the_noise():
    a = synthetic(n_users=2000, n_items=1000, n_clusters=5, feature_noise=0.3, random_state=4)
    plain = synthetic(n_users=2000, n_items=1000, n_clusters=5, random_state=4)
    assert (a.user_items != plain.user_items).nnz == 0       # features do not change the data
    for F, names, cluster, prefix, n_other in (
            (a.user_features, a.user_feature_names, a.user_cluster, "taste=", 5),
            (a.item_features, a.item_feature_names, a.item_cluster, "genre=", 50)):
        assert F.shape == (len(cluster), 5 + n_other) and len(names) == F.shape[1]
        dense = F.toarray()
        assert (dense.sum(axis=1) == 2).all() and set(np.unique(dense)) == {0.0, 1.0}
        shown = dense[:, :5].argmax(axis=1)
        assert [names[c] for c in shown[:3]] == [f"{prefix}{c}" for c in shown[:3]]
        # shown = true cluster with probability 0.7 + 0.3 / 5
        assert (shown == cluster).mean() == pytest.approx(0.76, abs=0.04)
    with pytest.raises(ValueError, match="feature_noise"):
        synthetic(feature_noise=1.5)

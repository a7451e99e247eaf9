"""Splits and ranking metrics, against a NumPy reference and hand-computed cases."""

import numpy as np
import pytest
import scipy.sparse as sp

from tacitrec import MatrixFactorizationBase, PopularityRecommender
from tacitrec.evaluation import (
    AUC_at_k,
    leave_k_out_split,
    mean_average_precision_at_k,
    ndcg_at_k,
    precision_at_k,
    ranking_metrics_at_k,
    recall_at_k,
    train_test_split,
)
from conftest import random_user_items, reference_topk


def reference_metrics(S, train, test, K):
    """Plain-Python metrics over dense scores S (users x items)."""
    n_items = S.shape[1]
    per = {k: [] for k in ("precision", "recall", "map", "ndcg", "auc", "mrr", "hit_rate")}
    hits_total = ideal_total = 0
    for u in range(S.shape[0]):
        pos = set(test[u].indices)
        if not pos:
            continue
        recs = reference_topk(S[u], K, excluded=train[u].indices)
        recs += [-1] * (K - len(recs))
        hits = ap = dcg = auc = rr = 0.0
        misses = 0
        for i, r in enumerate(recs):
            if r in pos:
                hits += 1
                ap += hits / (i + 1)
                dcg += 1 / np.log2(i + 2)
                rr = rr or 1 / (i + 1)
            elif r >= 0:  # padding holds no item
                misses += 1
                auc += hits
        ideal = min(K, len(pos))
        n_neg = n_items - len(pos)
        auc = (auc + (hits + len(pos)) / 2 * (n_neg - misses)) / (len(pos) * n_neg)
        per["precision"].append(hits / K)
        per["recall"].append(hits / len(pos))
        per["map"].append(ap / ideal)
        per["ndcg"].append(dcg / sum(1 / np.log2(i + 2) for i in range(ideal)))
        per["auc"].append(auc)
        per["mrr"].append(rr)
        per["hit_rate"].append(float(hits > 0))
        hits_total += hits
        ideal_total += ideal
    out = {k: float(np.mean(v)) for k, v in per.items()}
    out["implicit_precision"] = hits_total / ideal_total
    return out


@pytest.fixture
def setup():
    X = random_user_items(n_users=300, n_items=50, density=0.2, seed=4)
    train, test = train_test_split(X, 0.7, random_state=1)
    rng = np.random.default_rng(2)
    model = MatrixFactorizationBase()
    model.user_factors = rng.standard_normal((300, 8))
    model.item_factors = rng.standard_normal((50, 8))
    return model, train, test


@pytest.mark.parametrize("K", [1, 5, 10, 60])
def test_metrics_match_numpy_reference(setup, K):
    model, train, test = setup
    S = model.user_factors @ model.item_factors.T
    want = reference_metrics(S, train, test, K)
    got = ranking_metrics_at_k(model, train, test, K=K, show_progress=False)
    assert set(got) == set(want)
    for k in want:
        assert got[k] == pytest.approx(want[k], rel=1e-9, abs=1e-12), k
    assert precision_at_k(model, train, test, K, False) == pytest.approx(want["precision"])
    assert recall_at_k(model, train, test, K, False) == pytest.approx(want["recall"])
    assert mean_average_precision_at_k(model, train, test, K, False) == pytest.approx(want["map"])
    assert ndcg_at_k(model, train, test, K, False) == pytest.approx(want["ndcg"])
    assert AUC_at_k(model, train, test, K, False) == pytest.approx(want["auc"])


def test_hand_computed_case():
    # 2 users x 4 items; item scores 4 > 3 > 2 > 1 for everyone.
    model = MatrixFactorizationBase()
    model.user_factors = np.ones((2, 1))
    model.item_factors = np.array([[4.0], [3.0], [2.0], [1.0]])
    train = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 0, 0, 0]]))
    test = sp.csr_matrix(np.array([[0, 0, 1, 1], [0, 1, 0, 0]]))
    # user 0 ranks [1, 2] at K=2 (item 0 is training): one hit at rank 2
    # user 1 ranks [0, 1]: one hit at rank 2
    m = ranking_metrics_at_k(model, train, test, K=2, show_progress=False)
    assert m["precision"] == pytest.approx(0.5)
    assert m["recall"] == pytest.approx((0.5 + 1.0) / 2)
    assert m["mrr"] == pytest.approx(0.5)
    assert m["hit_rate"] == 1.0
    assert m["map"] == pytest.approx((0.5 / 2 + 0.5 / 1) / 2)
    assert m["ndcg"] == pytest.approx(
        ((1 / np.log2(3)) / (1 + 1 / np.log2(3)) + 1 / np.log2(3)) / 2
    )
    assert m["implicit_precision"] == pytest.approx(2 / 3)


def test_users_without_test_items_are_skipped_and_threads_agree(setup):
    model, train, test = setup
    test = test.tolil()
    test[:100] = 0
    test = test.tocsr()
    test.eliminate_zeros()
    a = ranking_metrics_at_k(model, train, test, K=5, show_progress=False, num_threads=1)
    b = ranking_metrics_at_k(model, train, test, K=5, show_progress=False, num_threads=2)
    assert a == b
    S = model.user_factors @ model.item_factors.T
    assert a["ndcg"] == pytest.approx(reference_metrics(S, train, test, 5)["ndcg"])


def test_huge_k_needs_no_memory_and_keeps_auc_meaningful(setup):
    model, train, test = setup
    big = ranking_metrics_at_k(model, train, test, K=10**9, show_progress=False)
    full = ranking_metrics_at_k(model, train, test, K=50, show_progress=False)
    for k in ("recall", "map", "ndcg", "mrr", "hit_rate", "auc"):
        assert big[k] == pytest.approx(full[k]), k
    assert big["precision"] == pytest.approx(full["precision"] * 50 / 10**9)
    assert 0.0 <= big["auc"] <= 1.0


def test_metric_input_errors(setup):
    model, train, test = setup
    with pytest.raises(ValueError, match="train_user_items has 49 columns, expected 50"):
        ranking_metrics_at_k(model, train[:, :49], test, show_progress=False)
    with pytest.raises(ValueError, match="no interactions"):
        ranking_metrics_at_k(model, train, sp.csr_matrix(test.shape), show_progress=False)
    # a test matrix that differs from train, which has the model's shape, is the one named
    n_users, n_items = train.shape
    with pytest.raises(ValueError, match=f"test_user_items has 10 rows, expected {n_users}"):
        ranking_metrics_at_k(model, train, test[:10], show_progress=False)
    with pytest.raises(ValueError, match=f"test_user_items has 10 columns, expected {n_items}"):
        ranking_metrics_at_k(model, train, test[:, :10], show_progress=False)
    with pytest.raises(ValueError, match=f"train_user_items has 10 rows, expected {n_users}"):
        ranking_metrics_at_k(model, train[:10], test, show_progress=False)
    with pytest.raises(ValueError, match="K must be at least 1"):
        ranking_metrics_at_k(model, train, test, K=0, show_progress=False)
    with pytest.raises(ValueError, match="num_threads must be >= 0"):
        ranking_metrics_at_k(model, train, test, num_threads=-1, show_progress=False)
    with pytest.raises(TypeError, match="test_user_items"):
        ranking_metrics_at_k(model, train, test.toarray(), show_progress=False)


def test_popularity_beats_random_on_planted_data():
    from tacitrec.datasets import synthetic

    X = synthetic(n_users=800, n_items=300, random_state=3).user_items
    train, test = train_test_split(X, 0.8, random_state=0)
    pop = ranking_metrics_at_k(
        PopularityRecommender().fit(train), train, test, K=10, show_progress=False
    )
    rnd = MatrixFactorizationBase()
    rng = np.random.default_rng(0)
    rnd.user_factors, rnd.item_factors = rng.random((800, 4)), rng.random((300, 4))
    base = ranking_metrics_at_k(rnd, train, test, K=10, show_progress=False)
    assert pop["ndcg"] > 2 * base["ndcg"]


# ---- splits -----------------------------------------------------------------------------------


def test_train_test_split_partitions_exactly_and_reproducibly():
    X = random_user_items(n_users=200, n_items=80, density=0.1, seed=9, dtype=np.float64)
    before = X.copy()
    train, test = train_test_split(X, 0.75, random_state=42)
    assert train.shape == test.shape == X.shape
    assert train.dtype == X.dtype and isinstance(train, sp.csr_matrix)
    assert train.nnz == round(0.75 * X.nnz) and train.nnz + test.nnz == X.nnz
    assert train.multiply(test).nnz == 0
    np.testing.assert_array_equal((train + test).toarray(), X.toarray())
    np.testing.assert_array_equal(X.toarray(), before.toarray())
    again = train_test_split(X, 0.75, random_state=42)
    assert (again[0] != train).nnz == 0 and (again[1] != test).nnz == 0
    other = train_test_split(X, 0.75, random_state=43)
    assert (other[0] != train).nnz > 0
    full, empty = train_test_split(X, 1.0, random_state=0)
    assert full.nnz == X.nnz and empty.nnz == 0
    with pytest.raises(ValueError, match="train_percentage"):
        train_test_split(X, 1.5)


def test_train_test_split_sums_duplicates_of_coo_input():
    X = sp.coo_matrix(
        (np.array([1.0, 2.0, 5.0]), (np.array([0, 0, 1]), np.array([1, 1, 0]))), shape=(2, 2)
    )
    train, test = train_test_split(X, 0.5, random_state=0)
    np.testing.assert_array_equal((train + test).toarray(), [[0, 3], [5, 0]])


@pytest.mark.parametrize("how", ["train_test", "leave_k_out", "user", "interaction", "time"])
def test_splits_move_a_repeated_pair_with_all_its_copies_and_keep_them(how):
    """Raw events (a pair stored several times, as Dataset.build_interactions makes): a pair is
    held or kept whole; the training side keeps its copies as stored (LightFM trains each), the
    held side sums them; without repeats the result stays canonical."""
    from tacitrec.model_selection import validation_split

    rng = np.random.default_rng(3)
    n = 4000
    r, c = rng.integers(0, 60, n), rng.integers(0, 40, n)
    v = rng.integers(1, 5, n).astype(np.float32)
    X = sp.coo_matrix((v, (r, c)), shape=(60, 40))
    T = sp.coo_matrix((rng.random(n), (r, c)), shape=(60, 40))

    def split(M):
        if how == "train_test":
            return train_test_split(M, 0.8, random_state=0)
        if how == "leave_k_out":
            return leave_k_out_split(M, K=2, random_state=0)
        extra = {"timestamps": T} if how == "time" else {}
        return validation_split(M, 0.25, by=how, random_state=0, **extra)

    rest, held = split(X)
    summed = X.tocsr()
    np.testing.assert_array_equal((rest + held).toarray(), summed.toarray())
    assert held.has_canonical_format and held.nnz > 0
    # no pair on both sides, and every kept pair with all its stored copies, in stored order
    assert (rest.multiply(held)).nnz == 0
    kept = held.toarray()[r, c] == 0
    order = np.lexsort((c[kept], r[kept]))
    assert rest.nnz == kept.sum()
    np.testing.assert_array_equal(rest.indices, c[kept][order])
    np.testing.assert_array_equal(rest.data, v[kept][order])
    # the same split of the summed matrix: held equal, rest the summed copies
    if how != "time":
        rest2, held2 = split(summed)
        assert rest2.has_canonical_format and (held2 != held).nnz == 0
        assert abs(rest2 - rest).max() == 0


def test_leave_k_out_split():
    X = random_user_items(n_users=300, n_items=60, density=0.05, seed=3)
    counts = np.diff(X.indptr)
    train, test = leave_k_out_split(X, K=2, random_state=7)
    np.testing.assert_array_equal((train + test).toarray(), X.toarray())
    assert train.multiply(test).nnz == 0
    test_counts = np.diff(test.indptr)
    np.testing.assert_array_equal(test_counts, np.where(counts > 2, 2, 0))
    again = leave_k_out_split(X, K=2, random_state=7)
    assert (again[1] != test).nnz == 0
    assert (leave_k_out_split(X, K=2, random_state=8)[1] != test).nnz > 0
    # a share of the active users is kept in train only
    _, test2 = leave_k_out_split(X, K=1, train_only_size=0.5, random_state=0)
    active = np.sum(counts > 0)
    tested = np.sum(np.diff(test2.indptr) > 0)
    assert tested <= active - round(0.5 * active)
    assert tested >= np.sum(counts > 1) - round(0.5 * active)
    with pytest.raises(ValueError, match="train_only_size"):
        leave_k_out_split(X, train_only_size=1.0)
    with pytest.raises(ValueError, match="K must be at least 1"):
        leave_k_out_split(X, K=0)


def test_split_shares_must_be_real_numbers():
    X = random_user_items(n_users=30, n_items=20, density=0.2, seed=0)
    for bad in ("0.5", None, [0.5], True, np.bool_(False)):
        with pytest.raises(TypeError, match="train_percentage must be a number in"):
            train_test_split(X, bad)
        with pytest.raises(TypeError, match="train_only_size must be a number in"):
            leave_k_out_split(X, K=1, train_only_size=bad)
    for good in (0.5, np.float32(0.5), 1, np.int64(0)):
        train, test = train_test_split(X, good, random_state=0)
        assert train.nnz == round(float(good) * X.nnz)
    assert leave_k_out_split(X, train_only_size=np.float64(0.5), random_state=0)[0].nnz > 0
    bad = X.copy()
    bad.data[3] = np.nan  # was passed into the splits (validation_split refused it)
    with pytest.raises(ValueError, match="ratings contains NaN or infinite values"):
        train_test_split(bad)
    with pytest.raises(ValueError, match="ratings contains NaN or infinite values"):
        leave_k_out_split(bad)


def test_cross_check_with_implicit_when_installed(setup):
    """Optional: implicit 0.7's metrics on the same factors (skipped where implicit is absent)."""
    implicit_eval = pytest.importorskip("implicit.evaluation")
    from implicit.cpu.als import AlternatingLeastSquares

    model, train, test = setup
    peer = AlternatingLeastSquares(factors=8)
    peer.user_factors, peer.item_factors = model.user_factors, model.item_factors
    theirs = implicit_eval.ranking_metrics_at_k(peer, train, test, K=10, show_progress=False)
    ours = ranking_metrics_at_k(model, train, test, K=10, show_progress=False)
    assert ours["implicit_precision"] == pytest.approx(theirs["precision"], rel=1e-6)
    for k in ("map", "ndcg", "auc"):
        assert ours[k] == pytest.approx(theirs[k], rel=1e-6), k

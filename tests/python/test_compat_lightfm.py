"""tacitrec.compat.lightfm: LightFM's module paths, exceptions and per-user metrics, against NumPy
references computed from the model's scores."""

import inspect
import pickle

import numpy as np
import pytest
import scipy.sparse as sp

import tacitrec
from tacitrec.compat import lightfm as compat
from tacitrec.compat.lightfm import LightFM, evaluation
from tacitrec.compat.lightfm.data import Dataset
from conftest import random_user_items


def split(n_users=25, n_items=30, seed=0):
    """Disjoint train and test with every user in train, some without test items, one whose
    every non-training item is a test item."""
    X = random_user_items(n_users=n_users, n_items=n_items, density=0.35, seed=seed)
    X.data[:] = 1
    rng = np.random.default_rng(seed)
    held = rng.random(X.nnz) < 0.3
    rows = np.repeat(np.arange(n_users), np.diff(X.indptr))
    held[np.isin(rows, [0, 1])] = False  # users 0 and 1: no test items
    test = sp.csr_matrix(
        (
            X.data[held],
            X.indices[held],
            np.r_[0, np.cumsum(np.bincount(rows[held], minlength=n_users))],
        ),
        shape=X.shape,
    )
    train = (X - test).tocsr()
    train.eliminate_zeros()
    full = np.ones(n_items, bool)
    full[train[2].indices] = False
    test = test.tolil()
    test[2, np.flatnonzero(full)] = 1  # user 2: every candidate is a test item
    return train, test.tocsr()


def reference(model, train, test, k):
    """Per-user precision, recall, AUC and reciprocal rank from the predicted scores: the
    candidates are the items not in train, sorted by score (no ties with random scores)."""
    n_users, n_items = test.shape
    out = {name: np.zeros(n_users) for name in ("precision", "recall", "auc", "rr")}
    for u in range(n_users):
        scores = model.predict(u, np.arange(n_items)).astype(np.float64)
        candidates = np.setdiff1d(np.arange(n_items), train[u].indices if train is not None else [])
        ranked = candidates[np.argsort(-scores[candidates], kind="stable")]
        positives = set(test[u].indices)
        negatives = [j for j in candidates if j not in positives]
        hits = [j in positives for j in ranked]
        out["precision"][u] = sum(hits[:k]) / k
        out["recall"][u] = sum(hits[:k]) / len(positives) if positives else 0.0
        out["rr"][u] = 1.0 / (1 + hits.index(True)) if positives else 0.0
        if positives and negatives:
            out["auc"][u] = np.mean(
                [np.mean([scores[p] > scores[q] for q in negatives]) for p in positives]
            )
        else:
            out["auc"][u] = 0.5  # one class only
    return out


@pytest.mark.parametrize("with_train", [False, True])
@pytest.mark.parametrize("k", [1, 5])
def test_metrics_match_the_numpy_reference(with_train, k):
    train, test = split()
    m = LightFM(no_components=6, loss="warp", random_state=0).fit(train, epochs=3)
    tr = train if with_train else None
    want = reference(m, tr, test, k)
    has_test = test.getnnz(axis=1) > 0
    for name, got in (
        ("precision", evaluation.precision_at_k(m, test, tr, k=k, preserve_rows=True)),
        ("recall", evaluation.recall_at_k(m, test, tr, k=k, preserve_rows=True)),
        ("auc", evaluation.auc_score(m, test, tr, preserve_rows=True)),
        ("rr", evaluation.reciprocal_rank(m, test, tr, preserve_rows=True)),
    ):
        assert got.dtype == np.float32 and got.shape == (25,), name
        np.testing.assert_allclose(got, want[name], rtol=1e-6, atol=1e-6, err_msg=name)
    # LightFM's handling of users without test interactions: dropped by default, and
    # precision 0, recall 0 (as LightFM documents), AUC 0.5, reciprocal rank 0 when kept
    short = evaluation.precision_at_k(m, test, tr, k=k)
    np.testing.assert_allclose(short, want["precision"][has_test], rtol=1e-6, atol=1e-6)
    for f, value in (
        (evaluation.precision_at_k, 0),
        (evaluation.recall_at_k, 0),
        (evaluation.auc_score, 0.5),
        (evaluation.reciprocal_rank, 0),
    ):
        assert len(f(m, test, tr)) == has_test.sum()
        assert np.all(f(m, test, tr, preserve_rows=True)[:2] == value), f.__name__


def test_tacitrec_lightfm_is_evaluated_alike():
    train, test = split(seed=1)
    # compat trains in LightFM's epoch order, tacitrec.LightFM by default users grouped
    plain = tacitrec.LightFM(no_components=4, loss="bpr", random_state=3, order="interactions")
    plain.fit(train)
    wrapped = LightFM(no_components=4, loss="bpr", random_state=3).fit(train)
    np.testing.assert_array_equal(plain.item_embeddings, wrapped.item_embeddings)
    np.testing.assert_array_equal(
        evaluation.auc_score(plain, test, train), evaluation.auc_score(wrapped, test, train)
    )


def test_auc_counts_a_test_item_in_train_once():
    # one user, scores 5 4 3 2 1 0 (item biases); test {0, 2}, train {2, 4} overlap at item 2
    m = LightFM(no_components=2, random_state=0).fit(
        sp.csr_matrix((1, 6), dtype=np.float32), epochs=0
    )
    m.user_embeddings = np.zeros((1, 2))
    m.item_embeddings = np.zeros((6, 2))
    m.item_biases = np.arange(5, -1, -1)
    test = sp.csr_matrix(np.array([[1, 0, 1, 0, 0, 0]], np.float32))
    train = sp.csr_matrix(np.array([[0, 0, 1, 0, 1, 0]], np.float32))
    ranks = m.predict_rank(test, train, check_intersections=False).toarray()
    np.testing.assert_array_equal(ranks, [[0, 0, 2, 0, 0, 0]])  # item 2 among 0, 1, 3, 5
    # negatives: items 1, 3, 5; item 0 beats all three, item 2 two of them
    auc = evaluation.auc_score(m, test, train, check_intersections=False)
    np.testing.assert_allclose(auc, [(1 + 2 / 3) / 2], rtol=1e-6)
    with pytest.raises(ValueError, match="share"):
        evaluation.auc_score(m, test, train)


def test_exceptions_are_lightfm_s_and_tacitrec_s():
    for params in (
        {"no_components": -1},
        {"user_alpha": -1.0},
        {"loss": "hinge"},
        {"max_sampled": -1.0},
    ):
        with pytest.raises(AssertionError):
            LightFM(**params)
        with pytest.raises(ValueError):
            LightFM(**params)
        with pytest.raises(ValueError) as plain:
            tacitrec.LightFM(**params)
        assert not isinstance(plain.value, AssertionError)
    with pytest.raises(AssertionError, match="no_components"):
        LightFM().set_params(no_components=0)
    X = random_user_items(n_users=20, n_items=10, density=0.3, seed=4)
    m = LightFM(random_state=0).fit(X)
    with pytest.raises(ValueError):
        m.predict("foo", np.arange(10))
    with pytest.raises(IndexError, match="out of range"):  # tacitrec's class still matches
        m.predict(np.array([20]), np.array([0]))
    with pytest.raises(ValueError):
        m.predict(np.array([20]), np.array([0]))
    with pytest.raises(ValueError):
        m.fit(X, sample_weight=np.ones(X.nnz))
    with pytest.raises(NotImplementedError):
        LightFM(loss="warp-kos").fit(X, sample_weight=X)
    with pytest.raises(ValueError, match="NaN or infinite"):
        LightFM(learning_rate=1e7, loss="warp", random_state=0).fit(X * 1e30, epochs=3)
    with pytest.raises(tacitrec.ModelFitError):
        LightFM(learning_rate=1e7, loss="warp", random_state=0).fit(X * 1e30, epochs=3)
    with pytest.raises(ValueError, match="k must be at least 1"):
        evaluation.precision_at_k(m, X, k=0)


def test_lightfm_defects_stay_fixed():
    X = random_user_items(n_users=40, n_items=30, density=0.2, seed=5)
    m = LightFM(no_components=4, loss="bpr", random_state=0).fit(X, epochs=3)
    assert np.all(m.user_biases == 0)  # no gradient for the user bias in pairwise losses
    reg = LightFM(
        no_components=4, loss="warp", item_alpha=0.05, user_alpha=0.05, random_state=0
    ).fit(X, epochs=5)
    assert np.isfinite(reg.item_embeddings).all()
    Fu = sp.csr_matrix(np.ones((40, 3), np.float32))
    f = LightFM(no_components=4, random_state=0).fit(X, user_features=Fu)
    with pytest.raises(ValueError, match="fitted with user_features"):
        f.predict(0, np.arange(30))


def test_module_paths_and_signatures_follow_lightfm():
    assert compat.LightFM is compat.lightfm.LightFM is LightFM
    assert issubclass(LightFM, tacitrec.LightFM) and issubclass(Dataset, tacitrec.Dataset)
    assert compat.data.Dataset is Dataset and compat.evaluation is evaluation
    common = [
        "model",
        "test_interactions",
        "train_interactions",
        "user_features",
        "item_features",
        "preserve_rows",
        "num_threads",
        "check_intersections",
    ]
    for name in ("precision_at_k", "recall_at_k"):
        params = list(inspect.signature(getattr(evaluation, name)).parameters)
        assert params == common[:3] + ["k"] + common[3:], name
    for name in ("auc_score", "reciprocal_rank"):
        assert list(inspect.signature(getattr(evaluation, name)).parameters) == common, name
    for cls in (LightFM, Dataset):
        for name, member in vars(cls).items():
            if callable(member) and not name.startswith("_"):
                assert member.__doc__, f"{cls.__name__}.{name} has no docstring"
        assert "differs from LightFM" in cls.__doc__


def test_pickle_save_and_load_keep_the_class(tmp_path):
    X = random_user_items(n_users=20, n_items=10, density=0.3, seed=6)
    m = LightFM(no_components=3, random_state=0).fit(X)
    back = pickle.loads(pickle.dumps(m))
    assert type(back) is LightFM
    np.testing.assert_array_equal(back.predict(1, np.arange(10)), m.predict(1, np.arange(10)))
    m.save(tmp_path / "m")
    assert type(LightFM.load(tmp_path / "m")) is LightFM
    assert type(tacitrec.LightFM.load(tmp_path / "m")) is tacitrec.LightFM
    tacitrec.LightFM(no_components=3, random_state=0).fit(X).save(tmp_path / "p")
    assert type(tacitrec.LightFM.load(tmp_path / "p")) is tacitrec.LightFM


def test_random_train_test_split_shuffles_and_cuts_as_lightfm():
    from tacitrec.compat.lightfm.cross_validation import random_train_test_split

    X = random_user_items(n_users=30, n_items=20, density=0.3, seed=7).tocoo()
    before = X.copy()
    train, test = random_train_test_split(X, test_percentage=0.3, random_state=5)
    # LightFM's procedure: shuffle the entries' positions with the seed, cut at (1 - p) * nnz
    order = np.arange(X.nnz)
    np.random.RandomState(5).shuffle(order)
    cut = int(0.7 * X.nnz)
    for part, idx in ((train, order[:cut]), (test, order[cut:])):
        assert isinstance(part, sp.coo_matrix) and part.shape == X.shape
        assert part.dtype == X.dtype
        want = sp.coo_matrix((X.data[idx], (X.row[idx], X.col[idx])), shape=X.shape)
        assert (part.tocsr() != want.tocsr()).nnz == 0
    assert (X != before).nnz == 0
    # a repeated pair goes to one part with all its copies (which still train as copies)
    dup = sp.coo_matrix((np.ones(5), ([0, 0, 1, 1, 1], [2, 2, 3, 3, 3])), shape=(2, 5))
    for seed in range(6):
        tr, te = random_train_test_split(dup, test_percentage=0.5, random_state=seed)
        assert tr.tocsr().multiply(te.tocsr()).nnz == 0
        assert sorted([tr.nnz, te.nnz]) == [2, 3] and tr.sum() + te.sum() == 5
        for part in (tr, te):
            assert len(set(zip(part.row, part.col))) == 1
    with pytest.raises(ValueError, match="test_percentage"):
        random_train_test_split(X, test_percentage=1.5)
    for bad in ("0.5", None, [0.5], True):
        with pytest.raises(TypeError, match="test_percentage must be a number in"):
            random_train_test_split(X, test_percentage=bad)
    with pytest.raises(ValueError, match="scipy.sparse"):
        random_train_test_split(X.toarray())


def test_whole_number_floats_and_bools_are_accepted_as_lightfm_casts_them():
    """Hyper-parameter searches (hyperopt's quniform) give floats; LightFM casts ids to int32."""
    from tacitrec.compat.lightfm import LightFM
    from tacitrec.compat.lightfm.evaluation import precision_at_k

    X = random_user_items(n_users=30, n_items=20, density=0.2, seed=2).tocoo()
    a = LightFM(no_components=4.0, k=5.0, n=10.0, max_sampled=10.0, loss="warp", random_state=0)
    a.fit(X, epochs=2.0, num_threads=1.0)
    b = LightFM(no_components=4, loss="warp", random_state=0).fit(X, epochs=2, num_threads=1)
    assert isinstance(a.max_sampled, int) and a.no_components == 4
    np.testing.assert_array_equal(a.item_embeddings, b.item_embeddings)
    want = b.predict(np.array([0, 1, 1]), np.array([1, 0, 2]))
    for users, items in (
        (np.array([0.0, 1.0, 1.0]), np.array([1.0, 0.0, 2.0])),
        (np.array([0, 1, 1], dtype=object), [1, 0, 2]),
        (np.array([False, True, True]), np.array([1, 0, 2])),
    ):
        np.testing.assert_array_equal(a.predict(users, items, num_threads=1.0), want)
    np.testing.assert_array_equal(precision_at_k(a, X, k=5.0), precision_at_k(b, X, k=5))
    dense = np.eye(30, dtype=np.float32)
    np.testing.assert_array_equal(a.get_user_representations(dense)[1], b.user_embeddings)
    with pytest.raises(TypeError, match="user_ids"):
        a.predict(np.array([0.5]), np.array([1]))


_ACCUMULATORS = [
    f"{side}_{part}_{kind}"
    for side in ("user", "item")
    for part in ("embedding", "bias")
    for kind in ("gradients", "momentum")
]


def _one_interaction_fit(cls, schedule):
    """One epoch of one interaction (user 0, item 1) under the logistic loss: the only update
    is that interaction's."""
    X = sp.coo_matrix(np.float32([[0, 1, 0], [0, 0, 0]]))
    m = cls(no_components=4, loss="logistic", learning_schedule=schedule, random_state=3)
    return m, X


@pytest.mark.parametrize("schedule", ["adagrad", "adadelta"])
def test_optimiser_accumulators_are_lightfm_s(schedule):
    """LightFM's eight optimiser attributes: adagrad's squared-gradient sums start at 1,
    adadelta's running averages at 0, momentum at 0; after one update they hold the update's
    gradients, computed here by hand from the parameters before it."""
    m, X = _one_interaction_fit(LightFM, schedule)
    assert all(getattr(m, n) is None for n in _ACCUMULATORS)  # not fitted
    m.fit(X, epochs=0)
    start = 1.0 if schedule == "adagrad" else 0.0
    for n in _ACCUMULATORS:
        assert (getattr(m, n) == (start if n.endswith("gradients") else 0.0)).all(), n
    u, v = m.user_embeddings[0].astype(np.float64), m.item_embeddings[1].astype(np.float64)
    score = u @ v + float(m.user_biases[0]) + float(m.item_biases[1])
    g = 1.0 / (1.0 + np.exp(-score)) - 1.0  # d/ds of -log(sigmoid(s)): a positive
    grads = {"user_embedding": g * v, "user_bias": g, "item_embedding": g * u, "item_bias": g}
    m.fit_partial(X, epochs=1)
    for name, grad in grads.items():
        row = 0 if name.startswith("user") else 1
        G, M = getattr(m, name + "_gradients"), getattr(m, name + "_momentum")
        if schedule == "adagrad":
            want_G, want_M = 1.0 + np.square(grad), 0.0 * grad
        else:  # rho 0.95, epsilon 1e-6 (the defaults)
            want_G = 0.05 * np.square(grad)
            step = np.sqrt(1e-6 / (want_G + 1e-6)) * grad
            want_M = 0.05 * np.square(step)
        np.testing.assert_allclose(G[row], want_G, rtol=1e-5, err_msg=name)
        np.testing.assert_allclose(M[row], want_M, rtol=1e-4, atol=1e-12, err_msg=name)
        others = np.delete(G, row, axis=0)
        assert (others == start).all(), f"{name}: a row the update did not touch changed"
    # read-only views (a zero written into adagrad's sums would divide by zero); assigning
    # validates and copies
    with pytest.raises(ValueError, match="read-only"):
        m.item_bias_gradients[0] = 0.0
    with pytest.raises(ValueError, match="item_bias_gradients must be (positive|non-negative)"):
        m.item_bias_gradients = -np.ones(3)
    with pytest.raises(ValueError, match=r"item_embedding_momentum must have shape \(3, 4\)"):
        m.item_embedding_momentum = np.zeros(3)
    value = np.array([0.5, 0.25, 2.0])
    m.item_bias_momentum = value
    value[0] = 7.0  # the model keeps its copy
    np.testing.assert_array_equal(m.item_bias_momentum, [0.5, 0.25, 2.0])


@pytest.mark.parametrize("schedule", ["adagrad", "adadelta"])
def test_optimiser_accumulators_match_lightfm_when_installed(schedule):
    """The same accumulators as LightFM 1.17 after the same update, and a LightFM model's
    whole state (parameters and accumulators) carried over by assignment trains on as in
    LightFM."""
    lightfm = pytest.importorskip("lightfm")
    ours, X = _one_interaction_fit(LightFM, schedule)
    theirs, _ = _one_interaction_fit(lightfm.LightFM, schedule)
    ours.fit(X, epochs=1)
    theirs.fit(X, epochs=1)
    for n in _ACCUMULATORS:
        np.testing.assert_allclose(getattr(ours, n), getattr(theirs, n), rtol=1e-5, err_msg=n)
    carried, _ = _one_interaction_fit(LightFM, schedule)
    carried.fit(X, epochs=0)
    state = _ACCUMULATORS + [f"{s}_{p}" for s in ("user", "item") for p in ("embeddings", "biases")]
    for n in state:
        setattr(carried, n, getattr(theirs, n))
    carried.fit_partial(X, epochs=1)
    theirs.fit_partial(X, epochs=1)
    for n in state:
        np.testing.assert_allclose(
            getattr(carried, n), getattr(theirs, n), rtol=1e-5, atol=1e-9, err_msg=n
        )

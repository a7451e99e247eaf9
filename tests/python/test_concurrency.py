"""The concurrency contract: many readers or one writer per model. Concurrent ``recommend`` calls
run in parallel; ``fit`` / ``fit_partial`` / ``partial_fit_*`` wait for the running reads and make
new reads wait until they end, so a reader never sees a half-trained model and a fit never fails
with "The given array is already borrowed" (ALS, BPR, LMF) or a reader with "'NoneType' object is
not subscriptable" (LightFM). Two fits of one model run one after the other."""

import copy
import pickle
import threading
import time

import numpy as np
import pytest

import tacitrec
from tacitrec.base import _model_lock

from conftest import random_user_items

X = random_user_items(n_users=300, n_items=120, density=0.1)
USERS = np.arange(40)


def models():
    return [
        (
            "als",
            tacitrec.AlternatingLeastSquares(
                factors=8, iterations=2, random_state=0, num_threads=2
            ),
            {},
        ),
        (
            "bpr",
            tacitrec.BayesianPersonalizedRanking(
                factors=8, iterations=3, random_state=0, num_threads=2
            ),
            {},
        ),
        (
            "lmf",
            tacitrec.LogisticMatrixFactorization(
                factors=8, iterations=3, random_state=0, num_threads=2
            ),
            {},
        ),
        ("knn", tacitrec.BM25Recommender(K=10, num_threads=2), {}),
        ("lightfm", tacitrec.LightFM(no_components=8, random_state=0), {"epochs": 2}),
    ]


def fit(model, kw):
    if isinstance(model, tacitrec.LightFM):
        return model.fit(X, num_threads=2, **kw)
    return model.fit(X, show_progress=False, **kw)


def run_threads(targets, timeout=60.0):
    """Runs the callables in threads; re-raises the first exception any of them raised."""
    errors = []

    def wrap(fn):
        def body():
            try:
                fn()
            except BaseException as e:  # noqa: B902 - reported below
                errors.append(e)

        return body

    threads = [threading.Thread(target=wrap(fn)) for fn in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
        assert not t.is_alive(), "a thread hung"
    if errors:
        raise errors[0]


@pytest.mark.parametrize("name,model,kw", models(), ids=[m[0] for m in models()])
def test_readers_while_another_thread_fits(name, model, kw):
    fit(model, kw)
    n_items = X.shape[1]
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            ids, scores = model.recommend(USERS, X[USERS], N=5)
            assert ids.shape == (len(USERS), 5) and ids.max() < n_items
            assert not np.isnan(scores).any()

    def writer():
        try:
            for _ in range(4):
                fit(model, kw)
                if hasattr(model, "partial_fit_users"):
                    model.partial_fit_users(USERS[:3], X[USERS[:3]])
        finally:
            stop.set()

    run_threads([reader, reader, reader, writer])


@pytest.mark.parametrize("name,model,kw", models(), ids=[m[0] for m in models()])
def test_two_fits_of_one_model_run_one_after_the_other(name, model, kw):
    run_threads([lambda: fit(model, kw), lambda: fit(model, kw), lambda: fit(model, kw)])
    model.recommend(USERS, X[USERS], N=5)


def test_a_fit_waits_for_running_reads_and_reads_wait_for_a_fit():
    model = tacitrec.AlternatingLeastSquares(factors=4, iterations=1, num_threads=1)
    fit(model, {})
    lock = _model_lock(model)
    order = []
    with lock.reading("test read"):
        t = threading.Thread(target=lambda: (fit(model, {}), order.append("fit")))
        t.start()
        time.sleep(0.2)
        order.append("read ends")
    t.join(30)
    assert order == ["read ends", "fit"]
    # a fit's callback may read the model it trains (the writer reads)
    seen = []
    model.fit(
        X, show_progress=False, callback=lambda *a: seen.append(model.recommend(0, X[0], N=3)[0])
    )
    assert len(seen) == 1


def test_training_from_inside_a_serving_call_is_a_clear_error():
    model = tacitrec.AlternatingLeastSquares(factors=4, iterations=1)
    fit(model, {})
    with _model_lock(model).reading("AlternatingLeastSquares.recommend"):
        with pytest.raises(RuntimeError, match="fit.*recommend"):
            model.fit(X, show_progress=False)
    fit(model, {})  # the lock is released


def test_the_lock_is_not_pickled_copied_or_saved(tmp_path):
    for name, model, kw in models():
        fit(model, kw)
        lock = _model_lock(model)
        for other in (pickle.loads(pickle.dumps(model)), copy.deepcopy(model)):
            assert _model_lock(other) is not lock
            other.recommend(USERS, X[USERS], N=5)
        model.save(tmp_path / name)
        loaded = type(model).load(tmp_path / f"{name}.npz")
        loaded.recommend(USERS, X[USERS], N=5)

"""Fork safety: rayon pools cached before ``os.fork()`` have no threads in the child, so without
the package's ``register_at_fork`` hook any parallel call in a forked child waits forever
(multiprocessing with fork, Spark's and Dask's forked Python workers). Each test runs a script in
a child interpreter with a timeout, so a hang fails the test instead of the run."""

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="os.fork is POSIX only")

PRELUDE = """
import os, sys
import numpy as np
import tacitrec
from tacitrec.datasets import synthetic

X = synthetic(n_users=300, n_items=200, random_state=0).user_items
users = np.arange(50)

def in_child(fn, timeout=20.0):
    # runs fn in a forked child; the child exits 0 when fn returns, 1 when it raises
    pid = os.fork()
    if pid == 0:
        try:
            fn()
        except BaseException as e:
            print("child failed:", repr(e), flush=True)
            os._exit(1)
        os._exit(0)
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0, status
            return
        time.sleep(0.02)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    raise SystemExit("the forked child hung")
"""


def run(script: str, timeout: float = 120.0) -> None:
    code = PRELUDE + textwrap.dedent(script) + "\nprint('ok')\n"
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout
    )
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), res.stdout + res.stderr


def test_recommend_and_fit_in_a_forked_child():
    # pools of several sizes are cached in the parent (two threads and all cores) before forking
    run("""
    als = tacitrec.AlternatingLeastSquares(factors=8, iterations=2, random_state=0,
                                           num_threads=2).fit(X, show_progress=False)
    knn = tacitrec.BM25Recommender(K=10, num_threads=0).fit(X, show_progress=False)
    bpr = tacitrec.BayesianPersonalizedRanking(factors=8, iterations=2, random_state=0)
    bpr.fit(X, show_progress=False)
    expected = als.recommend(users, X[users], N=5)

    def child():
        ids, _ = als.recommend(users, X[users], N=5)
        assert (ids == expected[0]).all()
        knn.recommend(users, X[users], N=5)
        tacitrec.BayesianPersonalizedRanking(factors=8, iterations=2, random_state=0).fit(
            X, show_progress=False)
        tacitrec.LightFM(no_components=4).fit(X, epochs=1, num_threads=2)
        # and a grandchild, forked from a child whose pools are fresh
        in_child(lambda: als.recommend(users, X[users], N=5))

    in_child(child)
    # the parent's pools still work
    assert (als.recommend(users, X[users], N=5)[0] == expected[0]).all()
    """)


def test_multiprocessing_fork_pool():
    run("""
    import multiprocessing as mp
    model = tacitrec.CosineRecommender(K=10).fit(X, show_progress=False)
    model.recommend(users, X[users], N=5)

    def work(u):
        return model.recommend(u, X[u], N=3)[0].tolist()

    with mp.get_context("fork").Pool(2) as pool:
        got = pool.map_async(work, range(8)).get(timeout=60)
    assert got == [work(u) for u in range(8)]
    """)

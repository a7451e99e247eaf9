"""Limits: absurd thread counts, sampling parameters and sizes are refused with a ValueError that
names the argument, or served within bounds; memory exhaustion raises MemoryError. Anything that
could hang or exhaust the machine runs in a child interpreter with a timeout (and, for memory, an
address-space limit), so a failure fails the test instead of the run."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tacitrec
from tacitrec._validation import MAX_COUNT, MAX_NUM_THREADS, check_count, check_threads
from tacitrec.evaluation import ranking_metrics_at_k

from conftest import random_user_items


def run(script: str, timeout: float = 120.0, memory_limit: int = 0) -> str:
    """Runs ``script`` in a child interpreter (with an address-space limit of ``memory_limit``
    bytes set before anything is imported); fails on a crash, a hang or a non-zero exit."""
    prelude = "import resource\n"
    if memory_limit:
        prelude += f"resource.setrlimit(resource.RLIMIT_AS, ({memory_limit}, {memory_limit}))\n"
    code = prelude + textwrap.dedent(script) + "\nprint('ok')\n"
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout
    )
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), (
        f"exit {res.returncode}\n{res.stdout}\n{res.stderr}"
    )
    return res.stdout


# ---- thread counts ----------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=-(2**70), max_value=2**70))
def test_check_threads_accepts_exactly_the_usable_range(n):
    if 0 <= n <= MAX_NUM_THREADS:
        assert check_threads(n) == n
    else:
        with pytest.raises(ValueError, match="num_threads"):
            check_threads(n)


@pytest.mark.parametrize("n", [100000, 2**62, 2**70])
def test_absurd_thread_counts_are_value_errors(n):
    X = random_user_items()
    with pytest.raises(ValueError, match="num_threads"):
        tacitrec.AlternatingLeastSquares(factors=4, iterations=1, num_threads=n).fit(
            X, show_progress=False
        )
    with pytest.raises(ValueError, match="num_threads"):
        tacitrec.LightFM().fit(X, num_threads=n)
    model = tacitrec.CosineRecommender(K=5).fit(X, show_progress=False)
    model.num_threads = n
    with pytest.raises(ValueError, match="num_threads"):
        model.recommend(0, X[0])


def test_large_thread_counts_run_on_capped_pools():
    # 1..120 threads in turn, then the largest accepted count: bounded pools, no thread pile-up
    run(
        f"""
    import numpy as np, tacitrec
    from tacitrec.datasets import synthetic
    X = synthetic(n_users=200, n_items=100, random_state=0).user_items
    model = tacitrec.AlternatingLeastSquares(factors=4, iterations=1, random_state=0).fit(
        X, show_progress=False)
    expected = model.recommend(np.arange(20), X[:20], N=5)[0]
    for n in list(range(1, 121)) + [{MAX_NUM_THREADS}]:
        model.num_threads = n
        assert (model.recommend(np.arange(20), X[:20], N=5)[0] == expected).all(), n
    assert tacitrec._core.MAX_THREADS == 256
    """,
        timeout=240,
    )


# ---- counts past 64 bits and sampling bounds ----------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=-(2**80), max_value=2**80))
def test_check_count_names_out_of_range_integers(v):
    if 1 <= v <= MAX_COUNT:
        assert check_count(v, "N") == v
    else:
        with pytest.raises(ValueError, match="N"):
            check_count(v, "N")


def test_huge_integers_are_value_errors_naming_the_argument():
    X = random_user_items()
    als = tacitrec.AlternatingLeastSquares(factors=4, iterations=1).fit(X, show_progress=False)
    with pytest.raises(ValueError, match="N="):
        als.recommend(0, X[0], N=2**70)
    with pytest.raises(ValueError, match="N="):
        als.similar_items(0, N=2**70)
    with pytest.raises(ValueError, match="neg_prop"):
        tacitrec.LogisticMatrixFactorization(neg_prop=2**70).fit(X, show_progress=False)
    with pytest.raises(ValueError, match="K="):
        tacitrec.CosineRecommender(K=2**70).fit(X, show_progress=False)
    with pytest.raises(ValueError, match="K="):
        ranking_metrics_at_k(als, X, X, K=2**70, show_progress=False)
    for name in ("factors", "iterations", "cg_steps"):
        with pytest.raises(ValueError, match=name):
            tacitrec.AlternatingLeastSquares(**{name: 2**70}).fit(X, show_progress=False)
    with pytest.raises(ValueError, match="epochs"):
        tacitrec.LightFM().fit(X, epochs=2**70)


def test_sampling_parameters_are_bounded():
    X = random_user_items()
    with pytest.raises(ValueError, match="max_redraws"):
        tacitrec.BayesianPersonalizedRanking(max_redraws=10**9).fit(X, show_progress=False)
    with pytest.raises(ValueError, match="max_sampled"):
        tacitrec.LightFM(loss="warp", max_sampled=10**9)
    with pytest.raises(ValueError, match="neg_prop"):
        tacitrec.LogisticMatrixFactorization(neg_prop=10**9, max_negatives=None).fit(
            X, show_progress=False
        )


def test_users_with_every_item_are_skipped_not_searched():
    # one user holds every item: no negative exists for it. At the largest accepted bounds the
    # epochs must stay quick (they ran for minutes when every sample searched its budget).
    run(
        """
    import numpy as np, scipy.sparse as sp, tacitrec
    from tacitrec.datasets import synthetic
    X = synthetic(n_users=500, n_items=300, random_state=0).user_items.tolil()
    X[:5, :] = 1.0  # five users with every item
    X = X.tocsr()
    bpr = tacitrec.BayesianPersonalizedRanking(factors=8, iterations=2, max_redraws=1000,
                                               random_state=0)
    for det in (True, False):
        bpr.deterministic = det
        bpr.fit(X, show_progress=False)
        bpr.recommend(np.arange(10), X[:10], N=5, recalculate_user=True)
    full = sp.csr_matrix(np.ones((3, 300), dtype=np.float32))
    for loss in ("warp", "warp-kos"):
        tacitrec.LightFM(loss=loss, max_sampled=10**6).fit(X, epochs=2, num_threads=2)
        tacitrec.LightFM(loss=loss, max_sampled=10**6).fit(full, epochs=2)
    lmf = tacitrec.LogisticMatrixFactorization(factors=8, iterations=2, neg_prop=1000,
                                               max_negatives=None, random_state=0)
    lmf.fit(X[:60], show_progress=False)
    """,
        timeout=60,
    )


def test_n_beyond_the_catalogue_means_all_items():
    X = random_user_items()
    for model in (
        tacitrec.AlternatingLeastSquares(factors=4, iterations=1),
        tacitrec.CosineRecommender(K=5),
    ):
        model.fit(X, show_progress=False)
        ids, _ = model.recommend(np.arange(3), X[:3], N=2**62, filter_already_liked_items=False)
        assert ids.shape == (3, X.shape[1])


# ---- memory exhaustion ---------------------------------------------------------------------------

# the tests' bodies are dedented on their own: indented as they are in the test functions and
# appended to this prelude, they were the body of `refused`, after its `raise`, and never ran
MEMORY_PRELUDE = """
import re
import numpy as np, scipy.sparse as sp, tacitrec
from tacitrec.datasets import synthetic

def refused(fn, *words):
    # fn must raise MemoryError whose message names the size and every word (a regular
    # expression: the parameter)
    try:
        fn()
    except MemoryError as e:
        msg = str(e)
        assert re.search(r"[0-9.]+ (bytes|GB)", msg), msg
        assert all(re.search(w, msg) for w in words), msg
        return
    raise AssertionError(f"{fn} did not raise MemoryError")

def wide(width):
    # 10 users and 5 interactions over `width` columns (ids used directly as column indices)
    return sp.csr_matrix(
        (np.ones(5, np.float32), np.array([0, 7, 10**6, width - 1, 5]),
         np.array([0, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5])), shape=(10, width))
"""


def test_memory_exhaustion_raises_memory_error_naming_the_parameter():
    # under a 3 GiB address-space limit every one of these asked for more and aborted the
    # interpreter ("memory allocation of N bytes failed")
    run(
        MEMORY_PRELUDE
        + textwrap.dedent(
            """
    small = synthetic(n_users=100, n_items=50, random_state=0).user_items
    ALS = tacitrec.AlternatingLeastSquares
    refused(lambda: ALS(factors=100000, iterations=1, num_threads=2).fit(
        small, show_progress=False), "factors=100000")
    refused(lambda: ALS(factors=20000, iterations=1, use_cg=False, num_threads=2).fit(
        small, show_progress=False), "factors=20000")
    model = ALS(factors=20000, iterations=0).fit(small, show_progress=False)
    refused(lambda: model.recalculate_user(0, small[0]), "factors=20000")
    # the item-item models on 2*10^8 columns and 5 interactions: per-column arrays do not fit
    # (SpectralFilter aborted; the kNN fits' lower bound counted 8 of their 24 bytes an item)
    knn = (tacitrec.CosineRecommender, tacitrec.BM25Recommender, tacitrec.ItemItemRecommender,
           tacitrec.RP3BetaRecommender)
    for cls in knn + (tacitrec.SpectralFilterRecommender,):
        refused(lambda: cls(num_threads=2).fit(wide(2 * 10**8), show_progress=False),
                "200,?000,?000", type(cls()).__name__)
    # nearer the limit each fits or refuses, never aborts (kNN at 10^8 and RP3beta at 6*10^7
    # passed the check and then failed small allocations: abort)
    for width in (6 * 10**7, 10**8):
        for cls in knn:
            try:
                m = cls(K=5, num_threads=2).fit(wide(width), show_progress=False)
            except MemoryError as e:
                assert "needs at least" in str(e), str(e)
                continue
            # items 0 and 7 (the first user's) are the only pair that co-occurs
            sim = m.similarity
            assert sim[0, 7] > 0 and sim[7, 0] > 0 and sim[0, 10**6] == 0, (cls, width, sim)
    # the model is still usable after a refused call
    ALS(factors=8, iterations=1, num_threads=2).fit(small, show_progress=False)
    """
        ),
        memory_limit=3 * 2**30,
        timeout=120,
    )


def test_the_address_space_limit_caps_the_memory_available():
    """Under ``ulimit -v`` (RLIMIT_AS, as batch schedulers set it) the memory available is at
    most the address space left: the fits' checks refuse before an allocation fails."""
    out = run(
        """
        from tacitrec._validation import address_space_left, available_memory
        left, avail = address_space_left(), available_memory()
        assert 0 < left < 3 * 2**30 and avail <= left, (left, avail)
        print(left)
        """,
        memory_limit=3 * 2**30,
    )
    assert int(out.split()[0]) > 2**30  # an interpreter with NumPy maps well under 2 GiB
    code = "from tacitrec._validation import address_space_left; print(address_space_left())"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    import resource

    if resource.getrlimit(resource.RLIMIT_AS)[0] == resource.RLIM_INFINITY:
        assert res.stdout.strip() == "None", res.stdout + res.stderr


def test_k_beyond_the_catalogue_keeps_every_neighbour():
    # K of 10**7 / 10**9 / 2*10**6 on 5k items held 2K entries per item up front
    run(
        MEMORY_PRELUDE
        + textwrap.dedent(
            """
    X = synthetic(n_users=2000, n_items=5000, random_state=0).user_items
    full = tacitrec.CosineRecommender(K=5000, num_threads=2).fit(X, show_progress=False)
    for K in (10**7, 10**9):
        m = tacitrec.CosineRecommender(K=K, num_threads=2).fit(X, show_progress=False)
        assert (m.similarity != full.similarity).nnz == 0
    tacitrec.BM25Recommender(K=2 * 10**6, num_threads=2).fit(X, show_progress=False)
    """
        ),
        memory_limit=3 * 2**30,
        timeout=120,
    )


def _cgroup_tree(tmp_path, proc_lines, files):
    """A cgroup mount under tmp_path/cg: ``files`` maps paths in it to their text; the process's
    /proc/self/cgroup reads ``proc_lines``."""
    root = tmp_path / "cg"
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    root.mkdir(exist_ok=True)
    proc = tmp_path / "proc_cgroup"
    proc.write_text("".join(line + "\n" for line in proc_lines))
    return str(root), str(proc)


def test_cgroup_v2_limit_less_unreclaimable_usage_least_over_ancestors(tmp_path):
    from tacitrec._validation import cgroup_available

    stat = "anon 5\nfile 300\ninactive_file 100000000\nactive_file 7\n"
    root, proc = _cgroup_tree(
        tmp_path,
        ["0::/job/step"],
        {
            # the job: 1 GB, 600 MB used of which 100 MB inactive file cache -> 500 MB
            "job/memory.max": "1000000000\n",
            "job/memory.current": "600000000\n",
            "job/memory.stat": stat,
            # the process's own cgroup: no limit
            "job/step/memory.max": "max\n",
            "job/step/memory.current": "123\n",
        },
    )
    assert cgroup_available(root, proc) == 1_000_000_000 - (600_000_000 - 100_000_000)
    # a tighter limit on the process's own cgroup wins (no memory.stat: usage counts whole)
    (tmp_path / "cg/job/step/memory.max").write_text("300000000\n")
    (tmp_path / "cg/job/step/memory.current").write_text("250000000\n")
    assert cgroup_available(root, proc) == 50_000_000
    # usage above the limit grants nothing
    (tmp_path / "cg/job/step/memory.current").write_text("400000000\n")
    assert cgroup_available(root, proc) == 0


def test_cgroup_v1_and_unlimited_and_namespaced(tmp_path):
    from tacitrec._validation import cgroup_available

    unlimited = str((1 << 63) - 4096)
    root, proc = _cgroup_tree(
        tmp_path,
        ["9:name=systemd:/", "4:memory:/pods/p1", "1:cpu:/", "0::/"],
        {
            "memory/memory.limit_in_bytes": unlimited + "\n",
            "memory/memory.usage_in_bytes": "9\n",
            "memory/pods/p1/memory.limit_in_bytes": "2000000000\n",
            "memory/pods/p1/memory.usage_in_bytes": "700000000\n",
            # v1's hierarchical count is total_inactive_file, not inactive_file
            "memory/pods/p1/memory.stat": "inactive_file 1\ntotal_inactive_file 200000000\n",
        },
    )
    assert cgroup_available(root, proc) == 2_000_000_000 - 500_000_000
    # no limit anywhere
    (tmp_path / "cg/memory/pods/p1/memory.limit_in_bytes").write_text(unlimited)
    assert cgroup_available(root, proc) is None
    # a cgroup namespace: the path names a folder the mount does not show; its root is ours
    root, proc = _cgroup_tree(
        tmp_path / "ns",
        ["0::/../../outside"],
        {"memory.max": "4096\n", "memory.current": "1024\n"},
    )
    assert cgroup_available(root, proc) == 3072
    # not Linux, or no cgroups: nothing to say
    assert cgroup_available(str(tmp_path / "none"), str(tmp_path / "no_such_file")) is None


def test_fits_check_the_memory_cgroup_limit(tmp_path):
    """A real memory cgroup with a 3 GB limit, on a machine with more: the fit that needs more
    than the limit raises MemoryError (before, the check read only the machine's memory and
    Linux killed the process). Needs a writable cgroup v1 or v2 memory controller (root)."""
    import os

    from tacitrec._validation import available_memory

    limit = 3 * 10**9
    if available_memory() is None or available_memory() < limit + 10**9:
        pytest.skip("the machine has too little memory to tell a cgroup limit from its own")
    if not os.path.exists("/proc/self/cgroup"):
        pytest.skip("no cgroups (not Linux)")
    here = None
    for line in open("/proc/self/cgroup").read().splitlines():
        hierarchy, controllers, path = line.split(":", 2)
        for mount, limit_file in (
            ("/sys/fs/cgroup/memory", "memory.limit_in_bytes")
            if "memory" in controllers.split(",")
            else (None, None),
            ("/sys/fs/cgroup", "memory.max") if hierarchy == "0" else (None, None),
        ):
            if mount is None:
                continue
            folder = os.path.join(mount, path.lstrip("/"), f"tacitrec-test-{os.getpid()}")
            try:
                os.mkdir(folder)
            except OSError:
                continue
            try:
                with open(os.path.join(folder, limit_file), "w") as f:
                    f.write(str(limit))
                here = folder
                break
            except OSError:
                os.rmdir(folder)
        if here:
            break
    if here is None:
        pytest.skip("no writable memory cgroup")
    try:
        code = textwrap.dedent(
            f"""
            import os
            with open({os.path.join(here, "cgroup.procs")!r}, "w") as f:
                f.write(str(os.getpid()))
            import scipy.sparse as sp
            import tacitrec
            from tacitrec._validation import available_memory
            assert available_memory() <= {limit}, available_memory()
            X = sp.random(200_000, 1_000, density=0.001, format="csr", dtype="float32")
            try:
                tacitrec.AlternatingLeastSquares(factors=4000).fit(X, show_progress=False)
            except MemoryError as e:
                assert "factors" in str(e), str(e)
                print("MemoryError")
            """
        )
        res = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
        )
        assert res.returncode == 0, res.stderr[-2000:]
        assert res.stdout.strip() == "MemoryError"
    finally:
        os.rmdir(here)

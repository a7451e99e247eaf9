import numpy as np
import pytest
import scipy.sparse as sp


def random_user_items(n_users=60, n_items=40, density=0.15, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    X = sp.random(
        n_users,
        n_items,
        density=density,
        format="csr",
        random_state=rng,
        data_rvs=lambda n: rng.integers(1, 5, n),
    ).astype(dtype)
    X.sort_indices()
    return X


def unpickled_over_shared_buffers(model):
    """``(copy, corrupt)``: ``model`` unpickled from pickle protocol 5 out-of-band buffers, whose
    arrays are the caller's buffers (as Ray's object store hands them over), and
    ``corrupt(array)``, which sets every int32 of the buffer holding ``array`` to 10^6 (indices
    out of range) through the caller's side."""
    import pickle

    buffers = []
    data = pickle.dumps(model, protocol=5, buffer_callback=buffers.append)
    raw = [bytearray(b.raw()) for b in buffers]

    def corrupt(array):
        view = next(r for r in raw if len(r) == array.nbytes and bytes(r) == array.tobytes())
        np.frombuffer(view, dtype=np.int32)[:] = 10**6

    return pickle.loads(data, buffers=raw), corrupt


def reference_topk(scores, N, excluded=(), candidates=None):
    """Best N (id, score) of a dense score row: score desc, id asc, skipping excluded ids and
    anything outside candidates."""
    allowed = [
        j
        for j in range(len(scores))
        if j not in set(excluded) and (candidates is None or j in set(candidates))
    ]
    allowed.sort(key=lambda j: (-scores[j], j))
    return allowed[:N]


@pytest.fixture
def user_items():
    return random_user_items()


@pytest.fixture(scope="session")
def ray_session():
    """The one local Ray of the test session (tests/python/test_distributed_ray*.py): 2 CPUs, a
    100 MB object store, no dashboard, every process bound to the loopback address (the test
    modules set RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 before importing ray)."""
    ray = pytest.importorskip("ray")
    if ray.is_initialized():  # pragma: no cover - something else started one
        ray.shutdown()
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=100 * 2**20,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
        configure_logging=False,
    )
    try:
        # every Ray process listens on the loopback address only
        assert ray.util.get_node_ip_address() == "127.0.0.1"
        yield ray
    finally:
        ray.shutdown()

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

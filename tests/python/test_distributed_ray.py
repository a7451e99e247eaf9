"""tacitrec.distributed.ray on a real local Ray: 2 CPUs, a 100 MB object store, no dashboard,
every process bound to the loopback address; the shared checks of distributed_cases, and the
Ray-specific ones (users never split across blocks, either shuffle, zero-copy model arrays,
actor threads)."""

import os

# Ray on Linux resolves a node IP of 127.0.0.1 to the machine's routable address unless this is
# off; it must be in the environment before ray is imported (its constants are read then) and is
# inherited by the processes ray.init starts, so they all listen on 127.0.0.1 only.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

import numpy as np
import pandas as pd
import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

import sys

import distributed_cases
import tacitrec.distributed.ray as tray
from distributed_cases import *  # noqa: E402,F401,F403
from distributed_cases import (
    EMPTY_USER,
    N_USERS,
    X,
    assert_same,
    local_rows,
    model,
    rows,
)

# Every Ray call pays a shuffle in tasks and a fresh actor pool (5-12 s on 2 cores), so by
# default the shared checks that exercise engine-neutral code (_local) run on two model
# families and one metric case here, and the filter checks not at all (Dask and Spark run them
# all); TACITREC_ENGINE_TESTS=full runs every shared check on Ray too.
if os.environ.get("TACITREC_ENGINE_TESTS") != "full":

    @pytest.mark.parametrize("name", ["als", "lightfm", "approx"])
    def test_recommend_equals_local(engine, name):  # noqa: F811
        distributed_cases.test_recommend_equals_local(engine, name)

    @pytest.mark.parametrize("name", ["als"])
    def test_metrics_equal_local(engine, name):  # noqa: F811
        distributed_cases.test_metrics_equal_local(engine, name)

    del test_filters  # noqa: F821


class _Ray:
    """The shared checks' frames ask for a sort shuffle: Ray's default hash shuffle starts its
    aggregator actors afresh for every call (5-6 s of each pipeline on 2 cores, against 0.1 s
    for sorting these few rows), and the shared checks test what comes after the shuffle. The
    hash shuffle (Ray's default, what users get) is the one of test_users_never_split, where
    ids of different types must hash alike."""

    module = tray

    def frame(self, pdf, partitions):
        from ray.data.context import ShuffleStrategy

        chunks = np.array_split(np.arange(len(pdf)), partitions)
        ds = ray.data.from_pandas([pdf.iloc[c].reset_index(drop=True) for c in chunks])
        ds.context.shuffle_strategy = ShuffleStrategy.SORT_SHUFFLE_PULL_BASED
        return ds

    def collect(self, result):
        return result.to_pandas()


@pytest.fixture(scope="session")
def engine(ray_session):
    return _Ray()


def _scattered(pdf, blocks, types=None):
    """``pdf`` in ``blocks`` one-or-two-row blocks, each user's rows spread over many blocks;
    with ``types``, block ``k`` has the column types ``types[k % len(types)]``."""
    pdf = pdf.sample(frac=1.0, random_state=1).reset_index(drop=True)
    parts = [
        pdf.iloc[c].reset_index(drop=True) for c in np.array_split(np.arange(len(pdf)), blocks)
    ]
    if types is not None:
        parts = [p.astype(types[k % len(types)]) for k, p in enumerate(parts)]
    return parts


def test_users_never_split(engine):
    """Rows of each user spread over hundreds of tiny blocks come together in one batch: a user
    split across two batches would get two top lists and lose part of its liked-item filter.
    The blocks give the id columns different types (int64, float64, categorical: 3, 3.0 and a
    category 3 hash apart unless made one type before the shuffle), and the user without
    interactions comes in a block of its own whose item and weight columns are all null
    (Arrow type null)."""
    m = model("als")
    pdf = rows(X)
    types = [{"user": np.int64}, {"user": np.float64, "item": np.float64}, "category"]
    parts = _scattered(pdf[pdf.user != EMPTY_USER], len(pdf) // 2, types)
    cold = pd.DataFrame({"user": [EMPTY_USER], "item": [None], "weight": [None]})
    ds = ray.data.from_pandas(parts + [cold])
    strategy = ds.context.shuffle_strategy  # Ray's default, a keyed (hash) shuffle
    assert getattr(strategy, "value", strategy) in tray._KEYED_SHUFFLES
    got = tray.recommend(m, ds, N=5, num_blocks=7).to_pandas()
    assert_same(got, local_rows(m, X, np.arange(N_USERS)))


def test_sort_shuffle_fallback(engine):
    """A dataset whose context asks for a sort shuffle (no keyed repartition) is sorted by user
    instead, with the same result."""
    from ray.data.context import ShuffleStrategy

    m = model("bm25")
    ds = ray.data.from_pandas(_scattered(rows(X), 30))
    ds.context.shuffle_strategy = ShuffleStrategy.SORT_SHUFFLE_PULL_BASED
    got = tray.recommend(m, ds, N=5).to_pandas()
    assert_same(got, local_rows(m, X, np.arange(N_USERS)))
    # num_blocks partitions even from a single block (a sort alone makes as many blocks as it
    # is given: the whole input went to one actor), each user in one of them
    one = ray.data.from_pandas([rows(X)])
    one.context.shuffle_strategy = ShuffleStrategy.SORT_SHUFFLE_PULL_BASED
    parts = tray._by_user(tray._prepared(one, tray._shipped(m), "raise"), 5, 2)
    users = [set(b["user"]) for b in parts.iter_batches(batch_size=None, batch_format="pandas")]
    assert len(users) == 5 and all(users)
    assert sum(len(u) for u in users) == len(set.union(*users)) == N_USERS


# the workers cannot import this test module: what it sends them (_Probe) goes by value
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


class _Probe:
    """What an actor sees of the shipped model: array flags and its kernel threads."""

    def __init__(self, shipped):
        self.model = tray._model_of(shipped)
        self.threads = tray._assigned_threads()

    def __call__(self, batch):
        f = self.model.item_factors
        return pd.DataFrame(
            {
                "writeable": [f.flags.writeable],
                "owndata": [f.flags.owndata],
                "threads": [self.threads],
                "pid": [os.getpid()],
            }
        )


def test_actors_share_the_model_arrays(engine):
    """Each actor maps the model's arrays from the object store: read-only views, no copy; its
    kernels use the CPUs Ray gave it (1 here)."""
    m = model("als")
    shipped = tray._shipped(m)
    out = (
        ray.data.range(2, override_num_blocks=2)
        .map_batches(
            _Probe,
            batch_size=None,
            fn_constructor_args=(shipped,),
            compute=tray._actors(1),
            num_cpus=1,
            batch_format="pandas",
        )
        .to_pandas()
    )
    assert not out["writeable"].any() and not out["owndata"].any()
    assert set(out["threads"]) == {1}
    # the Scorer of an actor keeps those same arrays (a shallow copy of the model)
    from tacitrec.distributed import _local

    got = ray.get(shipped[0])
    scorer = _local.Scorer(got, num_threads=1)
    assert np.shares_memory(scorer.model.item_factors, got.item_factors)
    assert scorer.model.item_factors.flags.writeable is False
    assert np.array_equal(scorer.model.item_factors, m.item_factors)


def test_pool_sizing(engine):
    """1 CPU per actor and as many actors as the cluster's CPUs by default; wider actors, fewer
    of them."""
    assert tray._pool(None, 1) == (2, 1.0)
    assert tray._pool(None, 2) == (1, 2.0)
    assert tray._pool(3, 0.5) == (3, 0.5)
    with pytest.raises(ValueError, match="num_cpus_per_worker"):
        tray._pool(None, 0)
    with pytest.raises(ValueError, match="concurrency"):
        tray._pool(0, 1)
    with pytest.raises(ValueError, match="num_blocks"):
        tray.recommend(model("als"), engine.frame(rows(X, [1]), 1), num_blocks=0)
    # more CPUs per worker than a node has: no worker could start, and Ray waited forever
    too_many = r"num_cpus_per_worker=4 is more CPUs than any node .* has \(the cluster has 2 CPUs"
    with pytest.raises(ValueError, match=too_many):
        tray._pool(None, 4)
    with pytest.raises(ValueError, match=too_many):
        tray._pool(1, 4)
    with pytest.raises(ValueError, match=too_many):
        tray.recommend(model("als"), engine.frame(rows(X, [1]), 1), num_cpus_per_worker=4)
    with pytest.raises(ValueError, match=too_many):
        tray.ranking_metrics_at_k(
            model("als"),
            engine.frame(rows(X, [1]), 1),
            engine.frame(rows(X, [1]), 1),
            num_cpus_per_worker=4,
        )
    from tacitrec import AlternatingLeastSquares

    with pytest.raises(ValueError, match=too_many):
        tray.fit(AlternatingLeastSquares(), engine.frame(rows(X, [1]), 1), num_cpus_per_worker=4)


def test_not_a_dataset(engine):
    with pytest.raises(TypeError, match="interactions"):
        tray.recommend(model("als"), rows(X))
    with pytest.raises(ValueError, match="columns user and item"):
        tray.recommend(model("als"), ray.data.from_pandas(rows(X).rename(columns={"item": "i"})))

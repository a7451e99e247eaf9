"""tacitrec on Ray: recommend and evaluate from Ray Datasets of interaction rows, and train ALS
across Ray workers (:func:`fit`).

The rows are hash-partitioned by user (``Dataset.repartition(num_blocks, keys=["user"])``, or a
sort by user where the dataset's ``DataContext.shuffle_strategy`` cannot partition by key), so
every block holds all the rows of its users, and each block is one batch of ``map_batches``
(``batch_size=None``, ``batch_format="pyarrow"``) scored by the local kernels in an actor of a
fixed pool. A model object goes to the object store once (``ray.put``) and every actor on a node
maps the same arrays, read-only and zero-copy (pickle protocol 5); a model directory path is
opened memory-mapped once per actor process instead (one copy per machine in the page cache).

The shuffle runs when ``recommend`` is called (it is materialized in the object store, which
spills to disk when it is full): a fixed actor pool holds its CPUs from the start, and on a
cluster it fills it would starve a shuffle streaming into it. On the way into the shuffle each
block's ``user`` and ``item`` columns are cast to the model's id types (int64 indices for a
model without ids; a categorical column decoded), so that a user's rows hash alike whatever
block or type they come in (the user 3 of an int64 block and 3.0 of a float64 one are one
user); ids that cannot be the model's raise ValueError naming the column, as the local call
does; weights are checked, and with ``unknown="raise"`` the ids too, so these raise from
``recommend`` itself. The scoring is lazy: the returned Dataset runs when it is consumed
(``write_parquet``, iteration).

Sizing: each actor asks for ``num_cpus_per_worker`` CPUs (1 by default; more than the
largest node has is a ValueError, as no actor could ever start) and its kernels run with as
many threads as the CPUs Ray assigned to it; the pool has ``concurrency`` actors (by default as
many as the cluster's CPUs allow, ``CPU // num_cpus_per_worker``). Fewer, wider
actors (``num_cpus_per_worker=4``) score larger batches with more threads each. ``num_blocks``
(default 4 per actor) is the number of user partitions of the shuffle: each batch holds the
rows of about ``users / num_blocks`` users, so raise it for large inputs (a few hundred thousand
to a million rows per block is a good size).

Example, on a local Ray bound to the loopback address (Ray on Linux resolves a node IP of
127.0.0.1 to the machine's routable address unless ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` is in
the environment before ``import ray``; the processes it starts inherit it)::

    import os
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    import ray
    from tacitrec.distributed import ray as tray

    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1")
    rows = ray.data.from_pandas(interactions_df)   # columns user, item[, weight]
    top = tray.recommend(model, rows, N=10)       # a Ray Dataset: user, item, rank, score
    top.write_parquet("/tmp/recommendations")

See :mod:`tacitrec.distributed` for the arguments. Needs ``pip install "tacitrec[ray]"``.
"""

from __future__ import annotations


import numpy as np

from .._validation import check_count
from . import _als_fit, _local, require

#: ``DataContext.shuffle_strategy`` values that can partition a dataset by key
_KEYED_SHUFFLES = ("hash_shuffle", "shuffle_v2")
#: default user partitions per actor of the pool: enough to even out the actors' load
_BLOCKS_PER_ACTOR = 4


def _ray():
    ray = require("ray", "ray")
    require("ray.data", "ray")
    return ray


def _assigned_threads() -> int:
    """The CPUs Ray assigned to this actor (at least 1 thread)."""
    import ray

    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
    return max(1, int(cpus))


def _model_of(shipped):
    """The model an actor serves: the object-store value (zero-copy, read-only arrays), or the
    directory path (opened by the Scorer, memory-mapped once per process)."""
    if isinstance(shipped, list):  # [ObjectRef], kept nested so Ray hands the ref over as is
        import ray

        return ray.get(shipped[0])
    return shipped


class _Recommend:
    """One actor of the pool: a Scorer built once, called on each block of users."""

    def __init__(self, shipped, options):
        self.scorer = _local.Scorer(_model_of(shipped), num_threads=_assigned_threads(), **options)

    def __call__(self, batch):
        return self.scorer.recommend(batch)


class _MetricSums:
    """One actor of the pool: per-block metric sums, one row of ``users`` and each metric."""

    def __init__(self, shipped, K, unknown):
        self.scorer = _local.Scorer(
            _model_of(shipped), unknown=unknown, num_threads=_assigned_threads()
        )
        self.K = K

    def __call__(self, batch):
        pa = _local.pyarrow()
        sums = self.scorer.metric_sums(batch, self.K)
        return pa.table(
            {name: pa.array([float(v)], pa.float64()) for name, v in zip(_sum_columns(), sums)}
        )


def _sum_columns():
    from .. import _core

    return ["users"] + list(_core.METRIC_NAMES)


def _check_dataset(ds, name: str):
    ray = _ray()
    if not isinstance(ds, ray.data.Dataset):
        raise TypeError(f"{name} must be a ray.data.Dataset, got {type(ds).__name__}")
    names = ds.columns()
    if names is None:  # pragma: no cover - a dataset whose schema Ray cannot tell cheaply
        names = ds.schema().names
    missing = {"user", "item"} - set(names)
    if missing:
        raise ValueError(
            f"{name} needs the columns user and item (and optionally weight); "
            f"missing {sorted(missing)}"
        )
    return names


def _prepare(batch, shipped, unknown: str, mark=None):
    """A block of rows ready for the shuffle by user: its columns in the types of
    :meth:`_local.Scorer.canonical` (so that a user's rows hash alike whatever the block, side
    or id type they came in: 3 and 3.0 are one user), marked by ``mark`` (metrics), and
    checked (ValueError naming them: ids of another type, null weights on rows with an item,
    and with ``unknown="raise"`` ids the model does not know)."""
    scorer = _local.Scorer(_model_of(shipped), unknown=unknown)
    table = scorer.canonical(batch)
    if mark is not None:
        table = mark(table)
    scorer.check_ids(table)
    return table


def _prepared(ds, shipped, unknown: str, mark=None):
    """``ds`` prepared for the shuffle by user (:func:`_prepare`) by tasks on the way into
    it, so a bad id or weight raises from ``recommend`` itself, never inside an actor (Ray Data
    keeps a failed pool's actors, and their CPUs, for as long as the exception is
    referenced)."""
    return ds.map_batches(
        _prepare,
        batch_size=None,
        batch_format="pyarrow",
        zero_copy_batch=True,
        fn_args=(shipped, unknown, mark),
    )


def _by_user(ds, num_blocks, pool_size: int):
    """``ds`` (prepared) in blocks that each hold all the rows of their users, materialized:
    the shuffle runs to its end before the actor pool starts (a fixed pool holding the
    cluster's CPUs from the start would starve the shuffle's tasks, and Ray Data would wait
    forever)."""
    if num_blocks is None:
        num_blocks = _BLOCKS_PER_ACTOR * pool_size
    num_blocks = check_count(num_blocks, "num_blocks")
    strategy = getattr(ds.context.shuffle_strategy, "value", ds.context.shuffle_strategy)
    if strategy in _KEYED_SHUFFLES:
        return ds.repartition(num_blocks, keys=["user"]).materialize()
    # a sort shuffle range-partitions by user: equal users land in one output block. It makes
    # as many blocks as it is given (one block in, one batch for one actor), hence the
    # repartition first (blocks split or merged, no shuffle)
    return ds.repartition(num_blocks).sort("user").materialize()


def _pool(concurrency, num_cpus_per_worker):
    """``(concurrency, num_cpus)`` of the actor pool: by default 1 CPU per actor and as many
    actors as the cluster's CPUs."""
    ray = _ray()
    try:
        cpus = float(num_cpus_per_worker)
    except (TypeError, ValueError):
        raise TypeError(
            f"num_cpus_per_worker must be a number, got {type(num_cpus_per_worker).__name__}"
        ) from None
    if not cpus > 0:
        raise ValueError(f"num_cpus_per_worker must be positive, got {num_cpus_per_worker}")
    total = float(ray.cluster_resources().get("CPU", 0.0))
    largest = max(
        (float(n.get("Resources", {}).get("CPU", 0.0)) for n in ray.nodes() if n.get("Alive")),
        default=0.0,
    )
    # no node could ever start such a worker: Ray would wait forever. A cluster with no CPUs
    # yet (an autoscaling one whose workers are still to start) is left to Ray to scale.
    if 0 < largest < cpus:
        raise ValueError(
            f"num_cpus_per_worker={num_cpus_per_worker} is more CPUs than any node of the Ray "
            f"cluster has (the cluster has {total:g} CPUs, its largest node {largest:g}): "
            "pass at most that many"
        )
    if concurrency is None:
        concurrency = max(1, int(total // cpus))
    else:
        concurrency = check_count(concurrency, "concurrency")
    return concurrency, cpus


def _actors(size: int):
    from ray.data import ActorPoolStrategy

    return ActorPoolStrategy(size=size)


def _shipped(model):
    """What the actors receive: the path, or the model put in the object store once."""
    if isinstance(model, str):
        return model
    return [_ray().put(model)]


def _columns(ds, names, test: bool = False):
    keep = ["user", "item"] + (["weight"] if "weight" in names and not test else [])
    return ds.select_columns(keep) if list(names) != keep else ds


def recommend(
    model,
    interactions,
    N: int = 10,
    filter_already_liked_items: bool = True,
    filter_items=None,
    items=None,
    *,
    unknown: str = "raise",
    user_features=None,
    item_features=None,
    num_cpus_per_worker: float = 1,
    concurrency=None,
    num_blocks=None,
):
    """The top ``N`` of every user in the Ray Dataset ``interactions``, as a Ray Dataset of
    ``user, item, rank, score`` (lazy: iterate it, ``materialize`` it or ``write_parquet``).

    ``num_cpus_per_worker``: CPUs (and kernel threads) of each actor, 1 by default;
    ``concurrency``: actors in the pool, by default the cluster's CPUs over
    ``num_cpus_per_worker``; ``num_blocks``: user partitions of the shuffle."""
    names = _check_dataset(interactions, "interactions")
    model = _local.serving_model(model, user_features, item_features)
    options = dict(
        N=N,
        filter_already_liked_items=filter_already_liked_items,
        filter_items=filter_items,
        items=items,
        unknown=unknown,
    )
    _local.Scorer(model, **options)  # options checked here, before any engine work
    size, cpus = _pool(concurrency, num_cpus_per_worker)
    shipped = _shipped(model)
    rows = _by_user(_prepared(_columns(interactions, names), shipped, unknown), num_blocks, size)
    return rows.map_batches(
        _Recommend,
        batch_size=None,
        batch_format="pyarrow",
        zero_copy_batch=True,
        fn_constructor_args=(shipped, options),
        compute=_actors(size),
        num_cpus=cpus,
    )


def ranking_metrics_at_k(
    model,
    train,
    test,
    K: int = 10,
    *,
    unknown: str = "raise",
    user_features=None,
    item_features=None,
    num_cpus_per_worker: float = 1,
    concurrency=None,
    num_blocks=None,
):
    """:func:`tacitrec.evaluation.ranking_metrics_at_k` of ``model`` on the Ray Datasets
    ``train`` and ``test`` (rows of users and items), merged from per-block sums. The sizing
    keywords are those of :func:`recommend`."""
    from ..evaluation import metrics_from_sums

    pa = _local.pyarrow()
    train_names = _check_dataset(train, "train")
    test_names = _check_dataset(test, "test")
    model = _local.serving_model(model, user_features, item_features)
    _local.Scorer(model, unknown=unknown)  # options checked before any work
    check_count(K, "K")
    size, cpus = _pool(concurrency, num_cpus_per_worker)

    weighted = "weight" in train_names

    def marker(is_test: bool):
        """user, item, (weight,) test marker: the same columns on both sides (the types are
        made the same by :func:`_prepare`, before the union)."""

        def mark(t):
            if weighted:
                weight = pa.array(np.ones(len(t))) if is_test else t.column("weight")
                t = t.select(["user", "item"]).append_column("weight", weight)
            return t.append_column(_local.TEST_COLUMN, pa.array(np.full(len(t), is_test)))

        return mark

    shipped = _shipped(model)
    rows = _prepared(_columns(train, train_names), shipped, unknown, marker(False)).union(
        _prepared(_columns(test, test_names, test=True), shipped, unknown, marker(True))
    )
    sums = _by_user(rows, num_blocks, size).map_batches(
        _MetricSums,
        batch_size=None,
        batch_format="pyarrow",
        zero_copy_batch=True,
        fn_constructor_args=(shipped, K, unknown),
        compute=_actors(size),
        num_cpus=cpus,
    )
    total = np.zeros(len(_sum_columns()))
    for block in sums.iter_batches(batch_size=None, batch_format="pyarrow"):
        total += np.array([np.sum(block.column(c).to_numpy()) for c in _sum_columns()])
    return metrics_from_sums(total)


# ---- ALS across workers --------------------------------------------------------------------------
class _RayEngine(_als_fit.Engine):
    """Ray tasks for :func:`._als_fit.fit_blocks`: small tasks take no CPU, block solves
    ``cpus``; every task retried ``max_retries`` times when its worker dies."""

    name = "Ray"

    def __init__(self, max_retries: int, cpus: float):
        ray = _ray()
        self.ray, self.retries, self.cpus = ray, max_retries, cpus
        self.threads = max(1, int(cpus))
        self.nodes = max(1, len([n for n in ray.nodes() if n.get("Alive")]))
        self._remote: dict = {}

    def submit(self, fn, *args, returns: int = 1, heavy: bool = False):
        remote = self._remote.get(fn)
        if remote is None:
            remote = self._remote[fn] = self.ray.remote(fn)
        refs = remote.options(
            num_returns=returns, num_cpus=self.cpus if heavy else 0, max_retries=self.retries
        ).remote(*args)
        return refs if returns > 1 else [refs]

    def get(self, handles):
        return self.ray.get(list(handles))

    def put(self, value):
        return self.ray.put(value)


def fit(
    model,
    interactions,
    user_col: str = "user",
    item_col: str = "item",
    weight_col=None,
    num_blocks=None,
    *,
    num_cpus_per_worker: float = 1,
    ship: str = "auto",
    max_retries: int = 3,
    show_progress: bool = True,
    callback=None,
):
    """Fits the unfitted :class:`~tacitrec.AlternatingLeastSquares` ``model`` on the Ray Dataset
    ``interactions`` (one row per interaction: ``user_col``, ``item_col`` and, when
    ``weight_col`` is given, its weight; 1 otherwise; repeated pairs are summed) across Ray
    workers, and returns it fitted, with the original ids set (``model.user_ids_``,
    ``model.item_ids_``, numbered in sorted order as :func:`tacitrec.io.read_interactions`
    numbers them).

    The factors equal those of a local ``model.fit`` of the same rows from the same
    ``random_state`` (to float rounding: the Gram matrices are summed in float64 in both), for
    any number of blocks and workers: every row is solved by the same Rust kernel on the same
    system. Users and items are split into ``num_blocks`` contiguous row blocks each (an int,
    or ``(user_blocks, item_blocks)``; default: one per worker, the cluster's CPUs over
    ``num_cpus_per_worker``) of about equal work (interactions, plus ``factors / 4`` per row),
    held in Ray's object store with their interactions. Each
    half-iteration sums the fixed side's per-block Gram matrices by a tree of tasks, then solves
    each block in a task (``num_cpus_per_worker`` CPUs, as many kernel threads) that receives
    either only the fixed rows its interactions touch (gathered from their blocks by small
    tasks) or the whole fixed side (fetched once per node): ``ship="auto"`` takes the touched
    rows when a block's touched rows times the blocks per node are fewer than the fixed side's
    rows; ``"touched"`` / ``"whole"`` force one. The progress bar says which each side uses;
    ``model.fit_info_`` holds the blocks, their sizes and the bytes shipped per iteration.

    Faults: every task reads only object-store values of the last completed half-iteration, and
    Ray retries a task whose worker died (``max_retries`` times; objects lost with a node are
    rebuilt from their lineage), so a lost worker costs its block's task, not the fit.

    Supported: solvers "cg" and "cholesky", ``alpha``, ``unobserved_weight``,
    ``regularization_exponent`` (the count-scaled regularisation), ``init_std``. Not supported
    (ValueError): ``solver="ials++"`` and ``calculate_training_loss=True``. ``callback(iteration,
    elapsed_seconds, None)`` is called after every iteration, as the local fit's.

    Limits: the initial factors are drawn on the driver block by block (the stream a local fit
    draws) and the fitted factors are gathered there (``(users + items) x factors`` float32);
    a solving task holds its block's interactions (~12 bytes each) and factors, the fixed rows
    it receives (all of them, ``rows x factors x 4`` bytes, in "whole" mode) and an
    ``factors x factors`` float64 Gram matrix; the Cholesky solver holds a few
    ``factors x factors`` systems per thread. Factor counts up to a few hundred are the
    intended range (1024 works; cost per interaction grows with ``factors^2``).
    """
    _ray()
    _als_fit.check_model(model)
    if not isinstance(interactions, _ray().data.Dataset):
        raise TypeError(
            f"interactions must be a ray.data.Dataset, got {type(interactions).__name__}"
        )
    names = interactions.columns()
    if names is None:  # pragma: no cover - a dataset whose schema Ray cannot tell cheaply
        names = interactions.schema().names
    _als_fit.check_columns(names, "interactions", user_col, item_col, weight_col)
    max_retries = _als_fit.check_options(ship, max_retries)
    slots, cpus = _pool(None, num_cpus_per_worker)
    blocks = _als_fit.num_blocks(num_blocks, slots)
    keep = [user_col, item_col] + ([weight_col] if weight_col is not None else [])
    rows = interactions.select_columns(keep) if list(names) != keep else interactions
    return _als_fit.fit_blocks(
        model,
        _RayEngine(max_retries, cpus),
        rows.to_arrow_refs(),
        user_col,
        item_col,
        weight_col,
        blocks,
        ship,
        show_progress,
        callback,
    )

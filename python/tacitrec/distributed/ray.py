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
cluster it fills it would starve a shuffle streaming into it. With ``unknown="raise"`` the ids
are checked on the way into the shuffle, so an unknown id raises from ``recommend`` itself. The
scoring is lazy: the returned Dataset runs when it is consumed (``write_parquet``, iteration).

Sizing: each actor asks for ``num_cpus_per_worker`` CPUs (1 by default) and its kernels run
with as many threads as the CPUs Ray assigned to it; the pool has ``concurrency`` actors (by
default as many as the cluster's CPUs allow, ``CPU // num_cpus_per_worker``). Fewer, wider
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

from typing import Any, Dict

import numpy as np

from .._validation import check_count
from . import _local, require

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


def _check_ids(batch, shipped):
    """The rows as they are, once their user and item ids are known to the model (ValueError
    otherwise, naming them)."""
    _local.Scorer(_model_of(shipped), unknown="raise").check_ids(batch)
    return batch


def _by_user(ds, num_blocks, pool_size: int, shipped, unknown: str):
    """``ds`` in blocks that each hold all the rows of their users, materialized: the shuffle
    runs to its end before the actor pool starts (a fixed pool holding the cluster's CPUs from
    the start would starve the shuffle's tasks, and Ray Data would wait forever).

    With ``unknown="raise"`` the ids are checked by tasks on the way into the shuffle, so an
    unknown id raises here, from ``recommend`` itself, and never inside an actor (Ray Data keeps
    a failed pool's actors, and their CPUs, for as long as the exception is referenced)."""
    if num_blocks is None:
        num_blocks = _BLOCKS_PER_ACTOR * pool_size
    num_blocks = check_count(num_blocks, "num_blocks")
    if unknown == "raise":
        ds = ds.map_batches(
            _check_ids,
            batch_size=None,
            batch_format="pyarrow",
            zero_copy_batch=True,
            fn_args=(shipped,),
        )
    strategy = getattr(ds.context.shuffle_strategy, "value", ds.context.shuffle_strategy)
    if strategy in _KEYED_SHUFFLES:
        return ds.repartition(num_blocks, keys=["user"]).materialize()
    # a sort shuffle range-partitions by user: equal users land in one output block
    return ds.sort("user").materialize()


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
    if concurrency is None:
        total = ray.cluster_resources().get("CPU", 1.0)
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


def _columns(ds, names, name: str, test: bool = False):
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
    rows = _by_user(
        _columns(interactions, names, "interactions"), num_blocks, size, shipped, unknown
    )
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

    def marked(ds, names, name, is_test):
        """user, item, (weight,) test marker: the same columns and types on both sides."""
        ds = _columns(ds, names, name, is_test)

        def mark(t):
            if weighted:
                weight = (
                    pa.array(np.ones(len(t))) if is_test else t.column("weight").cast(pa.float64())
                )
                t = t.select(["user", "item"]).append_column("weight", weight)
            return t.append_column(_local.TEST_COLUMN, pa.array(np.full(len(t), is_test)))

        return ds.map_batches(mark, batch_format="pyarrow", batch_size=None, zero_copy_batch=True)

    rows = marked(train, train_names, "train", False).union(marked(test, test_names, "test", True))
    shipped = _shipped(model)
    sums = _by_user(rows, num_blocks, size, shipped, unknown).map_batches(
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
#: ``ship`` values of :func:`fit`
_SHIP = ("auto", "touched", "whole")


def _als_tasks(max_retries: int, cpus: float):
    """The Ray tasks of :func:`fit` (the functions of :mod:`._als`), retried on a lost worker."""
    ray = _ray()
    from . import _als

    opts = dict(max_retries=max_retries, num_cpus=cpus)
    small = dict(max_retries=max_retries, num_cpus=0)
    return {
        "counts": ray.remote(_als.counts).options(num_returns=2, **small),
        "gram": ray.remote(_als.gram).options(**small),
        "add": ray.remote(_als.add).options(**small),
        "take": ray.remote(_als.take).options(**small),
        "solve": ray.remote(_als.solve).options(num_returns=2, **opts),
        "split": ray.remote(_als.split),
        "build": ray.remote(_als.build),
        "small": small,
    }


def _tree_sum(tasks, refs):
    """The sum of the object-store values ``refs`` by a binary tree of ``add`` tasks."""
    refs = list(refs)
    while len(refs) > 1:
        pairs = [tasks["add"].remote(refs[k], refs[k + 1]) for k in range(0, len(refs) - 1, 2)]
        refs = pairs + ([refs[-1]] if len(refs) % 2 else [])
    return refs[0]


class _Side:
    """One side's blocks: ``bounds`` of its rows, per block the CSR ref, its stats, the take
    indices into each block of the other side, and the current factors' refs."""

    def __init__(self, name, bounds):
        self.name, self.bounds = name, bounds
        self.blocks, self.stats, self.takes, self.factors = [], [], [], []

    @property
    def n(self) -> int:
        return int(self.bounds[-1])


def _check_fit_model(model):
    from ..als import AlternatingLeastSquares

    if not isinstance(model, AlternatingLeastSquares):
        raise TypeError(
            "model must be an unfitted tacitrec AlternatingLeastSquares, got "
            f"{type(model).__name__}"
        )
    model._check_params()
    if model.user_factors is not None or model.item_factors is not None:
        raise ValueError(
            "model is already fitted: pass an unfitted AlternatingLeastSquares (the distributed "
            "fit starts from the initial factors of its random_state; sklearn.base.clone or a "
            "new model with the same parameters)"
        )
    if model._solver() == "ials++":
        raise ValueError(
            "solver='ials++' is not supported by the distributed fit (its epochs update both "
            "sides together); use solver='cg' or 'cholesky', or fit locally"
        )
    if model.calculate_training_loss:
        raise ValueError(
            "calculate_training_loss=True is not supported by the distributed fit (the loss "
            "needs every row's factors in one place); set it to False and compute the loss "
            "of the fitted model locally if needed"
        )


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
    ray = _ray()
    import time

    from tqdm.auto import tqdm

    from . import _als
    from .._validation import check_random_state
    from ..exceptions import ModelFitError

    _check_fit_model(model)
    names = _check_dataset_columns(interactions, "interactions", user_col, item_col, weight_col)
    if ship not in _SHIP:
        raise ValueError(f"ship must be one of {_SHIP}, got {ship!r}")
    max_retries = check_count(max_retries, "max_retries", minimum=0)
    slots, cpus = _pool(None, num_cpus_per_worker)
    user_blocks, item_blocks = _num_blocks(num_blocks, slots)
    tasks = _als_tasks(max_retries, cpus)
    threads = max(1, int(cpus))

    keep = [user_col, item_col] + ([weight_col] if weight_col is not None else [])
    parts = interactions.select_columns(keep).to_arrow_refs() if list(names) != keep else None
    if parts is None:
        parts = interactions.to_arrow_refs()
    # ids and their rows, counted per partition, merged (sorted) on the driver
    found = [tasks["counts"].remote(p, user_col, item_col) for p in parts]
    user_ids, user_counts = _als.merge_ids(ray.get([u for u, _ in found]), "user")
    item_ids, item_counts = _als.merge_ids(ray.get([i for _, i in found]), "item")
    f = int(model.factors)
    users = _Side("user", _als.bounds(_als.row_costs(user_counts, f), user_blocks))
    items = _Side("item", _als.bounds(_als.row_costs(item_counts, f), item_blocks))
    del user_counts, item_counts
    bu, bi = len(users.bounds) - 1, len(items.bounds) - 1
    uid_ref, iid_ref = ray.put(user_ids), ray.put(item_ids)
    pieces = [
        tasks["split"]
        .options(num_returns=bu + bi, **tasks["small"])
        .remote(p, user_col, item_col, weight_col, uid_ref, iid_ref, users.bounds, items.bounds)
        for p in parts
    ]
    pieces = [p if isinstance(p, list) else [p] for p in pieces]  # num_returns=1: one ref
    alpha = float(model.alpha)
    for side, fixed, offset in ((users, items, 0), (items, users, bu)):
        nb = len(side.bounds) - 1
        for b in range(nb):
            n_rows = int(side.bounds[b + 1] - side.bounds[b])
            out = (
                tasks["build"]
                .options(num_returns=2 + len(fixed.bounds) - 1, **tasks["small"])
                .remote(n_rows, fixed.n, fixed.bounds, alpha, *[p[offset + b] for p in pieces])
            )
            side.stats.append(out[0])
            side.blocks.append(out[1])
            side.takes.append(out[2:])
    del pieces
    for side in (users, items):
        side.stats = ray.get(side.stats)

    # the initial factors, drawn on the driver as the local fit draws them (users, then items)
    rng = check_random_state(model.random_state)
    for side in (users, items):
        for b in range(len(side.bounds) - 1):
            n_rows = int(side.bounds[b + 1] - side.bounds[b])
            side.factors.append(ray.put(_als.init_block(model, n_rows, rng)))

    nodes = max(1, len([n for n in ray.nodes() if n.get("Alive")]))
    params = model._solver_params(exact=False)
    info = _fit_info(users, items, ship, nodes, f)
    desc = (
        f"ALS on Ray ({bu} x {bi} blocks; users get {info['user']['mode']}, "
        f"items get {info['item']['mode']})"
    )
    model.fit_info_ = info

    def half(side, fixed):
        yty = _tree_sum(tasks, [tasks["gram"].remote(v) for v in fixed.factors])
        new, ok = [], []
        modes = info[side.name]["touched"]
        for b, (block, x) in enumerate(zip(side.blocks, side.factors)):
            if modes[b]:
                shipped = [tasks["take"].remote(v, t) for v, t in zip(fixed.factors, side.takes[b])]
            else:
                shipped = list(fixed.factors)
            x_ref, ok_ref = tasks["solve"].remote(
                block, x, yty, fixed.n, params, threads, modes[b], *shipped
            )
            new.append(x_ref)
            ok.append(ok_ref)
        side.factors = new
        return ok

    hint = (
        f"the confidences (values times alpha={model.alpha}) are probably too large for "
        f"float32, or regularization={model.regularization} too small; scale the data down "
        "(e.g. log1p or bm25_weight) or raise regularization"
    )
    with tqdm(total=int(model.iterations), disable=not show_progress, desc=desc) as bar:
        for it in range(int(model.iterations)):
            start = time.perf_counter()
            for side, fixed in ((users, items), (items, users)):
                if not all(ray.get(half(side, fixed))):
                    raise ModelFitError(
                        f"{side.name}_factors became NaN or infinite in iteration {it}: {hint}"
                    )
            bar.update(1)
            if callback is not None:
                callback(it, time.perf_counter() - start, None)

    model._user_factors = np.concatenate(ray.get(users.factors)).astype(np.float32, copy=False)
    model._item_factors = np.concatenate(ray.get(items.factors)).astype(np.float32, copy=False)
    model._normed.clear()
    model.set_ids(_ids_numpy(user_ids), _ids_numpy(item_ids))
    return model


def _ids_numpy(ids) -> np.ndarray:
    arr = ids.to_numpy(zero_copy_only=False)
    return arr.astype(str) if arr.dtype == object else arr


def _check_dataset_columns(ds, name, user_col, item_col, weight_col):
    ray = _ray()
    if not isinstance(ds, ray.data.Dataset):
        raise TypeError(f"{name} must be a ray.data.Dataset, got {type(ds).__name__}")
    names = ds.columns()
    if names is None:  # pragma: no cover - a dataset whose schema Ray cannot tell cheaply
        names = ds.schema().names
    for arg, col in (("user_col", user_col), ("item_col", item_col), ("weight_col", weight_col)):
        if col is None and arg == "weight_col":
            continue
        if not isinstance(col, str):
            raise TypeError(f"{arg} must be a column name, got {type(col).__name__}")
        if col not in names:
            raise ValueError(f"{arg}={col!r} is not a column of {name} (columns: {names})")
    if len({user_col, item_col, weight_col} - {None}) < 2 + (weight_col is not None):
        raise ValueError("user_col, item_col and weight_col must be different columns")
    return names


def _num_blocks(num_blocks, slots: int):
    """``(user_blocks, item_blocks)`` from ``num_blocks`` (None: one per worker slot)."""
    if num_blocks is None:
        return slots, slots
    if isinstance(num_blocks, (tuple, list)):
        if len(num_blocks) != 2:
            raise ValueError(
                f"num_blocks must be an int or (user_blocks, item_blocks), got {num_blocks!r}"
            )
        return check_count(num_blocks[0], "num_blocks"), check_count(num_blocks[1], "num_blocks")
    n = check_count(num_blocks, "num_blocks")
    return n, n


def _fit_info(users: _Side, items: _Side, ship: str, nodes: int, f: int) -> dict:
    """Per side: which blocks get only their touched fixed rows, the bytes a half-iteration
    ships (an upper bound: every task's inputs taken as coming from another node), and the
    blocks' sizes."""
    info: Dict[str, Any] = {}
    total = 0
    for side, fixed in ((users, items), (items, users)):
        nb = len(side.stats)
        per_node = max(1, -(-nb // nodes))
        if ship == "auto":
            touched = [s["touched"] * per_node < fixed.n for s in side.stats]
        else:
            touched = [ship == "touched"] * nb
        row = 4 * f
        factors = sum(s["touched"] * row if t else 0 for s, t in zip(side.stats, touched)) + (
            fixed.n * row * min(nodes, sum(1 for t in touched if not t))
        )
        grams = (2 * len(fixed.stats) - 1 + nb) * f * f * 8
        own = 2 * side.n * row  # each block's factors in, and out
        n_touched = sum(touched)
        mode = (
            "touched rows"
            if n_touched == nb
            else "the whole side"
            if n_touched == 0
            else f"touched rows in {n_touched} of {nb} blocks"
        )
        info[side.name] = {
            "blocks": nb,
            "rows": [s["rows"] for s in side.stats],
            "nnz": [s["nnz"] for s in side.stats],
            "touched_rows": [s["touched"] for s in side.stats],
            "touched": touched,
            "mode": mode,
            "bytes_factors": int(factors + own),
            "bytes_gram": int(grams),
        }
        total += int(factors + own + grams)
    info["bytes_per_iteration"] = total
    info["nodes"] = nodes
    return info

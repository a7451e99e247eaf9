"""tacitrec on Dask: recommend and evaluate from Dask DataFrames of interaction rows.

The rows are shuffled by user (``DataFrame.shuffle(on="user")``) so every partition holds all
the rows of its users, after their ``user`` and ``item`` columns were cast to the model's id
types partition by partition (int64 indices for a model without ids; a categorical column
decoded), so that a user hashes alike in every partition and in both frames of the metrics (ids
that cannot be the model's raise ValueError naming the column, as the local call does), and
each partition is scored by the local kernels in its worker, with as many threads as the worker
has (``nthreads``; tasks running at once share one pool of that size; all cores on the local
scheduler). A model object reaches each worker once, as one task result of the graph; a model
directory path is opened memory-mapped once per worker process (one copy per machine). See
:mod:`tacitrec.distributed` for the arguments. Needs ``pip install "tacitrec[dask]"``.
"""

from __future__ import annotations

import numpy as np

from . import _als_fit, _local, require


def _dd():
    require("distributed", "dask")
    return require("dask.dataframe", "dask")


def _worker_threads() -> int:
    """The worker's ``nthreads`` (the cores it was given); the machine's cores outside one."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return 0  # not on a distributed worker (the local scheduler): all cores
    state = getattr(worker, "state", worker)
    return int(getattr(state, "nthreads", 1))


def _to_arrow(frame):
    pa = _local.pyarrow()
    return pa.Table.from_pandas(frame, preserve_index=False)


def _canonical(frame, model):
    """A partition's rows in the types of :meth:`_local.Scorer.canonical` (the model's id
    types; ValueError naming a column that cannot hold them), as a pandas frame of Arrow-backed
    columns (ids keep their exact type, nulls included). Applied before the shuffle by user,
    so that every partition and both sides of the metrics hash a user alike."""
    import pandas as pd

    table = _local.Scorer(model).canonical(_to_arrow(frame))
    return table.to_pandas(types_mapper=pd.ArrowDtype)


def _recommend_partition(frame, model, options):
    scorer = _local.Scorer(model, num_threads=_worker_threads(), **options)
    return scorer.recommend(_to_arrow(frame)).to_pandas()


def _metrics_partition(frame, model, K, unknown):
    import pandas as pd

    scorer = _local.Scorer(model, unknown=unknown, num_threads=_worker_threads())
    sums = scorer.metric_sums(_to_arrow(frame), K)
    return pd.DataFrame([sums], columns=_sum_columns())


def _sum_columns():
    from .. import _core

    return ["users"] + list(_core.METRIC_NAMES)


def _shipped(model):
    """What the graph carries: the path, or the model as one (shared) task."""
    import dask

    return model if isinstance(model, str) else dask.delayed(model, pure=True)


def _columns(frame, name: str, test: bool = False):
    missing = {"user", "item"} - set(frame.columns)
    if missing:
        raise ValueError(
            f"{name} needs the columns user and item (and optionally weight); "
            f"missing {sorted(missing)}"
        )
    keep = ["user", "item"] + (["weight"] if "weight" in frame.columns and not test else [])
    return frame[keep]


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
):
    """The top ``N`` of every user in the Dask DataFrame ``interactions``, as a Dask DataFrame of
    ``user, item, rank, score`` (lazy: compute it or write it with ``to_parquet``)."""
    dd = _dd()
    if not isinstance(interactions, dd.DataFrame):
        raise TypeError(f"interactions must be a dask DataFrame, got {type(interactions).__name__}")
    model = _local.serving_model(model, user_features, item_features)
    options = dict(
        N=N,
        filter_already_liked_items=filter_already_liked_items,
        filter_items=filter_items,
        items=items,
        unknown=unknown,
    )
    frame = _columns(interactions, "interactions")
    shipped = _shipped(model)
    meta_rows = _canonical(frame._meta, model)  # the id types checked here, with the options
    meta = _local.Scorer(model, **options).recommend(_to_arrow(meta_rows)).to_pandas()
    rows = frame.map_partitions(_canonical, shipped, meta=meta_rows, align_dataframes=False)
    return rows.shuffle(on="user").map_partitions(
        _recommend_partition, shipped, options, meta=meta, align_dataframes=False
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
):
    """:func:`tacitrec.evaluation.ranking_metrics_at_k` of ``model`` on the Dask DataFrames
    ``train`` and ``test`` (rows of users and items), merged from per-partition sums."""
    from ..evaluation import metrics_from_sums

    dd = _dd()
    for name, frame in (("train", train), ("test", test)):
        if not isinstance(frame, dd.DataFrame):
            raise TypeError(f"{name} must be a dask DataFrame, got {type(frame).__name__}")
    model = _local.serving_model(model, user_features, item_features)
    _local.Scorer(model, unknown=unknown)  # options checked before any work
    shipped = _shipped(model)
    sides = []
    for frame, is_test in ((_columns(train, "train"), False), (_columns(test, "test", True), True)):
        # both sides in the model's id types before the shuffle: a user hashes alike in both
        meta = _canonical(frame._meta, model)
        frame = frame.map_partitions(_canonical, shipped, meta=meta, align_dataframes=False)
        sides.append(frame.assign(**{_local.TEST_COLUMN: is_test}))
    rows = dd.concat(sides)
    import pandas as pd

    meta = pd.DataFrame({c: pd.Series(dtype="float64") for c in _sum_columns()})
    sums = (
        rows.shuffle(on="user")
        .map_partitions(_metrics_partition, shipped, K, unknown, meta=meta, align_dataframes=False)
        .sum()
        .compute()
    )
    return metrics_from_sums(np.asarray(sums[_sum_columns()], dtype=np.float64))


# ---- ALS across workers --------------------------------------------------------------------------
def _identity(value):
    return value


class _DaskEngine(_als_fit.Engine):
    """Dask futures for :func:`._als_fit.fit_blocks`. Values from the driver (the ids, the
    initial factors) go in as tasks that return them, so the scheduler can recompute them when a
    worker holding them dies (scattered data could not be); every task is retried
    ``max_retries`` times on an exception, and the scheduler reruns tasks lost with a worker."""

    name = "Dask"

    def __init__(self, client, max_retries: int):
        from urllib.parse import urlparse

        self.client, self.retries = client, max_retries
        self.threads = _worker_threads  # called in the task: the worker's nthreads
        workers = client.scheduler_info().get("workers", {})
        self.nodes = max(1, len({urlparse(w).hostname for w in workers}))

    def submit(self, fn, *args, returns: int = 1, heavy: bool = False):
        import operator

        fut = self.client.submit(fn, *args, pure=False, retries=self.retries)
        if returns == 1:
            return [fut]
        return [
            self.client.submit(operator.getitem, fut, k, pure=False, retries=self.retries)
            for k in range(returns)
        ]

    def get(self, handles):
        return self.client.gather(list(handles))

    def put(self, value):
        return self.client.submit(_identity, value, pure=False)


def _partition_table(frame):
    return _to_arrow(frame)


def fit(
    model,
    interactions,
    user_col: str = "user",
    item_col: str = "item",
    weight_col=None,
    num_blocks=None,
    *,
    ship: str = "auto",
    max_retries: int = 3,
    show_progress: bool = True,
    callback=None,
):
    """Fits the unfitted :class:`~tacitrec.AlternatingLeastSquares` ``model`` on the Dask
    DataFrame ``interactions`` across the workers of the current Dask client, as
    :func:`tacitrec.distributed.ray.fit` does on Ray (the same schedule, the same result: the
    factors of a local ``model.fit`` of the same rows from the same ``random_state``). Each
    block solve runs with its worker's ``nthreads`` kernel threads; ``num_blocks`` defaults to
    the workers' threads in all.

    Dask differences: the ids and the initial factors are held by the scheduler (as the tasks
    that return them) until the fit ends, so a lost worker's blocks can be recomputed; the
    recovery from a killed worker is tested on Ray only."""
    dd = _dd()
    from distributed import get_client

    _als_fit.check_model(model)
    if not isinstance(interactions, dd.DataFrame):
        raise TypeError(f"interactions must be a dask DataFrame, got {type(interactions).__name__}")
    _als_fit.check_columns(interactions.columns, "interactions", user_col, item_col, weight_col)
    max_retries = _als_fit.check_options(ship, max_retries)
    try:
        client = get_client()
    except ValueError:
        raise ValueError(
            "no Dask client: start one first (distributed.Client(...)), fit runs on its workers"
        ) from None
    slots = max(1, sum(client.nthreads().values()))
    blocks = _als_fit.num_blocks(num_blocks, slots)
    keep = [user_col, item_col] + ([weight_col] if weight_col is not None else [])
    frames = client.compute(interactions[keep].to_delayed())
    parts = [client.submit(_partition_table, f, pure=False) for f in frames]
    return _als_fit.fit_blocks(
        model,
        _DaskEngine(client, max_retries),
        parts,
        user_col,
        item_col,
        weight_col,
        blocks,
        ship,
        show_progress,
        callback,
    )

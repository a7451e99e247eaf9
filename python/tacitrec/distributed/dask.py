"""tacitrec on Dask: recommend and evaluate from Dask DataFrames of interaction rows.

The rows are shuffled by user (``DataFrame.shuffle(on="user")``) so every partition holds all
the rows of its users, and each partition is scored by the local kernels in its worker, with as
many threads as the worker has (``nthreads``; tasks running at once share one pool of that
size). A model object reaches each worker once, as one task result of the graph; a model
directory path is opened memory-mapped once per worker process (one copy per machine). See
:mod:`tacitrec.distributed` for the arguments. Needs ``pip install "tacitrec[dask]"``.
"""

from __future__ import annotations

import numpy as np

from . import _local, require


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
    meta_rows = frame._meta
    meta = _local.Scorer(model, **options).recommend(_to_arrow(meta_rows)).to_pandas()
    return frame.shuffle(on="user").map_partitions(
        _recommend_partition, _shipped(model), options, meta=meta, align_dataframes=False
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
    rows = dd.concat(
        [
            _columns(train, "train").assign(**{_local.TEST_COLUMN: False}),
            _columns(test, "test", True).assign(**{_local.TEST_COLUMN: True}),
        ]
    )
    import pandas as pd

    meta = pd.DataFrame({c: pd.Series(dtype="float64") for c in _sum_columns()})
    sums = (
        rows.shuffle(on="user")
        .map_partitions(
            _metrics_partition, _shipped(model), K, unknown, meta=meta, align_dataframes=False
        )
        .sum()
        .compute()
    )
    return metrics_from_sums(np.asarray(sums[_sum_columns()], dtype=np.float64))

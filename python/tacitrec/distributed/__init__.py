"""Recommend and evaluate where the data lives: Ray, Dask and Spark.

One module per engine, each a thin adapter over the same local batched ``recommend`` and metric
kernels (:mod:`tacitrec.distributed._local`), each with the same two entry points:

* ``recommend(model, interactions, N=10, filter_already_liked_items=True, filter_items=None,
  items=None, *, unknown="raise", user_features=None, item_features=None)``: ``interactions``
  is an engine-native frame of rows ``user``, ``item`` and optionally ``weight`` (a user
  without interactions comes as a row with a null item, its weight null or not; a row with an
  item needs a weight when the column is there); returns a frame of the engine with columns
  ``user``, ``item``, ``rank`` (1 = best) and ``score``, holding the same rows a local call
  gives (padding left out);
* ``ranking_metrics_at_k(model, train, test, K=10, *, unknown="raise")``: ``train`` and
  ``test`` are such frames; returns the dict of :func:`tacitrec.evaluation.ranking_metrics_at_k`,
  computed as per-partition sums.

Ray and Dask also train :class:`~tacitrec.AlternatingLeastSquares` across their workers:
``fit(model, interactions, user_col="user", item_col="item", weight_col=None, num_blocks=None,
...)`` (see :func:`tacitrec.distributed.ray.fit`), with the factors of a local fit.

``model`` is a fitted model, an :class:`~tacitrec.approximate.ApproximateRecommender`
(``model.approximate()``: its HNSW index travels pickled with it), or the path of a directory
written by ``model.save_dir`` that every worker can read: each worker process then opens it
memory-mapped once, so the machines hold one copy each in their page cache. Ids are the
model's original ids when it has them (``model.set_ids``, the command line), integer indices
otherwise. Ids are read in the type of the model's ids, as the local call reads them (a
categorical column as its values; on Ray and Dask the ``user`` column of the result has that
type), and ids that cannot be of that type raise ValueError naming the column. Ids the model
does not know raise ValueError, or are left out with ``unknown="skip"``. Each worker's
kernels use the cores the engine gave it (Ray ``num_cpus``, the Dask worker's ``nthreads``,
Spark's ``spark.task.cpus``), never every core of the machine.

The engines are optional: ``pip install "tacitrec[ray]"``, ``"tacitrec[dask]"`` or
``"tacitrec[spark]"``; ``import tacitrec`` imports none of them.
"""

import importlib


def require(module: str, extra: str):
    """Imports ``module`` or raises ImportError naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(
            f"this needs {module.split('.')[0]}, which is not installed: "
            f'pip install "tacitrec[{extra}]"'
        ) from e

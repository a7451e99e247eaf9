"""Plots of evaluation results (needs matplotlib: ``pip install "tacitrec[plot]"``).

* :func:`metric_curves`: a ranking metric at several cut-offs K, one line per model;
* :func:`popularity_curves`: the long-tail picture: the cumulative share of training
  interactions and of recommendation slots taken by the items, most popular first;
* :func:`training_curves`: what a :class:`TrainingHistory` recorded from fit callbacks.

Each draws on ``ax`` (a new figure's axes by default) and returns the axes; nothing is shown or
saved (``ax.figure.savefig(path)``).
"""

from __future__ import annotations

import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from ._validation import as_csr, check_count


def _pyplot():
    try:
        import matplotlib

        if matplotlib.get_backend().lower() not in ("agg",) and not _has_display():
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError('plots need matplotlib: pip install "tacitrec[plot]"') from e
    return plt


def _has_display() -> bool:
    import os

    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) or os.name == "nt"


def _axes(ax):
    if ax is not None:
        return ax
    _, ax = _pyplot().subplots(figsize=(6.4, 4.0))
    return ax


def metric_curves(
    models: Dict[str, object],
    train,
    test,
    metric: str = "ndcg",
    Ks: Sequence[int] = (1, 3, 5, 10, 20, 50),
    ax=None,
    **features,
):
    """``metric`` at each K of ``Ks`` for every fitted model of ``models`` (name -> model),
    from :func:`tacitrec.evaluation.ranking_metrics_at_k` on ``train`` / ``test``."""
    from .evaluation import ranking_metrics_at_k

    Ks = [check_count(k, "Ks") for k in Ks]
    if not models:
        raise ValueError("models is empty: pass {name: fitted model}")
    ax = _axes(ax)
    for name, model in models.items():
        values = [
            ranking_metrics_at_k(model, train, test, K=k, show_progress=False, **features)[metric]
            for k in Ks
        ]
        ax.plot(Ks, values, marker="o", label=str(name))
    ax.set_xlabel("K")
    ax.set_ylabel(f"{metric}@K")
    ax.set_xscale("log")
    ax.set_xticks(Ks)
    ax.set_xticklabels([str(k) for k in Ks])
    ax.legend()
    ax.grid(True, alpha=0.3)
    return ax


def popularity_curves(models: Dict[str, Any], train, K: int = 10, ax=None, **features):
    """The long tail: items ordered by training popularity (most popular first) against the
    cumulative share of the training interactions and, per model, of its top-``K``
    recommendation slots (every user with an interaction, training items excluded). A model
    whose curve rises faster than the data's concentrates on the head."""
    K = check_count(K, "K")
    X = as_csr(train, "train")
    n_items = X.shape[1]
    had = np.bincount(X.indices, minlength=n_items).astype(np.float64)
    order = np.argsort(-had, kind="stable")
    share = np.arange(1, n_items + 1) / n_items
    ax = _axes(ax)
    ax.plot(
        share,
        np.cumsum(had[order]) / max(had.sum(), 1),
        color="black",
        linestyle="--",
        label="training interactions",
    )
    users = np.flatnonzero(np.diff(X.indptr))
    for name, model in models.items():
        counts = np.zeros(n_items)
        for start in range(0, len(users), 4096):
            batch = users[start : start + 4096]
            ids, _ = model.recommend(batch, X.take_rows(batch), N=K, **features)
            counts += np.bincount(ids[ids >= 0], minlength=n_items)
        ax.plot(share, np.cumsum(counts[order]) / max(counts.sum(), 1), label=str(name))
    ax.set_xlabel("share of items, most popular first")
    ax.set_ylabel("cumulative share")
    ax.legend()
    ax.grid(True, alpha=0.3)
    return ax


class TrainingHistory:
    """A fit callback that records each iteration: ``model.fit(X, callback=history)`` (ALS:
    the loss when ``calculate_training_loss``; BPR: its ``correct`` and ``skipped`` values);
    with ``validation=(train, test)`` it also scores ``metric`` at ``K`` after each iteration
    (slower). ``history.records`` is a list of dicts; :func:`training_curves` draws them."""

    def __init__(self, model=None, validation=None, metric: str = "ndcg", K: int = 10):
        self.model, self.validation, self.metric, self.K = model, validation, metric, K
        self.records: List[dict] = []
        self._start = time.perf_counter()

    def __call__(self, iteration, elapsed=None, *values):
        record = {"iteration": int(iteration) + 1, "seconds": time.perf_counter() - self._start}
        names = ("loss",) if len(values) == 1 else ("correct", "skipped")  # ALS / BPR
        record.update({n: float(v) for n, v in zip(names, values) if v is not None})
        if self.validation is not None and self.model is not None:
            from .evaluation import ranking_metrics_at_k

            train, test = self.validation
            record[self.metric] = ranking_metrics_at_k(
                self.model, train, test, K=self.K, show_progress=False
            )[self.metric]
        self.records.append(record)


def training_curves(histories: Dict[str, TrainingHistory], key: Optional[str] = None, ax=None):
    """``key`` (default: the validation metric if recorded, else the loss) per iteration, one
    line per history."""
    if not histories:
        raise ValueError("histories is empty: pass {name: TrainingHistory}")
    ax = _axes(ax)
    for name, h in histories.items():
        records = h.records
        if not records:
            raise ValueError(f"history {name!r} recorded nothing: pass it as fit's callback")
        k = key or next((c for c in (h.metric, "loss", "correct") if c in records[0]), None)
        if k is None or k not in records[0]:
            raise ValueError(
                f"history {name!r} has no {key or 'metric or loss'} (it has "
                f"{', '.join(records[0])})"
            )
        ax.plot(
            [r["iteration"] for r in records],
            [r[k] for r in records],
            marker=".",
            label=f"{name} ({k})",
        )
    ax.set_xlabel("iteration")
    ax.set_ylabel(key or "value")
    ax.legend()
    ax.grid(True, alpha=0.3)
    return ax


__all__ = ["metric_curves", "popularity_curves", "training_curves", "TrainingHistory"]

"""Model selection: a validation split carved from the training data, grid and random search with
early stopping, and a refit of the best setting.

Published numbers come from tuned models; tuning on the test split overstates them. The tools
here never see the test split::

    fit_part, validation = validation_split(train, 0.2, random_state=0)
    search = grid_search(AlternatingLeastSquares, {"factors": [32, 64, 128],
                                                   "regularization": [0.01, 0.1, 1.0]},
                         fit_part, validation, metric="ndcg", K=10)
    print(search.table())                  # one row per setting, best first
    model = search.refit(train)            # the best setting on all the training data
    ranking_metrics_at_k(model, train, test, K=10)

Iterative models (ALS, BPR, LMF: ``iterations``; LightFM: ``epochs``) are scored on the
validation split every ``eval_every`` iterations through their fit callbacks (LightFM one
``fit_partial`` epoch at a time) and stop after ``patience`` scores without improvement; the
iteration count that scored best is part of the best setting, and the refit trains exactly
that many. A setting whose training diverges (:class:`~tacitrec.exceptions.ModelFitError`:
factors became NaN or infinite) does not end the search: its trial keeps the best check before
the divergence, or NaN metrics and the error's message in ``Trial.error`` when none ran, and
ranks last. Optuna drives :func:`random_search` instead of independent draws when
``sampler="optuna"`` and it is installed; nothing else needs it.
"""

from __future__ import annotations

import itertools
import math
import numbers
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
import scipy.sparse as sp

from ._validation import as_csr, check_count, check_random_state
from .exceptions import ModelFitError
from .evaluation import _canonical_coo, _random_split, _split, ranking_metrics_at_k

METRICS = ("precision", "recall", "map", "ndcg", "auc", "mrr", "hit_rate", "implicit_precision")


def validation_split(
    train, fraction: float = 0.2, by: str = "user", timestamps=None, random_state=None
):
    """``(fit_part, validation)``: CSR matrices of ``train``'s shape that split its stored
    interactions.

    ``by``:

    * ``"user"`` (default): each user with at least two interactions gives a random
      ``fraction`` of them (at least one, never all) to validation; every user keeps history
      to be scored from;
    * ``"interaction"``: a random ``fraction`` of all interactions (as
      :func:`~tacitrec.evaluation.train_test_split`);
    * ``"time"``: each user's latest ``fraction`` of interactions (at least one, never all),
      by ``timestamps``: a sparse matrix of ``train``'s shape holding each interaction's time
      at the same positions. A (user, item) pair stored more than once (repeated events, as
      ``train``'s repeated entries, which add up) has the latest of its times: the largest,
      never their sum.

    ``timestamps`` is only for ``by="time"``: given with another ``by``, it raises ValueError
    (it would be ignored). A pair stored more than once counts as one interaction and moves with
    all its copies: ``fit_part`` keeps them as stored (LightFM trains each, as on ``train``),
    ``validation`` has them summed.
    """
    if isinstance(fraction, (bool, np.bool_)) or not isinstance(fraction, numbers.Real):
        raise TypeError(f"fraction must be a number in (0, 1), got {type(fraction).__name__}")
    if not 0.0 < float(fraction) < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    if by not in ("user", "interaction", "time"):
        raise ValueError(f"by must be 'user', 'interaction' or 'time', got {by!r}")
    if timestamps is not None and by != "time":
        raise ValueError(
            f"timestamps are only used with by='time', not by={by!r}: pass by='time' "
            "or leave timestamps out"
        )
    m, rows = _canonical_coo(train, "train", finite=True)
    rng = check_random_state(random_state)
    if by == "interaction":  # as train_test_split
        return _random_split(m, rows, 1.0 - float(fraction), rng, train)
    if by == "time":
        if timestamps is None:
            raise ValueError("by='time' needs timestamps (a sparse matrix of train's shape)")
        t = _latest_times(timestamps)
        if t.shape != m.shape or not (
            np.array_equal(t.indptr, m.indptr) and np.array_equal(t.indices, m.indices)
        ):
            raise ValueError(
                "timestamps must hold a time at exactly the positions of train's interactions"
            )
        # integer times compared as integers: float64 would tie nanoseconds since 1970
        key = t.data if t.dtype.kind in "iuf" else t.data.astype(np.float64)
    else:
        key = rng.random(m.nnz)
    counts = np.diff(m.indptr)
    held = np.where(counts >= 2, np.clip(np.rint(counts * float(fraction)), 1, counts - 1), 0)
    # within each row, order by the key: the last `held` (latest time / random) go to validation
    order = np.lexsort((key, rows))
    rank_from_end = m.indptr[rows[order] + 1] - 1 - np.arange(m.nnz)
    valid = np.zeros(m.nnz, dtype=bool)
    valid[order] = rank_from_end < held[rows[order]]
    return _split(m, rows, valid, train)


def _latest_times(timestamps) -> sp.csr_matrix:
    """``timestamps`` in canonical CSR form (checked as ``train`` is), each position holding the
    largest of the times stored there: repeated events of a pair are as recent as the latest
    (the canonical form sums duplicates, which would date them later than any of them)."""
    t, _ = _canonical_coo(timestamps, "timestamps", finite=True)
    raw = timestamps.tocoo()
    if raw.nnz != t.nnz:  # some positions are stored more than once
        row, col = np.asarray(raw.row, np.int64), np.asarray(raw.col, np.int64)
        order = np.lexsort((col, row))  # row-major, as the canonical CSR's entries
        row, col, data = row[order], col[order], np.asarray(raw.data)[order]
        first = np.flatnonzero(np.r_[True, (row[1:] != row[:-1]) | (col[1:] != col[:-1])])
        t.data = np.maximum.reduceat(data, first).astype(t.dtype, copy=False)
    return t


class _Stop(Exception):
    """Raised from a fit callback to end training early."""


@dataclass
class Trial:
    """One evaluated setting: its parameters (with the best iteration count for iterative
    models), its validation metrics at that point, and the seconds it took."""

    params: Dict[str, Any]
    metrics: Dict[str, float]
    seconds: float
    history: List[tuple] = field(default_factory=list)  # (iterations, score) of each check
    error: Optional[str] = None  # why training stopped, when it diverged (ModelFitError)


def _rank(score: float) -> float:
    """A score to order trials by: NaN (a diverged setting) below every number."""
    return -math.inf if math.isnan(score) else score


@dataclass
class SearchResult:
    """What a search found. ``trials`` in the order they ran; ``best`` the one with the highest
    ``metric`` (settings whose training diverged before any check rank last)."""

    metric: str
    K: int
    trials: List[Trial]
    make: Callable[..., Any]
    fit_params: Dict[str, Any]
    seed: Optional[int] = None  # given to every model that takes random_state and has none

    @property
    def best(self) -> Trial:
        scored = [t for t in self.trials if not math.isnan(t.metrics[self.metric])]
        if not scored:
            raise ModelFitError(
                f"no setting could be scored: every trial's training diverged (first: "
                f"{self.trials[0].error})"
            )
        return max(scored, key=lambda t: (t.metrics[self.metric], -self.trials.index(t)))

    @property
    def best_params(self) -> Dict[str, Any]:
        return dict(self.best.params)

    @property
    def best_score(self) -> float:
        return self.best.metrics[self.metric]

    def table(self) -> List[Dict[str, Any]]:
        """One dict per trial, best first: its parameters, metrics@K and seconds."""
        rows = [
            dict(
                t.params,
                **{f"{k}@{self.K}": v for k, v in t.metrics.items()},
                seconds=round(t.seconds, 3),
                **({"error": t.error} if t.error else {}),
            )
            for t in self.trials
        ]
        key = f"{self.metric}@{self.K}"
        return sorted(rows, key=lambda r: -_rank(r[key]))

    def to_frame(self):
        """:meth:`table` as a pandas DataFrame (needs pandas)."""
        import pandas as pd

        return pd.DataFrame(self.table())

    def refit(self, train, **fit_params):
        """The model of the best setting fitted on ``train`` (e.g. the full training data)."""
        params = self.best_params
        model = _construct(self.make, params, self.seed)
        _fit(model, train, dict(self.fit_params, **fit_params), params)
        return model


# ---- fitting with checkpoints ------------------------------------------------------------------
def _iterations_name(model) -> Optional[str]:
    from .lightfm import LightFM

    if isinstance(model, LightFM):
        return "epochs"
    return "iterations" if hasattr(model, "iterations") else None


def _construct(make, params, seed: Optional[int] = None):
    """``make(**params)`` without ``epochs``, which is LightFM's fit argument; a model that takes
    ``random_state`` and was made without one gets ``seed`` (when not None), so that every trial
    and the refit start from the same draw."""
    model = make(**{k: v for k, v in params.items() if k != "epochs"})
    if not (callable(getattr(model, "fit", None)) and callable(getattr(model, "recommend", None))):
        raise TypeError(
            f"model must be a model class or a function returning a model (with fit and "
            f"recommend), but it returned {type(model).__name__}"
        )
    if seed is not None and getattr(model, "random_state", 0) is None:
        model.random_state = seed
    return model


def _is_seed(random_state) -> bool:
    return isinstance(random_state, numbers.Integral) and not isinstance(
        random_state, (bool, np.bool_)
    )


def _model_seed(random_state) -> Optional[int]:
    """The seed a search gives its models: an int as given, one drawn from a generator, None
    for None (the models then draw their own, as fit does)."""
    if random_state is None:
        return None
    rng = check_random_state(random_state)  # the same checks (and errors) as the draws
    return int(random_state) if _is_seed(random_state) else int(rng.integers(2**31 - 1))


def _fit(model, train, fit_params, params):
    from .lightfm import LightFM

    if isinstance(model, LightFM):
        kw = dict(fit_params)
        kw["epochs"] = params.get("epochs", kw.get("epochs", 1))
        return model.fit(train, **kw)
    kw = dict(fit_params)
    kw.setdefault("show_progress", False)
    return model.fit(train, **kw)


@dataclass(frozen=True)
class _Plan:
    """What every trial of one search shares: the model factory, the split, the metric and the
    fitting and early-stopping settings, as the search function was given them (:func:`_search`
    checks them)."""

    make: Callable[..., Any]
    fit_part: Any
    validation: Any
    metric: str
    K: int
    fit_params: Any
    eval_every: Optional[int]
    patience: Optional[int]
    show_progress: bool
    features: Dict[str, Any]
    seed: Optional[int] = None


def _evaluate(model, plan: _Plan):
    return ranking_metrics_at_k(
        model, plan.fit_part, plan.validation, K=plan.K, show_progress=False, **plan.features
    )


def _run_trial(plan: _Plan, params) -> Trial:
    from .lightfm import LightFM

    make, fit_part, fit_params = plan.make, plan.fit_part, plan.fit_params
    metric, eval_every, patience = plan.metric, plan.eval_every, plan.patience
    start = time.perf_counter()
    model = _construct(make, params, plan.seed)
    iters = _iterations_name(model)
    history: List[tuple] = []
    best: Dict[str, Any] = {"score": -math.inf, "metrics": None, "at": None}
    misses = [0]

    def check(done: int) -> None:
        metrics = _evaluate(model, plan)
        history.append((done, metrics[metric]))
        if _rank(metrics[metric]) > best["score"] or best["metrics"] is None:
            best.update(score=_rank(metrics[metric]), metrics=metrics, at=done)
            misses[0] = 0
        else:
            misses[0] += 1
            if patience is not None and misses[0] >= patience:
                raise _Stop

    if iters is None or eval_every is None:
        try:
            _fit(model, fit_part, fit_params, params)
        except ModelFitError as e:
            return _diverged(params, start, history, e)
        metrics = _evaluate(model, plan)
        return Trial(dict(params), metrics, time.perf_counter() - start)
    error = None
    if isinstance(model, LightFM):
        total = check_count(params.get("epochs", fit_params.get("epochs", 1)), "epochs", minimum=0)
        kw = {k: v for k, v in fit_params.items() if k != "epochs"}
        model.fit(fit_part, epochs=0, **kw)
        try:
            for epoch in range(1, total + 1):
                model.fit_partial(fit_part, epochs=1, **kw)
                if epoch % eval_every == 0 or epoch == total:
                    check(epoch)
        except _Stop:
            pass
        except ModelFitError as e:
            error = e
    else:
        total = check_count(model.iterations, "iterations", minimum=0)

        own = fit_params.get("callback")  # the caller's, called first, as fit would call it

        def callback(iteration, *rest):
            if own is not None:
                own(iteration, *rest)  # its return value ignored, as every fit ignores it
            done = iteration + 1
            if done % eval_every == 0 or done == total:
                check(done)

        kw = {k: v for k, v in fit_params.items() if k != "callback"}
        kw.setdefault("show_progress", False)
        try:
            model.fit(fit_part, callback=callback, **kw)
        except _Stop:
            pass
        except ModelFitError as e:
            error = e
    if error is not None and best["metrics"] is None:
        return _diverged(params, start, history, error)
    if best["metrics"] is None:  # no iteration ran (iterations=0, epochs=0): score the model
        check(0)
    out = dict(params)
    out[iters] = best["at"]
    return Trial(
        out,
        best["metrics"],
        time.perf_counter() - start,
        history,
        None if error is None else str(error),
    )


def _diverged(params, start, history, error: ModelFitError) -> Trial:
    """The trial of a setting whose training diverged before any check: NaN metrics."""
    metrics = {m: math.nan for m in METRICS}
    return Trial(dict(params), metrics, time.perf_counter() - start, history, str(error))


def _search(plan: _Plan, settings) -> SearchResult:
    make, fit_part, validation = plan.make, plan.fit_part, plan.validation
    metric, K, eval_every, patience = plan.metric, plan.K, plan.eval_every, plan.patience
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    K = check_count(K, "K")
    if eval_every is not None:
        eval_every = check_count(eval_every, "eval_every")
    if patience is not None:
        patience = check_count(patience, "patience")
    if not callable(make):
        raise TypeError(
            f"model must be a model class or a function returning a model, got "
            f"{type(make).__name__}"
        )
    for name, M in (("fit_part", fit_part), ("validation", validation)):
        if not sp.issparse(M):
            raise TypeError(f"{name} must be a scipy.sparse matrix, got {type(M).__name__}")
        as_csr(M, name)  # checked here, so that a bad value is reported under this name
    if fit_part.shape != validation.shape:
        raise ValueError(
            f"fit_part has shape {fit_part.shape} and validation {validation.shape}:"
            " split one matrix with validation_split"
        )
    fit_params = dict(plan.fit_params or {})
    plan = replace(plan, K=K, fit_params=fit_params, eval_every=eval_every, patience=patience)
    trials: List[Trial] = []
    result = SearchResult(metric, K, trials, make, fit_params, plan.seed)
    for n, params in enumerate(settings, 1):
        trial = _run_trial(plan, params)
        trials.append(trial)
        if plan.show_progress:
            shown = ", ".join(f"{k}={v!r}" for k, v in trial.params.items())
            best = max(_rank(t.metrics[metric]) for t in trials)
            best_shown = f"{best:.5f}" if best > -math.inf else "none yet"
            diverged = f" (diverged: {trial.error})" if trial.error else ""
            print(
                f"[{n}] {shown}: {metric}@{K} {trial.metrics[metric]:.5f}{diverged} "
                f"(best {best_shown}, {trial.seconds:.1f} s)",
                flush=True,
            )
    if not trials:
        raise ValueError("the search has no setting to try (an empty grid)")
    return result


def _grid(param_grid: Dict[str, Sequence]) -> List[Dict[str, Any]]:
    if not isinstance(param_grid, dict):
        raise TypeError(
            f"param_grid must be a dict of name -> list of values, got {type(param_grid).__name__}"
        )
    names = list(param_grid)
    for name in names:
        if isinstance(param_grid[name], (str, bytes)) or not hasattr(param_grid[name], "__iter__"):
            raise TypeError(f"param_grid[{name!r}] must be a list of values")
    return [
        dict(zip(names, values))
        for values in itertools.product(*(list(param_grid[n]) for n in names))
    ]


def grid_search(
    model,
    param_grid: Dict[str, Sequence],
    fit_part,
    validation,
    *,
    metric: str = "ndcg",
    K: int = 10,
    fit_params=None,
    eval_every: Optional[int] = 1,
    patience: Optional[int] = 3,
    show_progress: bool = True,
    user_features=None,
    item_features=None,
    random_state=None,
) -> SearchResult:
    """Fits ``model(**setting)`` (a class or a function returning a model) for every combination
    of ``param_grid`` on ``fit_part`` and scores it on ``validation`` (from
    :func:`validation_split`) by ``metric`` at ``K``. Iterative models are checked every
    ``eval_every`` iterations and stop after ``patience`` checks without improvement (None: no
    early stopping; ``eval_every=None``: score only the end). ``fit_params`` go to ``fit``
    (LightFM: ``epochs``, ``num_threads``, feature matrices...). With ``random_state``, every
    model that takes a ``random_state`` and gets none from the setting is seeded with it (the
    same seed in every trial and in :meth:`SearchResult.refit`, so that settings are compared
    from the same draw and the refit is reproducible); None leaves the models unseeded."""
    features = _features(user_features, item_features, fit_params)
    plan = _Plan(
        model,
        fit_part,
        validation,
        metric,
        K,
        fit_params,
        eval_every,
        patience,
        show_progress,
        features,
        _model_seed(random_state),
    )
    return _search(plan, _grid(param_grid))


def random_search(
    model,
    distributions: Dict[str, Any],
    fit_part,
    validation,
    *,
    n_iter: int = 20,
    metric: str = "ndcg",
    K: int = 10,
    fit_params=None,
    eval_every: Optional[int] = 1,
    patience: Optional[int] = 3,
    random_state=None,
    sampler: str = "random",
    show_progress: bool = True,
    user_features=None,
    item_features=None,
) -> SearchResult:
    """As :func:`grid_search`, for ``n_iter`` settings drawn from ``distributions``: per name a
    list (drawn uniformly), a ``("log", low, high)`` or ``("uniform", low, high)`` float range,
    or an ``("int", low, high)`` integer range (both ends included). ``sampler="optuna"`` lets
    Optuna's TPE choose the settings (needs optuna); ``"random"`` draws them independently with
    ``random_state``, which also seeds the models as in :func:`grid_search`."""
    n_iter = check_count(n_iter, "n_iter")
    if not isinstance(distributions, dict):
        raise TypeError(
            "distributions must be a dict of name -> list of values or (kind, low, high) "
            f"range, got {type(distributions).__name__}"
        )
    specs = {name: _spec(name, d) for name, d in distributions.items()}
    features = _features(user_features, item_features, fit_params)
    plan = _Plan(
        model,
        fit_part,
        validation,
        metric,
        K,
        fit_params,
        eval_every,
        patience,
        show_progress,
        features,
    )
    if sampler == "optuna":
        return _optuna_search(
            replace(plan, seed=_model_seed(random_state)), specs, n_iter, random_state
        )
    if sampler != "random":
        raise ValueError(f"sampler must be 'random' or 'optuna', got {sampler!r}")
    rng = check_random_state(random_state)
    settings = [{name: draw(rng) for name, (draw, _) in specs.items()} for _ in range(n_iter)]
    # an int seeds the models as given; a generator gives them one draw after the settings'
    seed = (
        None
        if random_state is None
        else _model_seed(random_state if _is_seed(random_state) else rng)
    )
    return _search(replace(plan, seed=seed), settings)


def _features(user_features, item_features, fit_params):
    """The feature matrices ``recommend`` needs while scoring a LightFM model."""
    fit_params = fit_params or {}
    out = {}
    for name, value in (("user_features", user_features), ("item_features", item_features)):
        value = value if value is not None else fit_params.get(name)
        if value is not None:
            out[name] = value
    return out


def _is_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))


def _spec(name, d):
    """(draw(rng), suggest(trial)) of one entry of ``distributions``."""
    kinds = ("log", "uniform", "int")
    if (
        isinstance(d, tuple)
        and d
        and isinstance(d[0], str)
        and (d[0] in kinds or (len(d) == 3 and all(_is_number(v) for v in d[1:])))
    ):
        # a range: a misspelt kind or a missing end would otherwise be drawn as a list of choices
        if len(d) != 3 or d[0] not in kinds or not all(_is_number(v) for v in d[1:]):
            raise ValueError(
                f"distributions[{name!r}]: a range is ('log' | 'uniform' | 'int', low, high) "
                f"with numbers low and high, got {d!r} (pass a list for a set of choices)"
            )
        kind, low, high = d
        if not (np.isfinite(low) and np.isfinite(high) and low <= high):
            raise ValueError(f"distributions[{name!r}]: need low <= high, got {low}, {high}")
        if kind == "int" and not (float(low).is_integer() and float(high).is_integer()):
            raise ValueError(
                f"distributions[{name!r}]: an int range needs whole-number ends, got {low}, {high}"
            )
        if kind == "log":
            if low <= 0:
                raise ValueError(f"distributions[{name!r}]: a log range needs low > 0")
            return (
                lambda rng: float(np.exp(rng.uniform(np.log(low), np.log(high)))),
                lambda t: t.suggest_float(name, low, high, log=True),
            )
        if kind == "uniform":
            return (
                lambda rng: float(rng.uniform(low, high)),
                lambda t: t.suggest_float(name, low, high),
            )
        return (
            lambda rng: int(rng.integers(int(low), int(high) + 1)),
            lambda t: t.suggest_int(name, int(low), int(high)),
        )
    if isinstance(d, (list, tuple)) and len(d) > 0:
        values = list(d)
        return (
            lambda rng: values[int(rng.integers(len(values)))],
            lambda t: values[t.suggest_categorical(name, list(range(len(values))))],
        )
    raise ValueError(
        f"distributions[{name!r}] must be a non-empty list or a ('log' | 'uniform' "
        f"| 'int', low, high) tuple, got {d!r}"
    )


def _optuna_search(plan: _Plan, specs, n_iter, random_state):
    try:
        import optuna
    except ImportError as e:
        raise ImportError("sampler='optuna' needs optuna: pip install optuna") from e
    seed = random_state if isinstance(random_state, (int, np.integer)) else None
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    trials: List[Trial] = []

    def objective(trial):
        params = {name: suggest(trial) for name, (_, suggest) in specs.items()}
        result = _search(plan, [params])
        trials.append(result.trials[0])
        return result.trials[0].metrics[plan.metric]

    if not plan.show_progress:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.optimize(objective, n_trials=n_iter)
    return SearchResult(
        plan.metric, check_count(plan.K, "K"), trials, plan.make, dict(plan.fit_params or {})
    )


__all__ = ["validation_split", "grid_search", "random_search", "SearchResult", "Trial", "METRICS"]

"""OptimizationModule: optuna (TPE) and grid searches over a strategy's declared `Param`
bounds, the best parameters found and the defaults' score beside them.

    result = optimize(SmaCross, bars, n_trials=40, seed=1)
    result.params, result.score, result.default_score

`optimize(..., workers=2)` runs trials in this process and in `workers - 1` spawned processes that
share the study (`workers=None`: one per core; `sigma.research.workers`). Without a `storage` the
shared study is a temporary optuna journal file, removed afterwards; a study can also live in a
database (`storage`, any SQLAlchemy URL, or ``journal:PATH`` for a journal file on this machine;
`sigma.research.study`), and separate machines can join the same study with `join_study`. A
stored study resumes where it stopped: only the trials still missing are run. The study always
starts with the strategy's defaults, so the best parameters found are never worse in-sample than
the defaults. The search space is `sigma.research.space`, a trial's score
`sigma.research.evaluation`, and validation out of sample `sigma.research.walk_forward`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import optuna
import pandas as pd

from sigma.engine.engine import Cancelled, ProgressFn
from sigma.engine.fill_model import FillModel
from sigma.engine.margin import MarginModel
from sigma.research.evaluation import evaluate
from sigma.research.objectives import MIN_TRADES, NO_SCORE, check_objective
from sigma.research.space import Dimension, default_params, first_valid, grid_size, search_space
from sigma.research.study import Method, load_study, study_storage, temporary_journal
from sigma.research.trials import INVALID, TrialObjective, TrialRecord, count_completed, run_trials
from sigma.research.workers import auto_workers, spawned_workers
from sigma.strategies.base import Strategy


@dataclass(frozen=True, slots=True)
class OptimizationResult:
    """Best parameters of a search, with the defaults' score on the same window."""

    strategy: str
    params: dict[str, Any]
    score: float
    default_score: float
    n_trials: int
    study_name: str
    trials: list[tuple[dict[str, Any], float]] = field(default_factory=list)
    by_worker: dict[str, int] = field(default_factory=dict)
    """Completed trials per process ("host:pid") that ran them."""
    records: list[TrialRecord] = field(default_factory=list)
    """Every completed trial (grid points once), in trial order, for the trial table."""

    @property
    def best_score(self) -> float | None:
        """The best score, or None when no trial got one."""
        return None if self.score <= NO_SCORE else self.score


class OptimizationCancelled(Cancelled):
    """The search was cancelled; `best` holds what its completed trials found."""

    def __init__(self, message: str, best: OptimizationResult) -> None:
        super().__init__(message)
        self.best = best


@dataclass(frozen=True, slots=True)
class _Search:
    """What one `optimize` call searches, for `_optimize`."""

    objective: TrialObjective
    method: Method
    n_trials: int
    seed: int
    grid_points: int
    default_score: float


def optimize(
    strategy: type[Strategy],
    bars: pd.DataFrame,
    *,
    method: Method = "tpe",
    n_trials: int = 50,
    seed: int = 0,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    max_int: int | None = None,
    score_from: int = 0,
    initial_cash: Decimal = Decimal(10_000),
    fill_model: FillModel | None = None,
    min_trades: int = MIN_TRADES,
    objective: str = "sharpe",
    max_drawdown_pct: float | None = None,
    margin: MarginModel | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    workers: int | None = 1,
    grid_points: int = 5,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> OptimizationResult:
    """Search the strategy's parameter space for the best score on `bars` (see `evaluate`:
    `objective`, `min_trades` and `max_drawdown_pct` choose what is scored and what excluded,
    `fill_model` and `margin` how every trial trades). A grid takes `grid_points` values per
    numeric parameter (`sigma.research.space.grid_values`).

    `workers` > 1 adds `workers - 1` spawned processes sharing the study: the `storage` given,
    or without one a temporary journal file removed at the end. The result is the same as with
    one process (for a grid the same best score over the same grid, for TPE a best within the
    bounds). `workers=None`: one process per core when the study looks long enough to repay
    starting them (`sigma.research.workers.auto_workers`), else one. `progress(done, n_trials)`
    follows completed trials; setting `cancel` stops after the running trial and raises
    `OptimizationCancelled` with the best found so far (a stored study keeps its trials and
    resumes).
    """
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = search_space(strategy, bounds, max_int=max_int)
    first_valid(strategy, space)
    defaults = default_params(strategy)
    task = TrialObjective(
        strategy,
        space,
        bars,
        score_from,
        initial_cash,
        fill_model or FillModel(),
        min_trades,
        check_objective(objective),
        max_drawdown_pct,
        margin,
    )
    # The defaults' score is part of the result; timing it tells what a trial costs.
    started = time.perf_counter()
    default_score = evaluate(
        strategy,
        defaults,
        bars,
        score_from=score_from,
        initial_cash=initial_cash,
        fill_model=task.fill_model,
        min_trades=min_trades,
        objective=objective,
        max_drawdown_pct=max_drawdown_pct,
        margin=margin,
    ).score
    if workers is None:
        expected = (
            n_trials if method != "grid" else min(n_trials, grid_size(space, defaults, grid_points))
        )
        workers = auto_workers(expected * (time.perf_counter() - started + _TRIAL_OVERHEAD))
    search = _Search(task, method, n_trials, seed, grid_points, default_score)
    name = study_name or f"{strategy.name}-{method}-{seed}"
    if workers > 1 and storage is None:
        # Several processes share a study through storage: a journal file nobody else sees.
        with temporary_journal() as journal:
            return _optimize(search, journal, name, workers, progress, cancel)
    if storage is not None:
        storage = study_storage(storage)  # once, for every worker
    return _optimize(search, storage, name, workers, progress, cancel)


_TRIAL_OVERHEAD = 0.01
"""Seconds a trial costs besides its backtest (the sampler, the study's bookkeeping)."""


def _optimize(
    search: _Search,
    storage: str | None,
    name: str,
    workers: int,
    progress: ProgressFn | None,
    cancel: threading.Event | None,
) -> OptimizationResult:
    """Run the study `name` in `storage` with `workers` processes (see `optimize`)."""
    objective, method, n_trials, seed = (
        search.objective,
        search.method,
        search.n_trials,
        search.seed,
    )
    strategy = objective.strategy
    if workers > 1 and storage is None:
        raise ValueError("several workers share a study through storage")
    study = load_study(
        name,
        storage,
        strategy=strategy,
        space=objective.space,
        method=method,
        seed=seed,
        grid_points=search.grid_points,
    )
    with spawned_workers(
        workers - 1, storage, name, objective, n_trials, method, seed, search.grid_points
    ):
        run_trials(study, objective, n_trials, progress, cancel)
    if cancel is not None and cancel.is_set():
        raise OptimizationCancelled(
            f"optimisation of {strategy.name} cancelled after {count_completed(study)} trials",
            _result(study, search, name),
        )
    return _result(study, search, name)


def _result(study: optuna.Study, search: _Search, name: str) -> OptimizationResult:
    """What the study's completed trials found."""
    strategy, space = search.objective.strategy, search.objective.space
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if search.method == "grid":
        # Workers sharing a grid can both take its last free point: each point counts once.
        seen: dict[tuple[tuple[str, Any], ...], optuna.trial.FrozenTrial] = {}
        for trial in done:
            seen.setdefault(tuple(sorted(trial.params.items())), trial)
        done = list(seen.values())
    params, score = _best(study, strategy, space)
    by_worker: dict[str, int] = {}
    for trial in done:
        worker = str(trial.user_attrs.get("worker", "?"))
        by_worker[worker] = by_worker.get(worker, 0) + 1
    return OptimizationResult(
        strategy=strategy.name,
        params={**default_params(strategy), **params},
        score=score,
        default_score=search.default_score,
        n_trials=len(done),
        study_name=name,
        trials=[(dict(t.params), float(t.value or NO_SCORE)) for t in done],
        by_worker=by_worker,
        records=[TrialRecord.of(t) for t in done],
    )


def _best(
    study: optuna.Study, strategy: type[Strategy], space: Mapping[str, Dimension]
) -> tuple[dict[str, Any], float]:
    """The best valid trial's parameters and score (the first of equals, as optuna's
    `best_trial`); when every trial was invalid, the first valid parameters with NO_SCORE."""
    valid = [
        (float(t.value), t.params)
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if not t.user_attrs.get(INVALID) and t.value is not None
    ]
    if not valid:
        return first_valid(strategy, space), NO_SCORE
    score, params = max(valid, key=lambda pair: pair[0])
    return dict(params), score


__all__ = ["OptimizationCancelled", "OptimizationResult", "optimize"]

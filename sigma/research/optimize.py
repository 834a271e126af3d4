"""OptimizationModule: optuna (TPE) and grid searches over a strategy's declared `Param`
bounds, and walk-forward validation that scores parameters only on bars they were not fit on.

    result = optimize(SmaCross, bars, n_trials=40, seed=1)
    wf = walk_forward(SmaCross, bars, folds=3, n_trials=30, seed=1)
    wf.oos_score, wf.params      # out-of-sample Sharpe, parameters refit on the newest window

`optimize(..., workers=2)` runs trials in this process and in `workers - 1` spawned processes that
share the study (`workers=None`: one per core). Without a `storage` the shared study is a
temporary optuna journal file, removed afterwards; a study can also live in a database
(`storage`, any SQLAlchemy URL, or ``journal:PATH`` for a journal file on this machine), and
separate machines can join the same study with `join_study`. A stored study resumes where it
stopped: only the trials still missing are run. Pointed at SIGMA's own database, the studies
get a schema of their own (`study_storage`). The study always starts with the strategy's
defaults, so the best parameters found are never worse in-sample than the defaults.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import os
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any, Literal, Protocol

import numpy as np
import optuna
import pandas as pd
from optuna.storages.journal import JournalFileBackend, JournalStorage

from sigma.engine.engine import Cancelled
from sigma.engine.fast import fast_backtest, fast_path_ok
from sigma.engine.fill_model import FillModel
from sigma.engine.margin import MarginModel
from sigma.research.backtest import run_backtest
from sigma.research.objectives import MIN_TRADES, NO_SCORE, check_objective, mean_score, measure
from sigma.research.quiet import quiet_margin
from sigma.research.sweep import bars_per_year
from sigma.strategies.base import Strategy
from sigma.strategies.registry import portable, resolve

ProgressFn = Callable[[int, int], None]
Method = Literal["tpe", "grid"]

# Workers wait this long for each other to start (spawned processes import numba and optuna).
_START_TIMEOUT = 120.0

JOURNAL = "journal:"
"""Prefix of a `storage` that is an optuna journal file (``journal:/path/study.log``): a study
several processes of one machine share without a database."""

_INVALID = "invalid"
"""Trial attribute of parameters the strategy refused."""


class _Flag(Protocol):
    """A threading or multiprocessing event."""

    def is_set(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Dimension:
    """One searchable parameter: an int or float range (inclusive) or a bool choice."""

    name: str
    kind: Literal["int", "float", "bool"]
    low: float = 0.0
    high: float = 1.0
    step: float | None = None

    def contains(self, value: Any) -> bool:
        """True when `value` lies in the range (any bool for a bool choice)."""
        return self.kind == "bool" or self.low <= float(value) <= self.high

    def grid(self, points: int, default: Any) -> list[Any]:
        """`points` evenly spaced values over the range (bools: both), plus the default when
        it lies in the range."""
        if self.kind == "bool":
            return [True, False]
        raw = np.linspace(self.low, self.high, max(points, 2))
        values: list[Any] = (
            [round(float(v)) for v in raw] if self.kind == "int" else [float(v) for v in raw]
        )
        if self.contains(default):
            values.append(int(default) if self.kind == "int" else float(default))
        return sorted(set(values))


def search_space(
    strategy: type[Strategy],
    bounds: Mapping[str, tuple[float, float]] | None = None,
    *,
    max_int: int | None = None,
) -> dict[str, Dimension]:
    """The strategy's tunable parameters as dimensions.

    Numeric parameters need declared `low`/`high`; those without bounds (and str parameters)
    keep their default. `bounds` narrows a range; it must lie inside the declared bounds.
    `max_int` caps int ranges (e.g. at half the training window: a look-back longer than that
    cannot be validated).
    """
    bounds = dict(bounds or {})
    specs = strategy.param_specs()
    unknown = sorted(set(bounds) - set(specs))
    if unknown:
        raise ValueError(f"{strategy.name} has no parameter(s) {', '.join(unknown)}")
    space: dict[str, Dimension] = {}
    for name, spec in specs.items():
        kind = spec.kind
        if kind is bool:
            space[name] = Dimension(name, "bool")
            continue
        if kind not in (int, float) or spec.low is None or spec.high is None:
            continue
        low, high = float(spec.low), float(spec.high)
        if name in bounds:
            new_low, new_high = bounds[name]
            if new_low > new_high:
                raise ValueError(f"bounds for {name!r} go down: {new_low} > {new_high}")
            if new_low < low or new_high > high or new_low > new_high:
                raise ValueError(
                    f"bounds for {name!r} must lie within [{spec.low}, {spec.high}], "
                    f"got [{new_low}, {new_high}]"
                )
            low, high = float(new_low), float(new_high)
        if kind is int and max_int is not None:
            high = max(low, min(high, float(max_int)))
        space[name] = Dimension(name, "int" if kind is int else "float", low, high, spec.step)
    return space


def default_params(strategy: type[Strategy]) -> dict[str, Any]:
    """The declared default of every parameter."""
    return {name: spec.default for name, spec in strategy.param_specs().items()}


_PROBES = 1000
"""Parameter sets `first_valid` tries before it calls a search space hopeless."""


def _probe_values(dim: Dimension) -> list[Any]:
    if dim.kind == "bool":
        return [True, False]
    values = [dim.low, (dim.low + dim.high) / 2, dim.high]
    return [int(v) for v in values] if dim.kind == "int" else values


def _clamped(dim: Dimension, value: Any) -> Any:
    if dim.kind == "bool":
        return value
    inside = min(max(float(value), dim.low), dim.high)
    return int(inside) if dim.kind == "int" else inside


def first_valid(strategy: type[Strategy], space: Mapping[str, Dimension]) -> dict[str, Any]:
    """Parameters within `space` that the strategy accepts: its defaults moved into the
    ranges, else the first of the ranges' ends and middles that passes its checks.

    ValueError when none does: the bounds contradict the strategy's own rules (``fast`` bound
    above every ``slow``), and a search would only score invalid sets."""
    defaults = default_params(strategy)
    moved = {name: _clamped(dim, defaults[name]) for name, dim in space.items()}
    grid = (
        dict(zip(space, values, strict=True))
        for values in itertools.product(*(_probe_values(d) for d in space.values()))
    )
    problem = ""
    for candidate in itertools.islice(itertools.chain([moved], grid), _PROBES):
        try:
            strategy(**{**defaults, **candidate})
        except ValueError as exc:
            problem = str(exc)
            continue
        return candidate
    raise ValueError(f"no parameters within the bounds are valid for {strategy.name}: {problem}")


@dataclass(frozen=True, slots=True)
class Evaluation:
    """How parameters did on the scored part of a window: `score` is the objective's value,
    `NO_SCORE` when the window is `excluded` (the reason), as the samplers see it."""

    score: float
    sharpe: float | None
    return_pct: float
    n_trades: int
    excluded: str | None = None
    metrics: dict[str, float | None] = field(default_factory=dict)

    @property
    def scored(self) -> float | None:
        """The score, or None when excluded: what reports show and average."""
        return None if self.excluded is not None else self.score


def evaluate(
    strategy: type[Strategy],
    params: Mapping[str, Any],
    bars: pd.DataFrame,
    *,
    score_from: int = 0,
    initial_cash: Decimal = Decimal(10_000),
    fill_model: FillModel | None = None,
    min_trades: int = MIN_TRADES,
    objective: str = "sharpe",
    max_drawdown_pct: float | None = None,
    margin: MarginModel | None = None,
) -> Evaluation:
    """Backtest `params` on all of `bars` but score only bars from `score_from` on.

    The bars before `score_from` only warm up indicators and positions; nothing after the last
    bar is seen. The score is `objective` (see `sigma.research.objectives`: annualised Sharpe
    ratio by default) of the scored equity and trades, or `NO_SCORE` when the window is
    excluded: fewer than `min_trades` trades closed in the scored part, a drawdown deeper than
    `max_drawdown_pct`, an undefined objective. `margin` is the account traded (default: margin
    at leverage 1). Strategies with a vectorised twin run on the compiled fast path when it
    models the fill model, the account and the bars' funding (`fast_path_ok`), others on the
    exact engine.
    """
    if not 0 <= score_from < len(bars):
        raise ValueError(f"score_from must be in [0, {len(bars)}), got {score_from}")
    fm = fill_model or FillModel()
    equity, exit_bars, pnl = _equity_and_exits(strategy, params, bars, initial_cash, fm, margin)
    base = max(score_from - 1, 0)
    measured = measure(
        equity[base:],
        bars_per_year(pd.DatetimeIndex(bars.index)),
        pnl[exit_bars >= score_from],
        objective=objective,
        min_trades=min_trades,
        max_drawdown_pct=max_drawdown_pct,
    )
    metrics = measured.metrics
    return Evaluation(
        NO_SCORE if measured.score is None else measured.score,
        metrics["sharpe"],
        float(metrics["return"] or 0.0),
        int(np.count_nonzero(exit_bars >= score_from)),
        measured.excluded,
        metrics,
    )


def _equity_and_exits(
    strategy: type[Strategy],
    params: Mapping[str, Any],
    bars: pd.DataFrame,
    initial_cash: Decimal,
    fill_model: FillModel,
    margin: MarginModel | None,
) -> tuple[
    np.ndarray[Any, np.dtype[np.float64]],
    np.ndarray[Any, np.dtype[np.int64]],
    np.ndarray[Any, np.dtype[np.float64]],
]:
    """The equity at each close, and each closed trade's exit bar and net PnL."""
    full = {**default_params(strategy), **params}
    if fast_path_ok(strategy, fill_model, margin, bars):
        fast = fast_backtest(strategy, full, bars, initial_cash, fill_model)
        return fast.equity, fast.exit_bar, fast.pnl
    with quiet_margin():  # a refusal said once per trial would bury the search's output
        result, _ = run_backtest(
            strategy(**full),
            bars,
            symbol="OPT",
            initial_cash=initial_cash,
            fill_model=fill_model,
            margin=margin,
        )
    exits = np.array([t.exit_bar for t in result.trades], dtype=np.int64)
    pnl = np.array([float(t.pnl) for t in result.trades], dtype=np.float64)
    return result.equity.to_numpy(dtype=np.float64), exits, pnl


@dataclass(frozen=True, slots=True)
class TrialRecord:
    """One completed trial for the trial table: its score, or why it has none."""

    number: int
    params: dict[str, Any]
    score: float | None
    excluded: str | None
    n_trades: int | None
    metrics: dict[str, float | None]
    worker: str

    @classmethod
    def of(cls, trial: optuna.trial.FrozenTrial) -> TrialRecord:
        """The record of a completed optuna trial (its attributes set by `_Objective`)."""
        attrs = trial.user_attrs
        excluded = attrs.get("excluded")
        if attrs.get(_INVALID):
            excluded = f"refused: {attrs.get('refused', 'invalid parameters')}"
        return cls(
            number=trial.number,
            params=dict(trial.params),
            score=None if excluded or trial.value is None else float(trial.value),
            excluded=excluded,
            n_trades=attrs.get("n_trades"),
            metrics=dict(attrs.get("metrics", {})),
            worker=str(attrs.get("worker", "?")),
        )


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
class _Objective:
    """Picklable objective, so spawned workers can run it too (a plugin strategy travels as
    its file, see `portable`)."""

    strategy: type[Strategy]
    space: dict[str, Dimension]
    bars: pd.DataFrame
    score_from: int
    initial_cash: Decimal
    fill_model: FillModel
    min_trades: int
    objective: str = "sharpe"
    max_drawdown_pct: float | None = None
    margin: MarginModel | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        values = [getattr(self, f.name) for f in fields(self)]
        return (_rebuilt_objective, (portable(self.strategy), *values[1:]))

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for dim in self.space.values():
            if dim.kind == "bool":
                params[dim.name] = trial.suggest_categorical(dim.name, [True, False])
            elif dim.kind == "int":
                params[dim.name] = trial.suggest_int(dim.name, int(dim.low), int(dim.high))
            else:
                params[dim.name] = trial.suggest_float(dim.name, dim.low, dim.high)
        return params

    def __call__(self, trial: optuna.Trial) -> float:
        params = self.suggest(trial)
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        try:
            self.strategy(**{**default_params(self.strategy), **params})
        except ValueError as exc:
            # Related parameters can contradict each other (fast >= slow): worthless, not fatal,
            # and never the result (see `_best`).
            trial.set_user_attr(_INVALID, True)
            trial.set_user_attr("refused", str(exc)[:200])
            return NO_SCORE
        ev = evaluate(
            self.strategy,
            params,
            self.bars,
            score_from=self.score_from,
            initial_cash=self.initial_cash,
            fill_model=self.fill_model,
            min_trades=self.min_trades,
            objective=self.objective,
            max_drawdown_pct=self.max_drawdown_pct,
            margin=self.margin,
        )
        trial.set_user_attr("n_trades", ev.n_trades)
        trial.set_user_attr("metrics", ev.metrics)
        if ev.excluded is not None:
            trial.set_user_attr("excluded", ev.excluded)
        return ev.score


def _rebuilt_objective(strategy: Any, *values: Any) -> _Objective:
    return _Objective(resolve(strategy), *values)


def _sampler(
    method: Method,
    space: Mapping[str, Dimension],
    defaults: Mapping[str, Any],
    seed: int,
    grid_points: int,
) -> optuna.samplers.BaseSampler:
    if method == "grid":
        grid = {n: d.grid(grid_points, defaults[n]) for n, d in space.items()}
        return optuna.samplers.GridSampler(grid, seed=seed)
    if method == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    raise ValueError(f"unknown method {method!r}; use 'tpe' or 'grid'")


def _completed(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))


def _run_trials(
    study: optuna.Study,
    objective: _Objective,
    n_trials: int,
    progress: ProgressFn | None,
    cancel: _Flag | None,
) -> None:
    """Run trials until the study holds `n_trials` completed ones (counted across workers)."""
    known = _completed(study)
    if known >= n_trials:
        return
    mine = 0

    def _after(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        nonlocal known, mine
        mine += trial.state == optuna.trial.TrialState.COMPLETE
        # Counting a stored study's trials reads every trial from the database, which costs
        # more than a fast backtest; so the shared count is refreshed only after a quarter of
        # what remained, and when this worker alone might have reached the total.
        if known + mine >= n_trials or mine >= max(1, (n_trials - known) // 4):
            known, mine = _completed(study), 0
        done = known + mine
        if progress is not None:
            progress(min(done, n_trials), n_trials)
        if done >= n_trials or (cancel is not None and cancel.is_set()):
            study.stop()

    study.optimize(objective, callbacks=[_after], gc_after_trial=False)


def study_storage(url: str) -> str:
    """The URL optuna should store studies at, given the configured one: a ``journal:`` file as
    it is, a database URL as `sigma.store.optuna_storage.optuna_url` makes it (never SIGMA's
    own schema: optuna's migrations would clash with SIGMA's)."""
    if url.startswith(JOURNAL):
        return url
    # Imported here: spawned optimisation workers need neither Alembic nor the store.
    from sigma.store.optuna_storage import optuna_url

    return optuna_url(url)


def default_workers(workers: int | None = None) -> int:
    """`workers`, or one per core when None."""
    if workers is None:
        return max(os.cpu_count() or 1, 1)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    return workers


def _memory_dir() -> str | None:
    """/dev/shm when there is one: the journal syncs each write, which is free in memory and
    costs more than a fast backtest on a disk. None: the default temporary directory."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None


def _open_storage(storage: str | None) -> str | optuna.storages.BaseStorage | None:
    """What optuna takes for `storage`: a journal file's storage, or the URL as it is."""
    if storage is None or not storage.startswith(JOURNAL):
        return storage
    path = storage.removeprefix(JOURNAL)
    return JournalStorage(JournalFileBackend(path))


def _schema_lock(storage: str | None) -> AbstractContextManager[None]:
    """One process at a time creates optuna's tables or a study in a database
    (`sigma.store.optuna_storage.creation_lock`); a journal file needs no lock."""
    if storage is None or storage.startswith(JOURNAL):
        return nullcontext()
    # Imported here too: the workers of a journal file's study never load the store.
    from sigma.store.optuna_storage import creation_lock

    return creation_lock(storage)


def _load_study(
    name: str,
    storage: str | None,
    sampler: optuna.samplers.BaseSampler,
    first: Mapping[str, Any] | None = None,
) -> optuna.Study:
    """Create or load the study; a new one gets `first` as its first trial (enqueued under
    the lock, so processes starting together do not each enqueue it)."""
    with _schema_lock(storage):
        study = optuna.create_study(
            study_name=name,
            storage=_open_storage(storage),
            sampler=sampler,
            direction="maximize",
            load_if_exists=True,
        )
        if first is not None and not study.trials:
            study.enqueue_trial(dict(first))
    return study


def _first_trial(
    method: Method, space: Mapping[str, Dimension], defaults: Mapping[str, Any]
) -> dict[str, Any] | None:
    """TPE starts from the defaults (those inside the searched ranges): the best found is
    then never worse than them. The grid holds the defaults already."""
    if method != "tpe":
        return None
    return {k: defaults[k] for k, d in space.items() if d.contains(defaults[k])}


@dataclass(frozen=True, slots=True)
class _StartLine:
    """Lines spawned workers up with the parent so they really share the work: each says it
    is ready, then waits for the parent's go. Unlike a barrier, the parent sees a worker that
    died before it got there (it could not import the strategy) at once."""

    ready: Any
    go: Any

    def arrive(self) -> None:
        self.ready.release()
        self.go.wait(_START_TIMEOUT)

    def wait_for(self, children: Sequence[multiprocessing.process.BaseProcess]) -> None:
        """Return once every child arrived; WorkerFailed when one ended first or none came
        within the start timeout."""
        deadline = time.monotonic() + _START_TIMEOUT
        missing = len(children)
        while missing:
            if self.ready.acquire(timeout=0.1):
                missing -= 1
                continue
            dead = [c for c in children if c.exitcode is not None]
            if dead:
                raise WorkerFailed(
                    f"an optimisation worker ended with status {dead[0].exitcode} before it "
                    "started (its error is printed above)"
                )
            if time.monotonic() > deadline:  # pragma: no cover - a machine too slow to spawn
                raise WorkerFailed(f"optimisation workers did not start in {_START_TIMEOUT} s")
        self.go.set()


class WorkerFailed(RuntimeError):
    """A spawned optimisation worker could not start."""


def join_study(
    storage: str,
    study_name: str,
    objective: _Objective,
    n_trials: int,
    method: Method,
    seed: int,
    grid_points: int,
    start: Any = None,
    stop: Any = None,
    *,
    resolved: bool = False,
) -> None:
    """Work on a shared study until it holds `n_trials` completed trials (worker entry point;
    another machine calls it with the same storage and study name). `start` (a barrier) lines
    the workers up so they really share the work; `stop` (an event) ends after the running
    trial. `resolved`: `storage` already went through `study_storage` (spawned workers)."""
    if start is not None:
        # A spawned worker leaves Ctrl-C to its parent, which ends it through `stop`.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    defaults = default_params(objective.strategy)
    study = _load_study(
        study_name,
        storage if resolved else study_storage(storage),
        _sampler(method, objective.space, defaults, seed, grid_points),
        _first_trial(method, objective.space, defaults),
    )
    if start is not None:
        start.arrive()
    if stop is not None and stop.is_set():
        return  # the parent gave up (another worker could not start) or is done already
    _run_trials(study, objective, n_trials, None, stop)


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
    numeric parameter (`grid_values`).

    `workers` > 1 adds `workers - 1` spawned processes sharing the study: the `storage` given,
    or without one a temporary journal file removed at the end. The result is the same as with
    one process (for a grid the same best score over the same grid, for TPE a best within the
    bounds). `workers=None`: one process per core when the study looks long enough to repay
    starting them (`auto_workers`), else one. `progress(done, n_trials)` follows completed
    trials; setting `cancel` stops after the running trial and raises
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
    task = _Objective(
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
            n_trials
            if method != "grid"
            else min(n_trials, _grid_size(space, defaults, grid_points))
        )
        workers = auto_workers(expected * (time.perf_counter() - started + _TRIAL_OVERHEAD))
    search = _Search(task, method, n_trials, seed, grid_points, default_score)
    name = study_name or f"{strategy.name}-{method}-{seed}"
    if workers > 1 and storage is None:
        # Several processes share a study through storage: a journal file nobody else sees.
        with tempfile.TemporaryDirectory(prefix="sigma-optuna-", dir=_memory_dir()) as tmp:
            journal = f"{JOURNAL}{os.path.join(tmp, 'study.log')}"
            return _optimize(search, journal, name, workers, progress, cancel)
    if storage is not None:
        storage = study_storage(storage)  # once, for every worker
    return _optimize(search, storage, name, workers, progress, cancel)


_TRIAL_OVERHEAD = 0.01
"""Seconds a trial costs besides its backtest (the sampler, the study's bookkeeping)."""

_PARALLEL_FROM_SECONDS = 10.0
"""Studies expected to take less than this in one process run in one: a spawned worker needs
seconds to import numpy, numba and optuna, and a shared study's storage slows every trial."""


def auto_workers(expected_seconds: float) -> int:
    """Processes for a study expected to take `expected_seconds` in one: one per core when
    that is long enough to repay starting them, else one."""
    return default_workers() if expected_seconds >= _PARALLEL_FROM_SECONDS else 1


def grid_values(
    strategy: type[Strategy], space: Mapping[str, Dimension], points: int
) -> dict[str, list[Any]]:
    """The values a grid search tries per parameter: `points` evenly spaced over each range
    (both for a bool) and the default."""
    defaults = default_params(strategy)
    return {name: dim.grid(points, defaults[name]) for name, dim in space.items()}


def _grid_size(space: Mapping[str, Dimension], defaults: Mapping[str, Any], points: int) -> int:
    return math.prod(len(d.grid(points, defaults[n])) for n, d in space.items())


@dataclass(frozen=True, slots=True)
class _Search:
    """What one `optimize` call searches, for `_optimize`."""

    objective: _Objective
    method: Method
    n_trials: int
    seed: int
    grid_points: int
    default_score: float


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
    strategy, space = objective.strategy, objective.space
    defaults = default_params(strategy)
    grid_points = search.grid_points
    if workers > 1 and storage is None:
        raise ValueError("several workers share a study through storage")
    study = _load_study(
        name,
        storage,
        _sampler(method, space, defaults, seed, grid_points),
        _first_trial(method, space, defaults),
    )
    # "spawn": forking a process that holds database connections and numba state is unsafe.
    context = multiprocessing.get_context("spawn")
    start = _StartLine(context.Semaphore(0), context.Event())
    stop = context.Event()
    children = [
        context.Process(
            target=join_study,
            # A grid sampler's seed shuffles the grid, and a grid point's id is its place in
            # that order: workers sharing a grid must shuffle it alike, or a point one worker
            # marks done is another's free point (and some points are never tried).
            args=(
                storage,
                name,
                objective,
                n_trials,
                method,
                seed if method == "grid" else seed + i,
                grid_points,
                start,
                stop,
            ),
            kwargs={"resolved": True},
            daemon=True,
        )
        for i in range(1, workers)
    ]
    for child in children:
        child.start()
    try:
        if children:
            start.wait_for(children)
        _run_trials(study, objective, n_trials, progress, cancel)
    finally:
        # Cancelled (or failed) here: the other workers stop after their running trial, and
        # those still waiting at the start line are let go to see it.
        stop.set()
        start.go.set()
        for child in children:
            child.join()
    if cancel is not None and cancel.is_set():
        raise OptimizationCancelled(
            f"optimisation of {strategy.name} cancelled after {_completed(study)} trials",
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
        if not t.user_attrs.get(_INVALID) and t.value is not None
    ]
    if not valid:
        return first_valid(strategy, space), NO_SCORE
    score, params = max(valid, key=lambda pair: pair[0])
    return dict(params), score


# --- walk-forward -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fold:
    """Positions of one walk-forward step: fit on `train`, score on `test` right after it."""

    train: slice
    test: slice


def walk_forward_splits(
    n: int, *, folds: int = 3, train_size: int | None = None, anchored: bool = False
) -> list[Fold]:
    """`folds` consecutive test windows covering the end of `n` bars, each preceded by its
    training window (`train_size` bars, twice a test window by default; from bar 0 when
    `anchored`). Every training window ends where its test window starts."""
    if folds < 1:
        raise ValueError(f"folds must be >= 1, got {folds}")
    test_size = n // (folds + 2)
    train = train_size if train_size is not None else 2 * test_size
    if test_size < 2 or train < 2 or train + folds * test_size > n:
        raise ValueError(f"{n} bars are too few for {folds} folds")
    splits: list[Fold] = []
    for i in range(folds):
        test_stop = n - (folds - 1 - i) * test_size
        test_start = test_stop - test_size
        train_start = 0 if anchored else test_start - train
        splits.append(Fold(slice(train_start, test_start), slice(test_start, test_stop)))
    return splits


@dataclass(frozen=True, slots=True)
class FoldResult:
    """What one fold chose on its training window and how it did on its test window."""

    fold: Fold
    params: dict[str, Any]
    train_score: float
    test: Evaluation
    default_test: Evaluation
    search: OptimizationResult
    """The fit on the training window (its trials), for reports."""


@dataclass(frozen=True, slots=True)
class WalkForwardResult:
    """Out-of-sample scores per fold and the parameters to use from now on."""

    strategy: str
    folds: list[FoldResult]
    params: dict[str, Any]
    final: OptimizationResult
    """The refit on the newest window that chose `params` (its trials), for reports."""

    @property
    def oos(self) -> float | None:
        """Mean test-window score over the folds that got one (None when none did): an
        excluded fold is left out, never averaged in."""
        return mean_score([f.test.scored for f in self.folds])

    @property
    def default_oos(self) -> float | None:
        """The same mean for the default parameters, for comparison."""
        return mean_score([f.default_test.scored for f in self.folds])

    @property
    def oos_score(self) -> float:
        """`oos` as the number strategies are ranked by (`NO_SCORE` when no fold scored)."""
        return NO_SCORE if self.oos is None else self.oos

    @property
    def default_oos_score(self) -> float:
        """`default_oos` ranked the same way."""
        return NO_SCORE if self.default_oos is None else self.default_oos

    @property
    def oos_trades(self) -> int:
        """Trades closed in all test windows."""
        return sum(f.test.n_trades for f in self.folds)


def walk_forward(
    strategy: type[Strategy],
    bars: pd.DataFrame,
    *,
    folds: int = 3,
    train_size: int | None = None,
    anchored: bool = False,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    trial_progress: Callable[[str, int, int], None] | None = None,
    **search: Any,
) -> WalkForwardResult:
    """Optimise on each training window, score the winner on the test window after it, then
    refit on the newest training-sized window for the parameters to use next.

    `search` goes to `optimize` (method, n_trials, seed, bounds, fill_model, margin,
    objective, ...).
    A fold only ever sees bars up to the end of its test window. `progress(step, folds + 1)`
    follows steps, `trial_progress(fit, done, n_trials)` the trials of each fit ("fold 1/3",
    "final"). Cancelled, it raises `OptimizationCancelled` with the running fit's best so far.
    """
    splits = walk_forward_splits(len(bars), folds=folds, train_size=train_size, anchored=anchored)
    keep = {k: search[k] for k in SCORING_ARGS if k in search}
    # Each fit is its own study: in shared storage, one name would mix the folds' trials.
    base_name = search.pop("study_name", None) or f"wf-{strategy.name}"
    defaults = default_params(strategy)
    results: list[FoldResult] = []
    for step, fold in enumerate(splits):
        if progress is not None:
            progress(step, folds + 1)
        train = bars.iloc[fold.train]
        best = _fit(
            f"fold {step + 1}/{folds}", strategy, train, f"{base_name}-fold{step}", cancel,
            trial_progress, search,
        )  # fmt: skip
        test = score_fold(strategy, best.params, bars, fold, **keep)
        default_test = score_fold(strategy, defaults, bars, fold, **keep)
        results.append(FoldResult(fold, best.params, best.score, test, default_test, best))
    if progress is not None:
        progress(folds, folds + 1)
    size = splits[-1].train.stop - splits[-1].train.start
    recent = bars.iloc[len(bars) - size :]
    final = _fit("final", strategy, recent, f"{base_name}-final", cancel, trial_progress, search)
    if progress is not None:
        progress(folds + 1, folds + 1)
    return WalkForwardResult(strategy.name, results, final.params, final)


SCORING_ARGS = (
    "initial_cash",
    "fill_model",
    "min_trades",
    "objective",
    "max_drawdown_pct",
    "margin",
)
"""The `optimize` arguments that also decide how a test window is scored (`score_fold`)."""


def score_fold(
    strategy: type[Strategy],
    params: Mapping[str, Any],
    bars: pd.DataFrame,
    fold: Fold,
    **scoring: Any,
) -> Evaluation:
    """How `params` did on `fold`'s test window, warmed up on its training window (`scoring`:
    the `SCORING_ARGS` of the search)."""
    window = bars.iloc[fold.train.start : fold.test.stop]
    score_from = fold.test.start - fold.train.start
    return evaluate(strategy, params, window, score_from=score_from, **scoring)


def _fit(
    label: str,
    strategy: type[Strategy],
    train: pd.DataFrame,
    name: str,
    cancel: threading.Event | None,
    trial_progress: Callable[[str, int, int], None] | None,
    search: dict[str, Any],
) -> OptimizationResult:
    """One walk-forward fit (`label`: which), its look-backs capped at half the window."""

    def progress(done: int, total: int) -> None:
        if trial_progress is not None:
            trial_progress(label, done, total)

    try:
        return optimize(
            strategy,
            train,
            max_int=len(train) // 2,
            cancel=cancel,
            study_name=name,
            progress=progress,
            **search,
        )
    except OptimizationCancelled as exc:
        raise OptimizationCancelled(f"{exc} (walk-forward {label})", exc.best) from None


def best_of(results: Sequence[WalkForwardResult]) -> WalkForwardResult:
    """The result with the highest out-of-sample score (ties: the first)."""
    if not results:
        raise ValueError("no walk-forward results to choose from")
    return max(results, key=lambda r: r.oos_score)


__all__ = [
    "JOURNAL",
    "MIN_TRADES",
    "NO_SCORE",
    "SCORING_ARGS",
    "Dimension",
    "Evaluation",
    "Fold",
    "FoldResult",
    "OptimizationCancelled",
    "OptimizationResult",
    "TrialRecord",
    "WalkForwardResult",
    "WorkerFailed",
    "auto_workers",
    "best_of",
    "default_params",
    "default_workers",
    "evaluate",
    "first_valid",
    "grid_values",
    "join_study",
    "optimize",
    "score_fold",
    "search_space",
    "walk_forward",
    "walk_forward_splits",
]

"""What one optimisation trial does, and how a process runs trials of a study.

`TrialObjective` suggests parameters within the search space, scores them (`evaluate`) and
records on the trial what the trial table shows (`TrialRecord`); it pickles, so spawned
workers run the same objective. `run_trials` runs trials until the study, shared or not,
holds the number asked for.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any, Protocol

import optuna
import pandas as pd

from sigma.engine.engine import ProgressFn
from sigma.engine.fill_model import FillModel
from sigma.engine.margin import MarginModel
from sigma.research.evaluation import evaluate
from sigma.research.objectives import NO_SCORE
from sigma.research.space import Dimension, default_params
from sigma.strategies.base import Strategy
from sigma.strategies.registry import portable, resolve

INVALID = "invalid"
"""Trial attribute of parameters the strategy refused."""


class _Flag(Protocol):
    """A threading or multiprocessing event."""

    def is_set(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class TrialObjective:
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
        """The trial's parameters, one per dimension of the space."""
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
            # and never the result (see `sigma.research.optimize`'s `_best`).
            trial.set_user_attr(INVALID, True)
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


def _rebuilt_objective(strategy: Any, *values: Any) -> TrialObjective:
    return TrialObjective(resolve(strategy), *values)


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
        """The record of a completed optuna trial (its attributes set by `TrialObjective`)."""
        attrs = trial.user_attrs
        excluded = attrs.get("excluded")
        if attrs.get(INVALID):
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


def count_completed(study: optuna.Study) -> int:
    """The study's completed trials, whichever process ran them."""
    return len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))


def run_trials(
    study: optuna.Study,
    objective: TrialObjective,
    n_trials: int,
    progress: ProgressFn | None,
    cancel: _Flag | None,
) -> None:
    """Run trials until the study holds `n_trials` completed ones (counted across workers)."""
    known = count_completed(study)
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
            known, mine = count_completed(study), 0
        done = known + mine
        if progress is not None:
            progress(min(done, n_trials), n_trials)
        if done >= n_trials or (cancel is not None and cancel.is_set()):
            study.stop()

    study.optimize(objective, callbacks=[_after], gc_after_trial=False)


__all__ = ["INVALID", "TrialObjective", "TrialRecord", "count_completed", "run_trials"]

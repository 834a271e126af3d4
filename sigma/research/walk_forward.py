"""Walk-forward validation: parameters are scored only on bars they were not fit on.

    wf = walk_forward(SmaCross, bars, folds=3, n_trials=30, seed=1)
    wf.oos_score, wf.params      # out-of-sample score, parameters refit on the newest window

Each fold optimises (`sigma.research.optimize`) on its training window and scores the winner
on the test window right after it; a last fit on the newest training-sized window chooses
the parameters to use from now on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from sigma.engine.engine import ProgressFn
from sigma.research.evaluation import Evaluation, evaluate
from sigma.research.objectives import NO_SCORE, mean_score
from sigma.research.optimize import OptimizationCancelled, OptimizationResult, optimize
from sigma.research.space import default_params
from sigma.strategies.base import Strategy


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
    "SCORING_ARGS",
    "Fold",
    "FoldResult",
    "WalkForwardResult",
    "best_of",
    "score_fold",
    "walk_forward",
    "walk_forward_splits",
]

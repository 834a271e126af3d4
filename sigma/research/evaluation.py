"""How parameters do on a window of bars: one backtest, scored by an objective on the part
of the window after its warm-up, as every optimisation trial and walk-forward test sees it.

    ev = evaluate(SmaCross, {"fast": 10, "slow": 40}, bars, score_from=200)
    ev.score, ev.excluded        # the objective's value, or NO_SCORE and why
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from sigma.engine.fast import BeyondFastPath, fast_backtest, fast_path_ok
from sigma.engine.fill_model import FillModel
from sigma.engine.margin import MarginModel
from sigma.research.backtest import run_backtest
from sigma.research.objectives import MIN_TRADES, NO_SCORE, measure
from sigma.research.quiet import quiet_margin
from sigma.research.space import default_params
from sigma.research.sweep import bars_per_year
from sigma.strategies.base import Strategy


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
        try:
            fast = fast_backtest(strategy, full, bars, initial_cash, fill_model)
        except BeyondFastPath:
            pass  # the exact engine below holds any quantity
        else:
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


__all__ = ["Evaluation", "evaluate"]

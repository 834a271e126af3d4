"""The validation that decides whether a trained model trades: the live strategies backtested
on the model's out-of-sample window with and without its entry gate.

Both runs see the same bars (the test window of `ml_tune.train`, which no training label
touches), the same costs and parameters; the only difference is the gate. The model is worth
using when the gated strategies end with more net profit than the ungated ones together.
`tune_symbol` trains, validates and stores one symbol's version (the `ml_tune` job).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pandas as pd

from sigma.engine.fill_model import FillModel
from sigma.research.backtest import run_backtest
from sigma.research.ml_gate import DEFAULT_THRESHOLD, ActiveModel, ActiveModels, MLGate
from sigma.research.ml_tune import TuneConfig, TuneResult, save_model, train
from sigma.store.handles import Session
from sigma.store.models import MLModel
from sigma.strategies.base import Strategy

StrategyFactory = Callable[[], Strategy]


@dataclass(frozen=True, slots=True)
class RunFigures:
    """One backtest's outcome."""

    net_pnl: Decimal
    return_pct: float
    sharpe: float | None
    trades: int
    vetoes: int

    def as_json(self) -> dict[str, Any]:
        """JSON-safe figures (money as exact text)."""
        return {
            "net_pnl": str(self.net_pnl),
            "return_pct": self.return_pct,
            "sharpe": self.sharpe,
            "trades": self.trades,
            "vetoes": self.vetoes,
        }


@dataclass(frozen=True, slots=True)
class GateComparison:
    """Every live strategy on the test window, gated and ungated (by strategy name)."""

    threshold: float
    start: str
    end: str
    bars: int
    gated: Mapping[str, RunFigures]
    ungated: Mapping[str, RunFigures]

    @property
    def gated_pnl(self) -> Decimal:
        """Net profit of the gated runs together."""
        return sum((r.net_pnl for r in self.gated.values()), start=Decimal(0))

    @property
    def ungated_pnl(self) -> Decimal:
        """Net profit of the ungated runs together."""
        return sum((r.net_pnl for r in self.ungated.values()), start=Decimal(0))

    @property
    def wins(self) -> bool:
        """True when the gate made the strategies more money than they made without it."""
        return self.gated_pnl > self.ungated_pnl

    def as_json(self) -> dict[str, Any]:
        """The comparison as stored in the model version's metrics."""
        return {
            "threshold": self.threshold,
            "start": self.start,
            "end": self.end,
            "bars": self.bars,
            "gated_pnl": str(self.gated_pnl),
            "ungated_pnl": str(self.ungated_pnl),
            "vetoes": sum(r.vetoes for r in self.gated.values()),
            "beats_ungated": self.wins,
            "strategies": {
                name: {"gated": self.gated[name].as_json(), "ungated": run.as_json()}
                for name, run in self.ungated.items()
            },
        }


def _run(
    factory: StrategyFactory,
    bars: pd.DataFrame,
    symbol: str,
    gate: MLGate | None,
    initial_cash: Decimal,
    fill_model: FillModel,
    cancel: threading.Event | None,
) -> tuple[str, RunFigures]:
    result, engine = run_backtest(
        factory(),
        bars,
        symbol=symbol,
        initial_cash=initial_cash,
        fill_model=fill_model,
        cancel=cancel,
        entry_gate=gate,
    )
    figures = RunFigures(
        net_pnl=result.final_equity - initial_cash,
        return_pct=float(result.stats["total_return_pct"]),
        sharpe=result.stats["sharpe"],
        trades=len(result.trades),
        vetoes=engine.vetoes,
    )
    return result.strategy, figures


def compare_gate(
    model: Any,
    bars: pd.DataFrame,
    strategies: Sequence[StrategyFactory],
    *,
    symbol: str,
    threshold: float = DEFAULT_THRESHOLD,
    initial_cash: Decimal = Decimal(10_000),
    fill_model: FillModel | None = None,
    cancel: threading.Event | None = None,
) -> GateComparison:
    """Backtest each strategy on `bars` without and with `model`'s gate."""
    costs = fill_model or FillModel()
    gate = MLGate(ActiveModels({symbol: ActiveModel(0, model)}), threshold)
    runs = [
        (
            _run(factory, bars, symbol, None, initial_cash, costs, cancel),
            _run(factory, bars, symbol, gate, initial_cash, costs, cancel),
        )
        for factory in strategies
    ]
    return GateComparison(
        threshold=threshold,
        start=bars.index[0].isoformat(),
        end=bars.index[-1].isoformat(),
        bars=len(bars),
        gated={name: figures for _, (name, figures) in runs},
        ungated={name: figures for (name, figures), _ in runs},
    )


@dataclass(frozen=True, slots=True)
class Tuned:
    """One symbol's stored version, the training report and the gate's validation."""

    row: MLModel
    result: TuneResult
    comparison: GateComparison


def tune_symbol(
    session: Session,
    symbol: str,
    bars: pd.DataFrame,
    strategies: Sequence[StrategyFactory],
    *,
    config: TuneConfig | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    initial_cash: Decimal = Decimal(10_000),
    fill_model: FillModel | None = None,
    cancel: threading.Event | None = None,
) -> Tuned:
    """Train on `bars`, validate the gate on the test window and store the version (active
    only when it beats both the baseline and the ungated strategies)."""
    result = train(bars, config)
    test = bars.loc[bars.index >= pd.Timestamp(result.metrics["test_start"])]
    comparison = compare_gate(
        result.model,
        test,
        strategies,
        symbol=symbol,
        threshold=threshold,
        initial_cash=initial_cash,
        fill_model=fill_model,
        cancel=cancel,
    )
    return Tuned(save_model(session, symbol, result, comparison), result, comparison)


__all__ = ["GateComparison", "RunFigures", "Tuned", "compare_gate", "tune_symbol"]

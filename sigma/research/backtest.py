"""Running a strategy over history: the backtest mode of the one engine."""

from __future__ import annotations

import threading
from decimal import Decimal

import numpy as np
import numpy.typing as npt
import pandas as pd

from sigma.engine.engine import (
    Engine,
    EngineConfig,
    EntryGate,
    ProgressFn,
    StrategyFailed,
    frame_to_data,
    run_engine,
)
from sigma.engine.fill_model import FillModel
from sigma.engine.margin import FUNDING_COLUMN, MarginModel
from sigma.engine.result import BacktestResult
from sigma.engine.stats import compute_stats
from sigma.strategies.base import Strategy


def run_backtest(
    strategy: Strategy,
    bars: pd.DataFrame,
    *,
    symbol: str,
    initial_cash: Decimal = Decimal(10_000),
    fill_model: FillModel | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    record_ledger: bool = False,
    entry_gate: EntryGate | None = None,
    margin: MarginModel | None = None,
    keep_records: bool = True,
) -> tuple[BacktestResult, Engine]:
    """Backtest `strategy` on a bar frame; returns the result and the finished engine
    (whose `ledger`, `orders` and `portfolio` hold the exact account history, and `vetoes`
    the entries `entry_gate` refused). An exception the strategy raises (in `init` or on a
    bar) is `StrategyFailed` saying where; bars no run can be made on (a NaN, infinite or
    non-positive price, times out of order) are `BadHistory` naming the bar and column.

    `margin` sets what the account may borrow (default: margin at leverage 1); the run stops
    when it is liquidated (`result.liquidation`). A ``funding_rate`` column in `bars` is
    charged on open positions of margin and futures accounts. Without `keep_records` the
    engine's `orders` and `fills`, and the result's `fills`, stay empty (for a caller that
    reads the trades and statistics only: less memory)."""
    if bars.empty:
        raise ValueError(f"no bars to backtest {strategy.name} on {symbol}")
    config = EngineConfig(
        initial_cash=initial_cash,
        fill_model=fill_model or FillModel(),
        record_ledger=record_ledger,
        entry_gate=entry_gate,
        margin=margin or MarginModel(),
        keep_records=keep_records,
    )
    data = frame_to_data(bars)  # bad bars are the data's fault, not the strategy's
    try:
        engine = Engine(strategy, symbol, data, config)
    except Exception as exc:  # raised by the strategy's init()
        raise StrategyFailed(strategy.name, symbol, exc) from exc
    use_funding(engine, bars)
    equity, in_market = run_engine(engine, progress=progress, cancel=cancel)
    result = backtest_result(engine, bars, equity, in_market, initial_cash)
    return result, engine


def use_funding(engine: Engine, bars: pd.DataFrame) -> None:
    """Have `engine` charge the ``funding_rate`` column of `bars`, when they have one."""
    if FUNDING_COLUMN in bars.columns:
        engine.margin.use_funding(bars[FUNDING_COLUMN].to_numpy(dtype=np.float64))


def backtest_result(
    engine: Engine,
    bars: pd.DataFrame,
    equity: npt.NDArray[np.float64],
    in_market: npt.NDArray[np.bool_],
    initial_cash: Decimal,
) -> BacktestResult:
    """The result and statistics of an engine that has run over `bars`."""
    final_equity = engine.equity()
    stats = compute_stats(
        pd.DatetimeIndex(bars.index),
        bars["close"].to_numpy(dtype=np.float64),
        equity,
        in_market,
        engine.trades,
        initial_cash,
        final_equity,
        engine.portfolio.fees_paid,
    )
    stats.update(engine.margin.summary())
    return BacktestResult(
        strategy=engine.strategy.name,
        symbol=engine.symbol,
        params=dict(engine.strategy.params),
        initial_cash=initial_cash,
        final_equity=final_equity,
        final_cash=engine.portfolio.cash,
        final_position=engine.portfolio.qty(engine.symbol),
        equity=pd.Series(equity, index=bars.index, name="equity"),
        trades=list(engine.trades),
        fills=list(engine.fills),
        bars=bars,
        stats=stats,
        open_trade=engine.portfolio.open_trade(
            engine.symbol,
            engine.last_price,
            pd.Timestamp(bars.index[-1]).to_pydatetime(),
            len(bars) - 1,
            engine.strategy.name,
        ),
        indicators=engine.strategy.indicator_lines(),
        fill_timing=engine.fill_model.timing,
        liquidation=engine.margin.liquidation,
    )

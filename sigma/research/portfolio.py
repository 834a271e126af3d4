"""Portfolio backtests: one strategy over several symbols, sharing one account.

Each symbol gets its own instance of the strategy and its own engine; the engines trade from
one `SharedAccount` (cash, positions, margin) and are stepped together over the union of
their bar times, in time order (symbols in the order given at equal times). An entry sized
as a fraction commits `stake` (default 1/number of symbols) of the account's free buying
power, so one symbol does not take the whole account. The margin is checked against the
whole account on every bar; a liquidation closes every symbol and stops the run.

Figures: the account's (`total`: equity over the union of times, buy-and-hold of an
equal-weight index of the symbols) and each symbol's as a sleeve (`symbols`): the initial
cash / number of symbols plus that symbol's cash flows and position value, so the sleeves'
equity adds up to the account's (less a deficit written off at a liquidation).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from sigma.engine.engine import (
    Cancelled,
    EngineConfig,
    ProgressFn,
    StrategyFailed,
    frame_to_data,
)
from sigma.engine.fill_model import FillModel
from sigma.engine.history_check import BadHistory
from sigma.engine.margin import Liquidation, MarginModel
from sigma.engine.result import BacktestResult
from sigma.engine.shared_account import SharedAccount, SharedAccountEngine
from sigma.engine.stats import compute_stats
from sigma.research.backtest import use_funding
from sigma.strategies.base import Strategy

PORTFOLIO = "portfolio"
"""The symbol name of the account's own result."""

_PROGRESS_EVERY = 10_000


@dataclass(slots=True)
class PortfolioResult:
    """A portfolio run: the account's result and each symbol's sleeve."""

    total: BacktestResult
    symbols: dict[str, BacktestResult]

    @property
    def liquidation(self) -> Liquidation | None:
        """When and why the account was liquidated, or None."""
        return self.total.liquidation


def run_portfolio(
    strategy: Strategy,
    bars: Mapping[str, pd.DataFrame],
    *,
    initial_cash: Decimal = Decimal(10_000),
    fill_model: FillModel | None = None,
    margin: MarginModel | None = None,
    stake: Decimal | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> PortfolioResult:
    """Backtest `strategy` (its parameters, a fresh instance per symbol) on the bar frames
    of `bars` (symbol -> frame) from one account; see the module's docstring."""
    if not bars:
        raise ValueError(f"no symbols to backtest {strategy.name} on")
    for symbol, frame in bars.items():
        if frame.empty:
            raise ValueError(f"no bars to backtest {strategy.name} on {symbol}")
    config = EngineConfig(
        initial_cash=initial_cash,
        fill_model=fill_model or FillModel(),
        stake=stake if stake is not None else Decimal(1) / len(bars),
        margin=margin or MarginModel(),
    )
    account = SharedAccount(initial_cash)
    for symbol, frame in bars.items():
        copy = type(strategy)(**strategy.params)
        try:  # bad bars are the data's fault, not the strategy's
            data = frame_to_data(frame)
        except BadHistory as exc:
            raise exc.of(symbol) from exc
        try:
            engine = SharedAccountEngine(copy, symbol, data, config, account)
        except Exception as exc:  # raised by the strategy's init()
            raise StrategyFailed(strategy.name, symbol, exc) from exc
        use_funding(engine, frame)
    union = pd.DatetimeIndex(sorted(set().union(*(frame.index for frame in bars.values()))))
    equity, in_market = _step_all(account, bars, union, progress, cancel)
    return _results(strategy, account, bars, union, equity, in_market, initial_cash)


def _step_all(
    account: SharedAccount,
    bars: Mapping[str, pd.DataFrame],
    union: pd.DatetimeIndex,
    progress: ProgressFn | None,
    cancel: threading.Event | None,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Step every engine through the union of bar times; the account's equity (float) and
    whether it held anything after each time."""
    n = len(union)
    slots = {s: union.get_indexer(frame.index) for s, frame in bars.items()}
    closes = {s: frame["close"].to_numpy(dtype=np.float64) for s, frame in bars.items()}
    nxt = dict.fromkeys(bars, 0)
    marks = dict.fromkeys(bars, 0.0)
    equity = np.empty(n, dtype=np.float64)
    held = np.zeros(n, dtype=np.bool_)
    portfolio = account.portfolio
    for k in range(n):
        for symbol, engine in account.engines.items():
            i = nxt[symbol]
            if i < len(slots[symbol]) and slots[symbol][i] == k:
                try:
                    engine.step(i)
                except Exception as exc:
                    raise StrategyFailed(
                        engine.strategy.name, symbol, exc, i, engine.data.time(i)
                    ) from exc
                marks[symbol] = closes[symbol][i]
                nxt[symbol] = i + 1
        value = float(portfolio.cash)
        for symbol, pos in portfolio.positions.items():
            if pos.qty:
                value += float(pos.qty) * marks[symbol]
                held[k] = True
        equity[k] = value
        if k % _PROGRESS_EVERY == 0:
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"cancelled at bar {k} of {n}")
            if progress is not None:
                progress(k, n)
    if progress is not None:
        progress(n, n)
    return equity, held


def _results(
    strategy: Strategy,
    account: SharedAccount,
    bars: Mapping[str, pd.DataFrame],
    union: pd.DatetimeIndex,
    equity: npt.NDArray[np.float64],
    in_market: npt.NDArray[np.bool_],
    initial_cash: Decimal,
) -> PortfolioResult:
    portfolio = account.portfolio
    liquidation = next(
        (e.margin.liquidation for e in account.engines.values() if e.margin.liquidation), None
    )
    margin_stats = _margin_stats(account, liquidation)
    share = initial_cash / len(bars)
    sleeves = {}
    for symbol, frame in bars.items():
        engine = account.engines[symbol]
        sleeves[symbol] = _sleeve(engine, frame, share, margin_stats)
    index = equal_weight_index(bars, union)
    final = account.equity()
    trades = sorted(portfolio.trades, key=lambda t: (t.exit_ts, t.symbol))
    stats = compute_stats(
        union, index, equity, in_market, trades, initial_cash, final, portfolio.fees_paid
    )
    stats["symbols"] = len(bars)
    stats.update(margin_stats)
    frame = pd.DataFrame(
        {"open": index, "high": index, "low": index, "close": index, "volume": 0.0},
        index=pd.DatetimeIndex(union, name="ts"),
    )
    total = BacktestResult(
        strategy=strategy.name,
        symbol=PORTFOLIO,
        params=dict(strategy.params),
        initial_cash=initial_cash,
        final_equity=final,
        final_cash=portfolio.cash,
        final_position=sum((pos.qty for pos in portfolio.positions.values()), Decimal(0)),
        equity=pd.Series(equity, index=frame.index, name="equity"),
        trades=trades,
        fills=sorted((f for e in account.engines.values() for f in e.fills), key=lambda f: f.ts),
        bars=frame,
        stats=stats,
        liquidation=liquidation,
    )
    return PortfolioResult(total, sleeves)


def _margin_stats(account: SharedAccount, liquidation: Liquidation | None) -> dict[str, Any]:
    """The account's margin figures: the liquidation, refusals summed over the symbols."""
    guards = [engine.margin for engine in account.engines.values()]
    stats = {"account": guards[0].model.label, "liquidated": liquidation is not None}
    if liquidation is not None:
        stats.update(liquidation.summary())
    stats["orders_refused_margin"] = sum(g.refused for g in guards)
    stats["orders_reduced_margin"] = sum(g.reduced for g in guards)
    stats["funding_paid"] = sum((g.funding_paid for g in guards), Decimal(0))
    return stats


def _sleeve(
    engine: SharedAccountEngine,
    frame: pd.DataFrame,
    share: Decimal,
    margin_stats: dict[str, Any],
) -> BacktestResult:
    """One symbol's part of the account: `share` of the cash plus its own cash flows (fills
    and funding) and position value, over its own bars."""
    index = pd.DatetimeIndex(frame.index)
    close = frame["close"].to_numpy(dtype=np.float64)
    at = index.get_indexer(pd.DatetimeIndex([f.ts for f in engine.fills], tz="UTC"))
    flows = np.zeros(len(index))
    moves = np.zeros(len(index))
    cash = share
    qty = Decimal(0)
    for fill, k in zip(engine.fills, at.tolist(), strict=True):
        flow = -fill.signed_qty * fill.price - fill.fee
        cash += flow
        qty += fill.signed_qty
        flows[k] += float(flow)
        moves[k] += float(fill.signed_qty)
    for k, payment in engine.funding:
        cash -= payment
        flows[k] -= float(payment)
    held = np.cumsum(moves)
    equity = float(share) + np.cumsum(flows) + held * close
    final = cash + qty * Decimal(repr(float(close[-1])))
    trades = [t for t in engine.portfolio.trades if t.symbol == engine.symbol]
    fees = sum((f.fee for f in engine.fills), Decimal(0))
    stats = compute_stats(index, close, equity, held != 0, trades, share, final, fees)
    stats.update(margin_stats)
    stats["orders_refused_margin"] = engine.margin.refused
    stats["orders_reduced_margin"] = engine.margin.reduced
    stats["funding_paid"] = engine.margin.funding_paid
    return BacktestResult(
        strategy=engine.strategy.name,
        symbol=engine.symbol,
        params=dict(engine.strategy.params),
        initial_cash=share,
        final_equity=final,
        final_cash=cash,
        final_position=qty,
        equity=pd.Series(equity, index=frame.index, name="equity"),
        trades=trades,
        fills=list(engine.fills),
        bars=frame,
        stats=stats,
        liquidation=engine.margin.liquidation,
    )


def equal_weight_index(
    bars: Mapping[str, pd.DataFrame], union: pd.DatetimeIndex
) -> npt.NDArray[np.float64]:
    """The mean of the symbols' closes, each divided by its first, on `union` (a symbol is
    at 1 before its first bar and at its latest close between its bars)."""
    columns = [
        (frame["close"] / frame["close"].iloc[0]).reindex(union).ffill().fillna(1.0)
        for frame in bars.values()
    ]
    return np.asarray(pd.concat(columns, axis=1).mean(axis=1), dtype=np.float64)


__all__ = ["PORTFOLIO", "PortfolioResult", "equal_weight_index", "run_portfolio"]

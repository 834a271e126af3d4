"""Backtests with the adaptive layer: the exact engine stepped bar by bar, the `AdaptiveHook`
called after every bar exactly as the live bot calls it, and the on/off comparison.

As in live trading, every order that would add exposure first asks `AdaptiveHook.entry_pause`
(a disabled or throttled strategy, a news halt); a held order is rejected and recorded in
`AdaptiveRun.held`. Orders that reduce or keep the size of the position are never held.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sigma.domain import Fill, Order, OrderStatus, OrderType
from sigma.engine.engine import Cancelled, Engine, EngineConfig, ProgressFn, frame_to_data
from sigma.engine.fill_model import FillModel
from sigma.engine.portfolio import Portfolio
from sigma.engine.result import BacktestResult
from sigma.regime.adjuster import AdjusterConfig, ParamAdjuster, ParamUpdate, RegimePresets
from sigma.regime.detector import DetectorConfig, RegimeDetector, frame_bars
from sigma.regime.feedback import QualityAssessment, QualityConfig
from sigma.regime.hook import AdaptiveHook
from sigma.regime.loop import AdaptiveLoop, LoopDecision
from sigma.regime.news import NewsHandler
from sigma.regime.tester import StrategyTester, WalkForwardConfig
from sigma.reports.comparison import render_comparison_html
from sigma.research.backtest import backtest_result, run_backtest
from sigma.strategies.base import Strategy
from sigma.strategies.series import Data

__all__ = [
    "AdaptiveComparison",
    "AdaptiveRun",
    "HeldOrder",
    "PausingEngine",
    "build_hook",
    "compare_adaptive",
    "run_adaptive_backtest",
]


@dataclass(frozen=True, slots=True)
class HeldOrder:
    """An order the adaptive layer held back (rejected) instead of letting it add exposure."""

    ts: datetime
    strategy: str
    side: str
    reason: str

    @property
    def kind(self) -> str:
        """The reason without its details ("regime loop throttled this strategy", ...)."""
        return self.reason.split(":", 1)[0]


@dataclass(slots=True)
class AdaptiveRun:
    """A backtest with the adaptive layer on: the result, what changed, the regimes and the
    orders held back."""

    result: BacktestResult
    updates: list[ParamUpdate]
    decisions: list[LoopDecision]
    regimes: list[str]
    held: list[HeldOrder] = field(default_factory=list)

    def held_by_reason(self) -> dict[str, int]:
        """Held orders counted per kind of reason, most frequent first."""
        return dict(Counter(h.kind for h in self.held).most_common())


PauseFn = Callable[[str, str, datetime], str]


class PausingEngine(Engine):
    """The backtest engine with the live bot's adaptive rule (`TradingBot._adaptive_pause`): an
    order that would make |position| larger asks `pause` (`AdaptiveHook.entry_pause`) first and
    is rejected with its reason when held. Like the live engine, the position an order is judged
    against counts the market orders still pending, assumed filled at the decision price."""

    def __init__(
        self,
        strategy: Strategy,
        symbol: str,
        data: Data,
        config: EngineConfig,
        pause: PauseFn,
    ) -> None:
        self._pause = pause
        self.held: list[HeldOrder] = []
        super().__init__(strategy, symbol, data, config)

    def submit(self, order: Order) -> None:
        ts = self._bar_time(self.data.cursor.i)
        if self._adds_exposure(order):
            reason = self._pause(order.strategy or self.strategy.name, order.symbol, ts)
            if reason:
                order.created_at = ts
                order.status = OrderStatus.REJECTED
                self.orders.append(order)
                self.held.append(HeldOrder(ts, order.strategy, order.side.value, reason))
                return
        super().submit(order)

    def _adds_exposure(self, order: Order) -> bool:
        if order.reduce_only:
            return False
        view = self._projection()
        before = view.qty(order.symbol)
        qty = (
            order.qty
            if order.qty is not None
            else self._resolve_qty(order, self._expected(order), view)
        )
        return abs(before + qty * order.side.sign) > abs(before)

    def _expected(self, order: Order) -> Decimal:
        price = self.last_price
        return (
            price if order.type is OrderType.LIMIT else self.fill_model.slipped(order.side, price)
        )

    def _projection(self) -> Portfolio:
        view = self.portfolio.snapshot()
        for pending in self.pending:
            if pending.type is not OrderType.MARKET:
                continue
            price = self._expected(pending)
            qty = self._resolve_qty(pending, price, view)
            if qty > 0:
                ts = pending.created_at or self._bar_time(self.data.cursor.i)
                fee = self.fill_model.fee(qty, price)
                view.apply(
                    Fill(
                        pending.client_order_id,
                        pending.symbol,
                        pending.side,
                        qty,
                        price,
                        fee,
                        ts,
                        pending.strategy,
                    )
                )
        view.trades.clear()
        return view


def build_hook(
    presets: RegimePresets,
    *,
    detector: DetectorConfig | None = None,
    adjuster: AdjusterConfig | None = None,
    quality: QualityConfig | None = None,
    news: NewsHandler | None = None,
    shadow: bool = True,
    tester: WalkForwardConfig | None = None,
) -> AdaptiveHook:
    """An `AdaptiveHook` over a fresh loop (no sinks: add them to `hook.sinks`)."""
    loop = AdaptiveLoop(
        ParamAdjuster(presets, adjuster),
        detector=RegimeDetector(detector),
        quality=QualityAssessment(quality),
        news=news,
    )
    gate = None if tester is None else StrategyTester(tester)
    return AdaptiveHook(loop, shadow=shadow, tester=gate)


def run_adaptive_backtest(
    strategy: Strategy,
    bars: pd.DataFrame,
    *,
    symbol: str,
    hook: AdaptiveHook,
    initial_cash: Decimal = Decimal(10_000),
    fill_model: FillModel | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    progress_every: int = 1_000,
) -> AdaptiveRun:
    """Backtest `strategy` with `hook` adapting it after each bar (as `run_backtest`, plus the
    hook); orders adding exposure ask `hook.entry_pause` first, as live. Raises `Cancelled`
    when `cancel` is set."""
    if bars.empty:
        raise ValueError(f"no bars to backtest {strategy.name} on {symbol}")
    config = EngineConfig(initial_cash=initial_cash, fill_model=fill_model or FillModel())
    engine = PausingEngine(strategy, symbol, frame_to_data(bars), config, hook.entry_pause)
    hook.attach(engine)
    n = len(bars)
    close = bars["close"].to_numpy(dtype=np.float64)
    equity = np.empty(n, dtype=np.float64)
    in_market = np.zeros(n, dtype=np.bool_)
    updates: list[ParamUpdate] = []
    decisions_before = len(hook.decisions)
    regimes: list[str] = []
    for i, bar in enumerate(frame_bars(bars, symbol)):
        engine.step(i)
        qty = float(engine.portfolio.qty(symbol))
        equity[i] = float(engine.portfolio.cash) + qty * close[i]
        in_market[i] = qty != 0.0
        updates.extend(hook.on_bar(symbol, bar))
        regimes.append(hook.loop.states[symbol].regime.value)
        if i % progress_every == 0:
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"cancelled at bar {i} of {n}")
            if progress is not None:
                progress(i, n)
    if progress is not None:
        progress(n, n)
    result = backtest_result(engine, bars, equity, in_market, initial_cash)
    decisions = list(hook.decisions)[decisions_before:]
    return AdaptiveRun(result, updates, decisions, regimes, engine.held)


@dataclass(slots=True)
class AdaptiveComparison:
    """The same strategy and bars with the adaptive layer off and on."""

    off: BacktestResult
    on: AdaptiveRun
    rows: list[tuple[str, Any, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        keys = (
            ("return %", "total_return_pct"),
            ("max drawdown %", "max_drawdown_pct"),
            ("sharpe", "sharpe"),
            ("trades", "n_trades"),
            ("win rate %", "win_rate_pct"),
        )
        self.rows = [(label, self.off.stats[k], self.on.result.stats[k]) for label, k in keys]
        self.rows.append(("parameter changes", 0, len(self.on.updates)))
        self.rows.append(("entries held", 0, len(self.on.held)))

    def write_html(self, path: str | Path) -> Path:
        """The comparison report (equity curves, statistics side by side, the verdict)."""
        off = replace(self.off, strategy=f"{self.off.strategy} adaptive off")
        on = replace(self.on.result, strategy=f"{self.on.result.strategy} adaptive on")
        ranking = sorted(
            ((r.strategy, float(r.stats["sharpe"] or 0.0)) for r in (off, on)),
            key=lambda item: -item[1],
        )
        changes = f" {len(self.on.updates)} parameter changes, {len(self.on.decisions)} decisions"
        held = self.on.held_by_reason()
        changes += (
            f", {len(self.on.held)} entries held ("
            + "; ".join(f"{kind}: {n}" for kind, n in held.items())
            + ")."
            if held
            else ", no entries held."
        )
        html = render_comparison_html([off, on], ranking, self.verdict() + "." + changes)
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(html, encoding="utf-8")
        return target

    def verdict(self) -> str:
        """One honest sentence on what the comparison shows: the differences in return and
        drawdown (percentage points; within ``_SAME_PP`` counts as no difference) decide it,
        the Sharpe ratios are quoted beside them."""
        off, on = self.off.stats, self.on.result.stats
        d_ret = on["total_return_pct"] - off["total_return_pct"]
        d_dd = on["max_drawdown_pct"] - off["max_drawdown_pct"]  # > 0: shallower
        sharpe = f"sharpe {_sharpe(off)} -> {_sharpe(on)}"
        figures = f"return {d_ret:+.2f} pp, max drawdown {d_dd:+.2f} pp, {sharpe}"
        ret = _direction(d_ret)
        dd = _direction(d_dd)
        if ret >= 0 and dd >= 0 and ret + dd > 0:
            summary = "it helped on these bars"
        elif ret <= 0 and dd <= 0 and ret + dd < 0:
            summary = "it did not help on these bars"
        elif ret == dd == 0:
            summary = "no material difference on these bars"
        else:
            summary = "mixed: " + (
                "better return, deeper drawdown" if ret > 0 else "worse return, shallower drawdown"
            )
        return f"adaptive on vs off: {figures} - {summary}"


_SAME_PP = 0.1


def _sharpe(stats: Mapping[str, Any]) -> str:
    """The Sharpe ratio of a result, "n/a" when undefined (no variation in equity)."""
    value = stats["sharpe"]
    return "n/a" if value is None else f"{value:.2f}"


def _direction(delta: float) -> int:
    """+1 better, -1 worse, 0 within `_SAME_PP` percentage points."""
    if abs(delta) <= _SAME_PP:
        return 0
    return 1 if delta > 0 else -1


def compare_adaptive(
    strategy_factory: Callable[[], Strategy],
    bars: pd.DataFrame,
    *,
    symbol: str,
    presets: RegimePresets,
    hook_options: Mapping[str, Any] | None = None,
    initial_cash: Decimal = Decimal(10_000),
    fill_model: FillModel | None = None,
) -> AdaptiveComparison:
    """Backtest a fresh strategy from `strategy_factory` without and with the adaptive layer."""
    off, _ = run_backtest(
        strategy_factory(), bars, symbol=symbol, initial_cash=initial_cash, fill_model=fill_model
    )
    hook = build_hook(presets, **dict(hook_options or {}))
    on = run_adaptive_backtest(
        strategy_factory(),
        bars,
        symbol=symbol,
        hook=hook,
        initial_cash=initial_cash,
        fill_model=fill_model,
    )
    return AdaptiveComparison(off, on)

"""The metrics and alert bridge: what the running components report (decisions, rejected
ticks, the price filter's verdicts, regime changes, the accounts' equity) turned into
Prometheus metrics, action-log rows and alerts.

The components report through small callbacks and sinks; only this module knows that a
rejected order is both a counter and, when a breaker refused it, an alert.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sigma.domain import Tick
from sigma.notify import Alert, NotificationService, parse_severity
from sigma.ops.action_log import ActionLogger
from sigma.ops.metrics import Metrics

if TYPE_CHECKING:
    from sigma.regime.adjuster import ParamUpdate
    from sigma.regime.loop import LoopDecision
    from sigma.risk.anomaly import Verdict
    from sigma.risk.feed_health import HealthChange
    from sigma.runtime.bot import TradingBot


class Telemetry:
    """One process's metrics, action log and notifier, and the callbacks that feed them."""

    def __init__(
        self, metrics: Metrics, actions: ActionLogger, notifier: NotificationService
    ) -> None:
        self.metrics = metrics
        self.actions = actions
        self.notifier = notifier

    def alert(self, severity: str, message: str, details: dict[str, Any]) -> None:
        """Raise an alert from synchronous code (deduplicated by message)."""
        self.notifier.submit(
            Alert(
                parse_severity(severity),
                "sigma",
                message,
                dedupe_key=message[:200],
                details=details,
            )
        )

    def tick_rejected(self, reason: str) -> None:
        """Count a price message the bot could not decode."""
        self.metrics.ticks_rejected.labels(reason=reason).inc()

    def on_decision(self, kind: str, info: dict[str, Any]) -> None:
        """A bot decision (order sent, rejected or failed; a fill) into the action log and the
        metrics; an order a breaker or the kill switch refused, or one that failed, also
        alerts."""
        details = {k: v for k, v in info.items() if k not in ("strategy", "symbol")}
        self.actions.log(kind, strategy=info.get("strategy"), symbol=info.get("symbol"), **details)
        if kind == "fill":
            self.metrics.fills.labels(symbol=info["symbol"], side=info["side"]).inc()
            return
        if kind == "liquidated":
            self.alert(
                "critical",
                f"{info.get('strategy')} {info.get('symbol')}: account liquidated, position "
                f"closed and strategy stopped: {info.get('liquidation_reason')}",
                info,
            )
            return
        if kind in ("order_sent", "order_rejected", "order_failed"):
            self.metrics.signals.labels(
                strategy=info["strategy"], symbol=info["symbol"], action=info["side"]
            ).inc()
        if kind == "order_sent":
            self.metrics.orders_submitted.labels(
                strategy=info["strategy"], symbol=info["symbol"], side=info["side"]
            ).inc()
        elif kind in ("order_rejected", "order_failed"):
            reason = str(info.get("reason", ""))
            self.metrics.orders_rejected.labels(reason=reason.split(":")[0][:40]).inc()
            if kind == "order_failed" or "breaker" in reason or "kill switch" in reason:
                self.alert(
                    "warning" if kind == "order_rejected" else "error",
                    f"{info.get('strategy')} {info.get('symbol')}: order refused: {reason}",
                    info,
                )

    def feed_callbacks(
        self, source: str
    ) -> tuple[
        Callable[[Tick], Awaitable[None]],
        Callable[[float], Awaitable[None]],
        Callable[[float], Awaitable[None]],
    ]:
        """A price feed's reports from `source`: each tick received (counted), prices stale
        for so many seconds (a gauge and an alert), and back after so many (cleared)."""

        async def counted(tick: Tick) -> None:
            self.metrics.ticks_received.labels(symbol=tick.symbol).inc()

        async def stale(seconds: float) -> None:
            self.metrics.feed_stale.set(1)
            await self.notifier.notify(
                "error", "feed", f"no prices from {source} for {seconds:.0f}s", dedupe_key="stale"
            )

        async def recovered(seconds: float) -> None:
            self.metrics.feed_stale.set(0)
            await self.notifier.notify("info", "feed", f"prices back after {seconds:.0f}s")

        return counted, stale, recovered

    async def account_gauges(
        self,
        bot: TradingBot,
        account: str,
        initial_cash: Decimal,
        stop: asyncio.Event,
        every: float = 1.0,
    ) -> None:
        """Sample the bot's booked equity into the equity, PnL and drawdown gauges of
        ``account`` until ``stop``."""
        gauge = self.metrics.equity.labels(account=account)
        pnl = self.metrics.pnl.labels(account=account)
        # Each (strategy, symbol) engine trades its own account, opened with initial_cash.
        capital = initial_cash * len(bot.engines)
        peak = Decimal(0)
        while not stop.is_set():
            equity = bot.equity()
            peak = max(peak, equity)
            gauge.set(float(equity))
            pnl.set(float(equity - capital))
            if peak > 0:
                self.metrics.drawdown_pct.set(float((peak - equity) / peak * 100))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)


class RegimeGauges:
    """An adaptive-layer sink (`sigma.regime.hook.AdaptiveSink`) that exports the regime the
    loop detects on each symbol as `Metrics.regime`."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def on_update(self, update: ParamUpdate) -> None:
        """Parameter changes are in the action log, not in a metric."""

    def on_decision(self, decision: LoopDecision) -> None:
        """Follow ``regime_change`` decisions; the others are not regimes."""
        if decision.kind == "regime_change":
            self.metrics.regime_changed(decision.symbol, str(decision.details["regime"]))


class PriceFilterGauges:
    """A `sigma.risk.feed_health.HealthSink` that exports the price filter's rejections, its
    rejection ratio and the entry pause per symbol."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        # The ratio last exported per symbol: it runs per tick, and mostly stays at 0.
        self._ratios: dict[str, float] = {}

    def on_verdict(self, symbol: str, verdict: Verdict, ratio: float) -> None:
        """Count a rejection and follow the ratio."""
        if not verdict.ok:
            self.metrics.price_filter_rejected.labels(symbol=symbol, reason=verdict.reason).inc()
        if self._ratios.get(symbol) != ratio:
            self._ratios[symbol] = ratio
            self.metrics.price_filter_rejection_ratio.labels(symbol=symbol).set(ratio)

    def on_change(self, change: HealthChange) -> None:
        """1 while the symbol's entries are paused."""
        self.metrics.entries_paused.labels(symbol=change.symbol).set(1 if change.pause else 0)

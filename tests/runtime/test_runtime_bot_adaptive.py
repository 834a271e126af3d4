"""The bot asks the regime loop before each new entry: a disabled strategy opens nothing, a
throttled one opens at most one position per `throttle_bars` bars; closing is never held."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sigma.domain import Order, Tick
from sigma.engine.engine import EngineConfig
from sigma.regime import BUILTIN_PRESETS, AdaptiveHook, AdaptiveLoop, ParamAdjuster
from sigma.risk.limits import RiskLimits, RiskManager
from sigma.runtime.bot import TradingBot
from sigma.strategies import Strategy

SYMBOL = "ACME"
T0 = datetime(2026, 3, 2, tzinfo=UTC)


class InAndOut(Strategy):
    """Long on even bars, flat on odd ones: one entry every two bars."""

    name = "in_and_out"

    def on_bar(self) -> None:
        if len(self.data) % 2:
            self.go_flat()
        else:
            self.go_long()


class Sent:
    def __init__(self) -> None:
        self.orders: list[Order] = []

    async def submit_all(self, orders: Sequence[tuple[Order, Decimal]]) -> Any:
        self.orders += [order for order, _ in orders]


async def run_bars(status: str, bars: int = 12) -> tuple[TradingBot, list[str]]:
    hook = AdaptiveHook(AdaptiveLoop(ParamAdjuster(BUILTIN_PRESETS)), throttle_bars=4)
    sent, decisions = Sent(), []
    bot = TradingBot(
        [(InAndOut(), SYMBOL)],
        timeframe=timedelta(minutes=1),
        config=EngineConfig(initial_cash=Decimal(10_000)),
        risk=RiskManager(RiskLimits(max_open_orders=None, max_drawdown=None)),
        executor=sent,
        decode=lambda raw: None,
        on_decision=lambda kind, info: decisions.append(f"{kind}: {info.get('reason', '')}"),
        adaptive=hook,
    )
    hook.status[(InAndOut.name, SYMBOL)] = status
    for minute in range(bars + 1):
        await bot.on_tick(Tick(SYMBOL, T0 + timedelta(minutes=minute), Decimal(100), Decimal(1)))
        await bot.drain()
        # The worker's fills come back before the next bar, as they do live.
        for engine in bot.engines.values():
            for coid, fill in list(engine.inflight.items()):
                engine.on_fill(fill)
                assert coid not in engine.inflight
    return bot, decisions


async def test_a_disabled_strategy_opens_nothing() -> None:
    bot, decisions = await run_bars("disable")
    assert bot.counters.orders_sent == 0
    assert (
        decisions.count("order_rejected: regime loop disabled this strategy on this symbol")
        == bot.counters.orders_rejected
        > 0
    )


async def test_a_throttled_strategy_enters_once_per_window_and_always_closes() -> None:
    kept, _ = await run_bars("keep")
    throttled, decisions = await run_bars("throttle")
    held = [d for d in decisions if "throttled" in d]
    assert held and throttled.counters.orders_rejected == len(held)
    # Every entry it made was closed again, and it made fewer of them than unthrottled.
    assert 0 < throttled.counters.orders_sent < kept.counters.orders_sent
    assert throttled.counters.orders_sent % 2 == 0

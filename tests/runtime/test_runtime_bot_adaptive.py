"""The bot asks the regime loop before each new entry: a disabled strategy opens nothing, a
throttled one opens at most one position per `throttle_bars` bars; closing is never held."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sigma.domain import Bar
from sigma.engine.engine import EngineConfig
from sigma.regime import BUILTIN_PRESETS, AdaptiveHook, AdaptiveLoop, ParamAdjuster, ParamUpdate
from sigma.risk.limits import RiskLimits, RiskManager
from sigma.runtime.bot import TradingBot
from sigma.strategies import Strategy
from tests.runtime.bot_helpers import Sent, trade_minutes

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


def in_and_out_bot(hook: AdaptiveHook, sent: Sent, decisions: list[str]) -> TradingBot:
    return TradingBot(
        [(InAndOut(), SYMBOL)],
        timeframe=timedelta(minutes=1),
        config=EngineConfig(initial_cash=Decimal(10_000)),
        risk=RiskManager(RiskLimits(max_open_orders=None, max_drawdown=None)),
        executor=sent,
        decode=lambda raw: None,
        on_decision=lambda kind, info: decisions.append(f"{kind}: {info.get('reason', '')}"),
        adaptive=hook,
    )


async def run_bars(status: str, bars: int = 12) -> tuple[TradingBot, list[str]]:
    hook = AdaptiveHook(AdaptiveLoop(ParamAdjuster(BUILTIN_PRESETS)), throttle_bars=4)
    decisions: list[str] = []
    bot = in_and_out_bot(hook, Sent(), decisions)
    hook.status[(InAndOut.name, SYMBOL)] = status
    await trade_minutes(bot, SYMBOL, T0, bars)
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


async def test_a_bars_orders_leave_before_the_regime_loop_works_on_that_bar() -> None:
    """The regime loop's work on a bar (over 10 ms at p99 under load) never delays the
    orders already decided on it."""
    hook = AdaptiveHook(AdaptiveLoop(ParamAdjuster(BUILTIN_PRESETS)))
    sent = Sent()
    sent_when_the_loop_ran: list[int] = []
    on_bar = hook.on_bar

    def watched(symbol: str, bar: Bar) -> list[ParamUpdate]:
        sent_when_the_loop_ran.append(len(sent.orders))
        return on_bar(symbol, bar)

    hook.on_bar = watched  # type: ignore[method-assign]
    await trade_minutes(in_and_out_bot(hook, sent, []), SYMBOL, T0, 3)
    # Flat on the first bar (nothing to do), then in, then out: each bar's order was out
    # before the loop ran on that bar.
    assert sent_when_the_loop_ran == [0, 1, 2]

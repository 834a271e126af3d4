"""Protective orders in the bot: a stop-loss is watched on every tick, not only when a bar
closes, and its trigger goes to the order queue once, as a reduce-only market order with its
own client order id."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bot_helpers import Sent

from sigma.domain import OrderStatus, OrderType, Side, Tick
from sigma.engine.engine import EngineConfig
from sigma.risk.limits import RiskLimits, RiskManager
from sigma.runtime.bot import TradingBot
from tests.scripted import FromBarZero

SYMBOL = "ACME"
START = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
D1 = Decimal(1)


class Bracketed(FromBarZero):
    """Buys 5 with a stop-loss at 95 and a take-profit at 110 on its first bar."""

    name = "bracketed"

    def on_bar(self) -> None:
        if self.bar_index == 0:
            self.buy(5, sl=95, tp=110, tag="first")


async def test_a_stop_loss_leaves_on_the_tick_that_reaches_it_and_only_once() -> None:
    sent = Sent()
    bot = TradingBot(
        [(Bracketed(), SYMBOL)],
        timeframe=timedelta(minutes=1),
        config=EngineConfig(initial_cash=Decimal(10_000)),
        risk=RiskManager(RiskLimits(max_open_orders=None, max_drawdown=None)),
        executor=sent,
        decode=lambda raw: None,
    )
    engine = bot.engines[("bracketed", SYMBOL)]

    async def tick(seconds: int, price: str) -> None:
        await bot.on_tick(Tick(SYMBOL, START + timedelta(seconds=seconds), Decimal(price), D1))
        await bot.drain()

    await tick(0, "100")
    await tick(60, "100")  # closes the first bar: the entry goes out
    (entry,) = sent.orders
    for fill in list(engine.inflight.values()):  # the worker fills it
        engine.on_fill(fill)
    assert engine.portfolio.qty(SYMBOL) == Decimal(5)
    await tick(70, "96")
    assert len(sent.messages) == 1  # above the stop: nothing
    await tick(80, "94.5")  # inside the bar: the stop-loss goes now
    assert len(sent.messages) == 2
    (stop,) = sent.messages[1]
    assert (stop.side, stop.qty, stop.type, stop.reduce_only) == (
        Side.SELL,
        Decimal(5),
        OrderType.MARKET,
        True,
    )
    assert stop.reason == "stop_loss" and stop.client_order_id != entry.client_order_id
    await tick(90, "94")
    await tick(120, "93")  # the next bar: still out, not sent again
    assert len(sent.messages) == 2
    engine.on_fill(engine.inflight[stop.client_order_id])
    (trade,) = engine.trades
    assert (trade.exit_reason, trade.tag, trade.exit_price) == (
        "stop_loss",
        "first",
        Decimal("94.5"),
    )
    statuses = {o.reason: o.status for o in engine.orders if o.is_protective}
    assert statuses == {"stop_loss": OrderStatus.FILLED, "take_profit": OrderStatus.CANCELLED}

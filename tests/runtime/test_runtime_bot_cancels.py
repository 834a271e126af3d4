"""Cancels from the strategy to the order queue: `go_long`/`go_flat` cancel the strategy's
resting orders live as the backtest does, and the engine forgets them once reported final."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bot_helpers import Sent

from sigma.domain import OrderStatus, Tick
from sigma.engine.engine import EngineConfig
from sigma.execution.events import OrderStatusEvent
from sigma.risk.limits import RiskLimits, RiskManager
from sigma.runtime.bot import TradingBot
from tests.scripted import FromBarZero

SYMBOL = "ACME"
START = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


class RestThenFlat(FromBarZero):
    """Bids below the market on the first bar, goes flat on the next."""

    name = "rest_then_flat"

    def init(self) -> None:
        self.bars = 0

    def on_bar(self) -> None:
        self.bars += 1
        if self.bars == 1:
            self.buy(qty=1, limit=90.0)
        elif self.bars == 2:
            self.go_flat()


def make_bot(sent: Sent) -> TradingBot:
    return TradingBot(
        [(RestThenFlat(), SYMBOL)],
        timeframe=timedelta(minutes=1),
        config=EngineConfig(initial_cash=Decimal(10_000)),
        risk=RiskManager(RiskLimits(max_open_orders=None, max_drawdown=None)),
        executor=sent,
        decode=lambda raw: None,
    )


async def bars(bot: TradingBot, first: int, last: int) -> None:
    for minute in range(first, last + 1):
        ts = START + timedelta(minutes=minute)
        await bot.on_tick(Tick(SYMBOL, ts, Decimal(100), Decimal(1)))
        await bot.drain()


def status(coid: str, value: str) -> bytes:
    return OrderStatusEvent(client_order_id=coid, symbol=SYMBOL, status=value, ts=START).to_bytes()


async def test_go_flat_sends_a_cancel_for_the_resting_order_once() -> None:
    sent = Sent()
    bot = make_bot(sent)
    await bars(bot, 0, 2)
    (order,) = sent.orders
    engine = next(iter(bot.engines.values()))
    assert list(engine.resting) == [order.client_order_id]
    assert sent.cancels == [order]
    engine.cancel_pending(SYMBOL)  # already asked: not again
    assert sent.cancels == [order]
    bot.on_status_message(status(order.client_order_id, "cancelled"))
    assert engine.resting == {} and order.status is OrderStatus.CANCELLED


async def test_a_cancel_that_could_not_be_sent_is_sent_again_later() -> None:
    sent = Sent()
    bot = make_bot(sent)
    await bars(bot, 0, 1)
    sent.down = True
    await bars(bot, 2, 2)
    engine = next(iter(bot.engines.values()))
    assert sent.cancels == [] and len(engine.resting) == 1
    sent.down = False
    engine.cancel_pending(SYMBOL)
    await bot._send_cancels(bot._cancels)
    assert len(sent.cancels) == 1


async def test_a_resting_order_filled_or_rejected_is_no_longer_resting() -> None:
    sent = Sent()
    bot = make_bot(sent)
    await bars(bot, 0, 1)
    engine = next(iter(bot.engines.values()))
    (order,) = sent.orders
    bot.on_status_message(status(order.client_order_id, "filled"))
    assert engine.resting == {} and order.status is not OrderStatus.CANCELLED
    engine.resting[order.client_order_id] = order
    engine.on_rejected(order.client_order_id, "venue said no")
    assert engine.resting == {}

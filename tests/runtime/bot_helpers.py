"""The TradingBot on its own: a recording order queue and a minute-by-minute market."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sigma.domain import Order, Tick
from sigma.runtime.bot import TradingBot


class Sent:
    """The order queue: records the orders of each message the bot sends, or, `down`,
    refuses them all."""

    def __init__(self, *, down: bool = False) -> None:
        self.messages: list[list[Order]] = []
        self.cancels: list[Order] = []
        self.down = down

    @property
    def orders(self) -> list[Order]:
        """Every order sent, in order."""
        return [order for message in self.messages for order in message]

    async def submit_all(self, orders: Sequence[tuple[Order, Decimal]]) -> Any:
        if self.down:
            raise ConnectionError("broker unreachable")
        self.messages.append([order for order, _ in orders])

    async def submit_cancels(self, orders: Sequence[Order]) -> Any:
        if self.down:
            raise ConnectionError("broker unreachable")
        self.cancels.extend(orders)


async def trade_minutes(bot: TradingBot, symbol: str, start: datetime, bars: int) -> None:
    """One tick a minute at 100 until `bars` bars closed; the worker's fills come back
    before the next bar, as they do live."""
    for minute in range(bars + 1):
        await bot.on_tick(Tick(symbol, start + timedelta(minutes=minute), Decimal(100), Decimal(1)))
        await bot.drain()
        for engine in bot.engines.values():
            for coid, fill in list(engine.inflight.items()):
                engine.on_fill(fill)
                assert coid not in engine.inflight

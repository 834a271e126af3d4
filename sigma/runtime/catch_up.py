"""What the running bot missed on the bus, read back from the store.

Redis Pub/Sub keeps nothing: the fills and order statuses the worker announced while the
bot's subscription was down (or while Redis was, when the worker's announcements failed)
never reach the bot, though the store has every one. So whenever the bot's feedback
subscriptions are established again, it reads back the orders it still counts as open
(`Unsettled`), books the stored fills it has not booked and the final statuses
(`FeedbackCatchUp`): its strategy accounts (cash, positions, what orders in flight hold) are
the booked ones again without a restart, and the protective orders waiting for an entry's
fill are armed as if its report had come.

A fill is known by what the worker announces of it (`account_fill`: client order id,
quantity, price, time), which the bot rebuilds from the stored fill and the instrument's
currencies (its engine config holds them); each open order keeps the keys of the fills booked
of it, so a fill read back and announced late, or the reverse, is booked once. The store is
read only after the subscription is back, so a fill booked later is announced to a bot that
listens.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sigma.domain.orders import FillIdentity
from sigma.engine.live import DispatchEngine
from sigma.execution.events import FillEvent, OrderStatusEvent, account_fill
from sigma.store.handles import SessionFactory
from sigma.store.restart import BookedOrder, booked_orders

if TYPE_CHECKING:
    from sigma.runtime.bot import TradingBot

__all__ = ["SETTLED", "FeedbackCatchUp", "Unsettled", "booked_fills"]

log = logging.getLogger(__name__)


SETTLED = frozenset({"filled", "cancelled", "rejected"})
"""Stored statuses that never change again (a dead-lettered order may still be booked)."""

_MAX_PAUSE = 60.0
_MAX_HEARD = 10_000


class Unsettled:
    """The orders the bot sent or adopted that the store may still change, each with the
    keys of the fills the bot booked of it.

    A final status heard on the bus does not end the following: fills and statuses come on
    two subscriptions, each on a connection of its own, so an order's final status may arrive
    while its fills were lost on the other. Such an order is still read back until the store
    shows it final (its fills are committed with that status); the `max_heard` latest of them
    are kept, so a bus that never drops cannot grow the set without bound."""

    def __init__(self, max_heard: int = _MAX_HEARD) -> None:
        self._fills: dict[str, set[FillIdentity]] = {}
        self._heard: dict[str, None] = {}
        """Orders whose final status the bus delivered, oldest first."""
        self.max_heard = max_heard

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._fills))

    def __len__(self) -> int:
        return len(self._fills)

    def __contains__(self, client_order_id: object) -> bool:
        return client_order_id in self._fills

    def track(self, client_order_id: str, booked: Iterable[FillEvent] = ()) -> None:
        """Follow `client_order_id`, whose fills `booked` the bot's account holds already."""
        self._fills.setdefault(client_order_id, set()).update(fill.identity for fill in booked)

    def new_fill(self, fill: FillEvent) -> bool:
        """Whether `fill` is not booked yet, recording that it is now. A fill of an order not
        followed is new here (the engine's own check of recent fills judges it)."""
        seen = self._fills.get(fill.client_order_id)
        if seen is None:
            return True
        key = fill.identity
        if key in seen:
            return False
        seen.add(key)
        return True

    def settle(self, client_order_id: str, status: str) -> None:
        """The bus delivered `status` for the order: when final, it is noted as heard, and
        followed until the store is read (see the class docstring)."""
        if status not in SETTLED or client_order_id not in self._fills:
            return
        self._heard[client_order_id] = None
        while len(self._heard) > self.max_heard:
            self.forget(next(iter(self._heard)))

    def heard(self, client_order_id: str) -> bool:
        """Whether the bus delivered a final status of the order."""
        return client_order_id in self._heard

    def forget(self, client_order_id: str) -> None:
        """Follow the order no more: the store showed it final with its fills, or it never
        left the bot (its send failed)."""
        self._fills.pop(client_order_id, None)
        self._heard.pop(client_order_id, None)


def booked_fills(order: BookedOrder, engine: DispatchEngine) -> list[FillEvent]:
    """The stored fills of `order` as the worker announced them to `engine`'s account."""
    instrument = engine.config.instruments.get(order.symbol)
    currencies = ("", "") if instrument is None else (instrument.base, instrument.quote)
    return [
        account_fill(
            order.client_order_id,
            order.symbol,
            order.side,
            order.strategy,
            order.mode,
            fill,
            currencies,
        )
        for fill in order.fills
    ]


class FeedbackCatchUp:
    """Books into `bot` what the store holds of its unsettled orders that it missed (see
    the module docstring)."""

    def __init__(
        self, bot: TradingBot, sessions: SessionFactory, *, retry_seconds: float = 1.0
    ) -> None:
        self.bot = bot
        self.sessions = sessions
        self.retry_seconds = retry_seconds
        """The pause before reading again when the database is away (doubled per failure,
        up to a minute)."""
        self.runs = 0
        self.fills = 0
        """Fills booked from the store so far (missed on the bus)."""
        self.statuses = 0
        """Final statuses taken from the store so far."""
        self._lock = asyncio.Lock()

    async def __call__(self) -> None:
        """Read the unsettled orders back and book what the bot missed of them; a database
        that is away is read again after a pause until it answers."""
        async with self._lock:
            orders = await self._read()
            fills, statuses = self._book(orders)
            self.runs += 1
            self.fills += fills
            self.statuses += statuses
        if fills or statuses:
            log.warning(
                "bot: booked %d fills and %d final order statuses from the store that the bus "
                "did not deliver",
                fills,
                statuses,
            )

    async def _read(self) -> list[BookedOrder]:
        pause = self.retry_seconds
        while True:
            wanted = list(self.bot.unsettled)
            try:
                return await asyncio.to_thread(self._orders, wanted)
            except Exception as exc:
                log.warning(
                    "bot: could not read its open orders back (%s); again in %.0fs", exc, pause
                )
            await asyncio.sleep(pause)
            pause = min(_MAX_PAUSE, pause * 2)

    def _orders(self, client_order_ids: list[str]) -> list[BookedOrder]:
        with self.sessions() as session:
            return booked_orders(session, client_order_ids)

    def _book(self, orders: list[BookedOrder]) -> tuple[int, int]:
        """Book the fills and final statuses of `orders`; how many of each were new."""
        fills = statuses = 0
        now = datetime.now(UTC)
        for order in orders:
            engine = self.bot.engines.get((order.strategy, order.symbol))
            if engine is None or order.client_order_id not in self.bot.unsettled:
                continue
            fills += sum(self.bot.on_fill(fill) for fill in booked_fills(order, engine))
            if order.status not in SETTLED:
                continue
            if not self.bot.unsettled.heard(order.client_order_id):
                statuses += 1
                self.bot.on_status(
                    OrderStatusEvent(
                        client_order_id=order.client_order_id,
                        symbol=order.symbol,
                        status=order.status,
                        reason="read back from the store: the bus did not deliver it",
                        ts=now,
                    )
                )
            # Final in the store, committed with every fill of it: nothing more to read.
            self.bot.unsettled.forget(order.client_order_id)
        return fills, statuses

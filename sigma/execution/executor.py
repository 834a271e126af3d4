"""OrderExecutor: turns accepted orders into order events on the durable queue.

Each event carries its order's client order id, created once when the strategy made the
order; a publish that is retried after a lost confirm therefore cannot create a second order
(the worker recognises the id).

The orders decided together (on one bar) travel as one message, a batch: the worker gets
them at once and books them in one transaction, where one message each would reach it one
by one (the broker and the publishing channel hand them over in turn) and be committed one
after another.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

from sigma.bus.base import QUEUE_ORDERS, PublishInDoubt, WorkQueue
from sigma.domain import Order
from sigma.execution.events import CancelEvent, Mode, OrderBatch, OrderEvent

log = logging.getLogger(__name__)

# Retries in doubt go on while the broker is away: check at least this often for its return.
_MAX_RETRY_DELAY = 1.0


class OrderExecutor:
    """Publishes orders to `queue` with publisher confirms, retrying transient failures."""

    def __init__(
        self,
        queue: WorkQueue,
        *,
        mode: Mode = "paper",
        account: str = "default",
        attempts: int = 3,
        retry_delay: float = 0.2,
        doubt_timeout: float = 30.0,
    ) -> None:
        if attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {attempts}")
        self.queue = queue
        self.mode: Mode = mode
        self.account = account
        self.attempts = attempts
        self.retry_delay = retry_delay
        self.doubt_timeout = doubt_timeout

    def event(self, order: Order, ref_price: Decimal) -> OrderEvent:
        """The order event for a sized order decided at `ref_price`."""
        if order.qty is None:
            raise ValueError(f"order {order.client_order_id} is not sized")
        return OrderEvent(
            client_order_id=order.client_order_id,
            symbol=order.symbol,
            side=order.side,
            type=order.type,
            qty=order.qty,
            limit_price=order.limit_price,
            stop_price=order.stop_price,
            ref_price=ref_price,
            strategy=order.strategy,
            mode=self.mode,
            account=self.account,
            created_at=order.created_at or datetime.now(UTC),
            tif=order.tif,
            reduce_only=order.reduce_only,
        )

    async def submit(self, order: Order, ref_price: Decimal) -> OrderEvent:
        """Publish one order (see `submit_all`)."""
        (event,) = await self.submit_all([(order, ref_price)])
        return event

    async def submit_all(self, orders: Sequence[tuple[Order, Decimal]]) -> list[OrderEvent]:
        """Publish orders decided together, each `(order, price it was decided at)`, as one
        message (a lone order as its event, several as an `OrderBatch`); raises the last
        error when every attempt failed.

        An attempt whose outcome is in doubt (sent, never confirmed: `PublishInDoubt`) may
        have queued the orders, so reporting them failed could be false. Then the message is
        sent again with the same ids past `attempts`, until it is confirmed or
        `doubt_timeout` seconds have passed since the doubt arose; the worker books one of
        the copies."""
        if not orders:
            raise ValueError("no orders to submit")
        events = [self.event(order, ref_price) for order, ref_price in orders]
        first = events[0].client_order_id
        if len(events) == 1:
            body, message_id = events[0].to_bytes(), first
        else:
            body, message_id = OrderBatch(orders=events).to_bytes(), f"{first}+{len(events) - 1}"
        await self._publish(body, message_id)
        return events

    async def submit_cancels(self, orders: Sequence[Order]) -> list[CancelEvent]:
        """Publish a cancel request for each of `orders` (resting orders the strategy no
        longer wants), on the order queue behind the orders themselves; retried as orders
        are, and harmless when delivered twice (a cancelled order is not cancelled again)."""
        events = [
            CancelEvent(
                client_order_id=order.client_order_id,
                symbol=order.symbol,
                reason="cancelled by the strategy",
                created_at=datetime.now(UTC),
            )
            for order in orders
        ]
        for event in events:
            await self._publish(event.to_bytes(), f"cancel-{event.client_order_id}")
        return events

    async def _publish(self, body: bytes, message_id: str) -> None:
        """Publish one message, retrying failures (see `submit_all`)."""
        loop = asyncio.get_running_loop()
        doubt_since: float | None = None
        attempt = 0
        while True:
            attempt += 1
            try:
                await self.queue.publish(QUEUE_ORDERS, body, message_id=message_id)
                return
            except Exception as exc:
                if isinstance(exc, PublishInDoubt) and doubt_since is None:
                    doubt_since = loop.time()
                in_doubt = (
                    doubt_since is not None and loop.time() - doubt_since < self.doubt_timeout
                )
                if attempt >= self.attempts and not in_doubt:
                    raise
                log.warning(
                    "publishing order %s failed (attempt %d/%d%s): %r; retrying",
                    message_id,
                    attempt,
                    self.attempts,
                    ", in doubt: resending until confirmed" if in_doubt else "",
                    exc,
                )
                delay = self.retry_delay * 2 ** (attempt - 1)
                await asyncio.sleep(min(delay, _MAX_RETRY_DELAY) if in_doubt else delay)

"""OrderExecutor: turns an accepted order into an order event on the durable queue.

The event carries the order's client order id, created once when the strategy made the order;
a publish that is retried after a lost confirm therefore cannot create a second order (the
worker recognises the id).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from decimal import Decimal

from sigma.bus.base import QUEUE_ORDERS, WorkQueue
from sigma.domain import Order
from sigma.execution.events import Mode, OrderEvent

log = logging.getLogger(__name__)


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
    ) -> None:
        if attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {attempts}")
        self.queue = queue
        self.mode: Mode = mode
        self.account = account
        self.attempts = attempts
        self.retry_delay = retry_delay

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
        )

    async def submit(self, order: Order, ref_price: Decimal) -> OrderEvent:
        """Publish the order; raises the last error when every attempt failed."""
        event = self.event(order, ref_price)
        body = event.to_bytes()
        for attempt in range(1, self.attempts):
            try:
                await self.queue.publish(QUEUE_ORDERS, body, message_id=event.client_order_id)
                return event
            except Exception as exc:
                log.warning(
                    "publishing order %s failed (attempt %d/%d): %r; retrying",
                    event.client_order_id,
                    attempt,
                    self.attempts,
                    exc,
                )
                await asyncio.sleep(self.retry_delay * 2 ** (attempt - 1))
        await self.queue.publish(QUEUE_ORDERS, body, message_id=event.client_order_id)
        return event

from decimal import Decimal

import pytest
from execution_helpers import TS

from sigma.bus import QUEUE_ORDERS, InMemoryWorkQueue, PublishInDoubt
from sigma.domain import Order, OrderType, Side, TimeInForce
from sigma.execution.events import OrderBatch, OrderEvent
from sigma.execution.executor import OrderExecutor


class FlakyQueue(InMemoryWorkQueue):
    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def publish(self, queue: str, body: bytes, *, message_id: str) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("confirm lost")
        await super().publish(queue, body, message_id=message_id)


def order() -> Order:
    return Order(
        "ACME",
        Side.SELL,
        OrderType.LIMIT,
        qty=Decimal("2.5"),
        limit_price=Decimal(101),
        strategy="s1",
        created_at=TS,
    )


async def test_publishes_the_event_keyed_by_the_client_order_id() -> None:
    queue = InMemoryWorkQueue()
    sent = order()
    event = await OrderExecutor(queue, mode="live", account="main").submit(sent, Decimal(100))
    assert await queue.depth(QUEUE_ORDERS) == 1
    assert event.client_order_id == sent.client_order_id
    assert (event.mode, event.account, event.limit_price, event.ref_price) == (
        "live",
        "main",
        Decimal(101),
        Decimal(100),
    )
    roundtrip = OrderEvent.model_validate_json(event.to_bytes())
    assert roundtrip == event and roundtrip.qty == Decimal("2.5")


async def test_transient_failures_are_retried_with_the_same_id() -> None:
    queue = FlakyQueue(failures=2)
    event = await OrderExecutor(queue, attempts=3, retry_delay=0.001).submit(order(), Decimal(1))
    assert await queue.depth(QUEUE_ORDERS) == 1 and event.qty == Decimal("2.5")


async def test_gives_up_after_the_last_attempt() -> None:
    queue = FlakyQueue(failures=3)
    with pytest.raises(ConnectionError, match="confirm lost"):
        await OrderExecutor(queue, attempts=3, retry_delay=0.001).submit(order(), Decimal(1))
    assert await queue.depth(QUEUE_ORDERS) == 0


def test_unsized_order_and_bad_attempts_are_refused() -> None:
    executor = OrderExecutor(InMemoryWorkQueue())
    with pytest.raises(ValueError, match="is not sized"):
        executor.event(Order("ACME", Side.BUY, equity_fraction=Decimal(1)), Decimal(1))
    with pytest.raises(ValueError, match="attempts must be >= 1"):
        OrderExecutor(InMemoryWorkQueue(), attempts=0)


class DoubtfulQueue(InMemoryWorkQueue):
    """The first publish is sent but never confirmed; the next `down` find the broker gone."""

    def __init__(self, down: int) -> None:
        super().__init__()
        self.down = down
        self.calls = 0

    async def publish(self, queue: str, body: bytes, *, message_id: str) -> None:
        self.calls += 1
        if self.calls == 1:
            await super().publish(queue, body, message_id=message_id)  # the broker has it
            raise PublishInDoubt("connection closed before the confirm")
        if self.down:
            self.down -= 1
            raise ConnectionError("channel closed")
        await super().publish(queue, body, message_id=message_id)


async def test_an_order_in_doubt_is_resent_past_the_attempts_until_confirmed() -> None:
    """Reporting it failed could be false (the broker may hold it): it is sent again with the
    same id until confirmed, and the consumer sees two copies of one order."""
    queue = DoubtfulQueue(down=5)
    executor = OrderExecutor(queue, attempts=3, retry_delay=0.001)
    sent = order()
    event = await executor.submit(sent, Decimal(1))
    assert queue.calls == 7 and event.client_order_id == sent.client_order_id
    assert await queue.depth(QUEUE_ORDERS) == 2  # both with the order's id; the worker dedupes


async def test_doubt_is_given_up_after_the_doubt_timeout() -> None:
    queue = DoubtfulQueue(down=10**6)
    executor = OrderExecutor(queue, attempts=3, retry_delay=0.001, doubt_timeout=0.05)
    with pytest.raises(ConnectionError, match="channel closed"):
        await executor.submit(order(), Decimal(1))
    assert queue.calls > 3  # retried past the attempts while in doubt


class RecordingQueue(InMemoryWorkQueue):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[bytes, str]] = []

    async def publish(self, queue: str, body: bytes, *, message_id: str) -> None:
        self.sent.append((body, message_id))
        await super().publish(queue, body, message_id=message_id)


async def test_orders_decided_together_travel_as_one_message() -> None:
    queue = RecordingQueue()
    close, open_ = order(), order()
    events = await OrderExecutor(queue).submit_all([(close, Decimal(100)), (open_, Decimal(99))])
    assert [e.client_order_id for e in events] == [close.client_order_id, open_.client_order_id]
    assert [e.ref_price for e in events] == [Decimal(100), Decimal(99)]
    ((body, message_id),) = queue.sent
    assert message_id == f"{close.client_order_id}+1"
    assert OrderBatch.model_validate_json(body).orders == events
    with pytest.raises(ValueError, match="no orders"):
        await OrderExecutor(queue).submit_all([])


def test_the_event_carries_the_time_in_force_and_reduce_only() -> None:
    executor = OrderExecutor(InMemoryWorkQueue())
    ioc = Order("BTC", Side.SELL, OrderType.LIMIT, qty=Decimal(1), limit_price=Decimal(90),
                tif=TimeInForce.IOC, reduce_only=True, created_at=TS)  # fmt: skip
    event = executor.event(ioc, Decimal(90))
    assert (event.tif, event.reduce_only) == (TimeInForce.IOC, True)
    assert OrderEvent.model_validate_json(event.model_dump_json()) == event
    plain = executor.event(order(), Decimal(1))
    assert (plain.tif, plain.reduce_only) == (TimeInForce.GTC, False)

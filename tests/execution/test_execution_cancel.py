"""Cancels and the order follower with the paper broker: the cancel request on the queue,
cancels that come before the order is placed, the kill switch, time-outs, the executor's
cancel messages, a user stream that drops, and the follower's settings and budget."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from execution_helpers import TS, RecordingPubSub, order_event
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from sigma.bus import QUEUE_ORDERS, Delivery, InMemoryWorkQueue
from sigma.bus.base import PermanentError
from sigma.domain import Order, OrderStatus, OrderType, Side
from sigma.engine.fill_model import FillModel
from sigma.execution.booking import accept_order
from sigma.execution.broker import Capability, OrderUpdate, PaperBroker
from sigma.execution.events import CancelEvent, OrderStatusEvent
from sigma.execution.executor import OrderExecutor
from sigma.execution.follower import FollowerSettings, _Budget
from sigma.execution.worker import OrderWorker
from sigma.store import session_factory
from sigma.store.models import OrderRecord

_OPEN: list[OrderWorker] = []


@pytest.fixture
async def sessions(engine: Engine) -> AsyncIterator[sessionmaker[Session]]:
    yield session_factory(engine)
    while _OPEN:
        await _OPEN.pop().close()


def worker_on(
    sessions: sessionmaker[Session], broker: PaperBroker | None = None, **follow: object
) -> OrderWorker:
    alerts: list[tuple[str, str, dict[str, object]]] = []
    worker = OrderWorker(
        sessions,
        broker or PaperBroker(FillModel()),
        RecordingPubSub(),
        on_alert=lambda *alert: alerts.append(alert),
        follow=FollowerSettings(**follow),  # type: ignore[arg-type]
        mode="paper",  # the streaming test broker lacks IN_PROCESS but trades paper
    )
    worker.alerts = alerts  # type: ignore[attr-defined]
    _OPEN.append(worker)
    return worker


def resting(coid: str = "rest-0001", **extra: object) -> object:
    return order_event(coid, type=OrderType.LIMIT, limit_price=Decimal(90), **extra)


def cancel(coid: str = "rest-0001") -> CancelEvent:
    return CancelEvent(client_order_id=coid, symbol="ACME", created_at=TS)


def status(sessions: sessionmaker[Session], coid: str) -> str:
    with sessions() as session:
        return session.scalars(
            select(OrderRecord.status).where(OrderRecord.client_order_id == coid)
        ).one()


async def test_a_cancel_on_the_queue_cancels_the_resting_paper_order(
    sessions: sessionmaker[Session],
) -> None:
    worker = worker_on(sessions)
    await worker.execute(resting())  # type: ignore[arg-type]
    assert list(worker.follower.open) == ["rest-0001"]
    await worker.handle(Delivery(cancel().to_bytes(), "cancel-rest-0001"))
    assert status(sessions, "rest-0001") == "cancelled" and worker.follower.open == {}
    sent = [OrderStatusEvent.model_validate_json(m) for _, m in worker.pubsub.sent]  # type: ignore[union-attr]
    assert sent[-1].status == "cancelled"
    assert await worker.cancel(cancel()) == "cancelled"  # again: as it finished


async def test_bad_and_early_cancels(sessions: sessionmaker[Session]) -> None:
    worker = worker_on(sessions)
    with pytest.raises(LookupError, match="no such order on record"):
        await worker.handle(Delivery(cancel("nobody-01").to_bytes(), "c"))
    with pytest.raises(PermanentError, match="malformed cancel"):
        await worker.handle(Delivery(b'{"kind": "cancel", "symbol": "ACME"}', "c"))
    assert CancelEvent.parse(b"\xff") is None and CancelEvent.parse(b"[1]") is None


class SlowPaper(PaperBroker):
    """Does not know an order at its first cancel (the order is still on its way)."""

    def __init__(self) -> None:
        super().__init__(FillModel())
        self.unknown_once = True

    async def cancel(self, client_order_id: str, symbol: str):  # type: ignore[no-untyped-def]
        if self.unknown_once:
            self.unknown_once = False
            return None
        return await super().cancel(client_order_id, symbol)


async def test_a_cancel_before_the_order_is_placed_cancels_it_once_placed(
    sessions: sessionmaker[Session],
) -> None:
    worker = worker_on(sessions, SlowPaper())
    event = resting("early-001")
    await worker.execute(event)  # type: ignore[arg-type]
    assert await worker.cancel(cancel("early-001")) == "new"  # the broker has not seen it
    worker.follower.follow(event, "new", None)  # type: ignore[arg-type]  # as once placed
    for _ in range(200):
        if status(sessions, "early-001") == "cancelled":
            break
        await asyncio.sleep(0.01)
    assert status(sessions, "early-001") == "cancelled"


async def test_the_kill_switch_cancels_the_resting_orders_and_alerts(
    sessions: sessionmaker[Session],
) -> None:
    worker = worker_on(sessions)
    for n in range(2):
        await worker.execute(resting(f"kill-000{n}"))  # type: ignore[arg-type]
    assert await worker.follower.cancel_all("paper", "kill switch on") == 2
    assert {status(sessions, f"kill-000{n}") for n in range(2)} == {"cancelled"}
    ((severity, message, details),) = worker.alerts  # type: ignore[attr-defined]
    assert severity == "critical" and details["cancelled"] == 2 and "cancelled 2" in message


async def test_time_outs_cancel_old_resting_limits_only(sessions: sessionmaker[Session]) -> None:
    worker = worker_on(sessions, order_timeout=60)
    old = TS - timedelta(minutes=5)
    # The time-out counts on the wall clock from when the worker placed the order, not from
    # the market time the order was decided at (a replay's market runs behind).
    worker.follower._now = lambda: old  # type: ignore[method-assign]
    await worker.execute(resting("old-00001", created_at=TS))  # type: ignore[arg-type]
    stop = order_event("stop-0001", Side.SELL, type=OrderType.STOP, stop_price=Decimal(50))
    await worker.execute(stop)
    worker.follower._now = lambda: TS  # type: ignore[method-assign]
    await worker.execute(resting("new-00001", created_at=old))  # type: ignore[arg-type]
    assert await worker.follower.poll_once() == 1  # paper orders are never polled
    assert status(sessions, "old-00001") == "cancelled"
    assert status(sessions, "new-00001") == status(sessions, "stop-0001") == "new"
    assert worker.follower.counts.timeouts == 1


class StreamingPaper(PaperBroker):
    """The paper broker with a user stream fed by the test (and without IN_PROCESS, so the
    follower polls it too)."""

    def __init__(self) -> None:
        super().__init__(FillModel())
        self.capabilities = frozenset({Capability.CANCEL, Capability.USER_STREAM})
        self.updates: asyncio.Queue[list[OrderUpdate] | Exception] = asyncio.Queue()
        self.lookups = 0

    async def lookup(self, client_order_id: str, symbol: str):  # type: ignore[no-untyped-def]
        self.lookups += 1
        return await super().lookup(client_order_id, symbol)

    async def watch_updates(self) -> list[OrderUpdate]:
        item = await self.updates.get()
        if isinstance(item, Exception):
            raise item
        return item


async def test_stream_updates_are_looked_up_and_a_dropped_stream_polls(
    sessions: sessionmaker[Session],
) -> None:
    broker = StreamingPaper()
    worker = worker_on(
        sessions,
        broker,
        poll_seconds=0.05,
        stream_poll_seconds=60,
        stream_settle_seconds=0.05,
        retry_seconds=0.01,
        kill_switch_seconds=0.05,
    )
    await worker.execute(resting("strm-0001"))  # type: ignore[arg-type]
    worker.follower.seen("strm-0001", "new", "x-1")
    stop = asyncio.Event()
    task = asyncio.create_task(worker.follower.run("paper", stop))
    try:
        for _ in range(200):
            if worker.follower.stream_up:
                break
            await asyncio.sleep(0.01)
        assert worker.follower.stream_up
        broker.on_price("ACME", Decimal(89))  # fills; the stream tells by exchange id only
        await broker.updates.put([OrderUpdate("", "x-1"), OrderUpdate("other", "x-9")])
        for _ in range(200):
            if not worker.follower.open:
                break
            await asyncio.sleep(0.01)
        assert status(sessions, "strm-0001") == "filled" and worker.follower.open == {}
        await broker.updates.put(ConnectionError("stream dropped"))
        for _ in range(200):
            if worker.follower.counts.errors:
                break
            await asyncio.sleep(0.01)
        assert worker.follower.counts.errors == 1 and worker.follower.counts.stream_updates == 2
    finally:
        stop.set()
        await task


async def test_an_order_the_broker_does_not_know_is_dropped_until_delivered_again(
    sessions: sessionmaker[Session],
) -> None:
    worker = worker_on(sessions)
    event = resting("lost-0001", mode="live")
    with sessions.kw["bind"].begin() as conn:
        accept_order(conn, event)  # type: ignore[arg-type]
    assert await worker.follower.load("live") == 1
    assert await worker.follower.refresh("lost-0001") is None
    assert worker.follower.open == {} and await worker.follower.refresh("lost-0001") is None


async def test_executor_publishes_cancel_requests() -> None:
    queue = InMemoryWorkQueue()
    order = Order("ACME", Side.BUY, OrderType.LIMIT, qty=Decimal(1), limit_price=Decimal(90))
    (event,) = await OrderExecutor(queue).submit_cancels([order])
    assert await queue.depth(QUEUE_ORDERS) == 1
    assert CancelEvent.parse(event.to_bytes()) == event
    assert event.client_order_id == order.client_order_id


def test_follower_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="bad follower settings"):
        FollowerSettings(poll_seconds=0)
    with pytest.raises(ValueError, match="order_timeout"):
        FollowerSettings(order_timeout=0)


async def test_the_budget_spaces_requests() -> None:
    now = [0.0]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    budget = _Budget(4, lambda: now[0], sleep)
    for _ in range(3):
        await budget.take()
    assert waits == [0.25, 0.5]
    now[0] = 10.0
    await budget.take()
    assert waits == [0.25, 0.5]


def test_cancel_event_status_words() -> None:
    assert OrderStatus.CANCELLED.value == "cancelled"
    assert datetime.now(UTC) > TS


async def test_an_order_row_names_its_two_clocks(sessions: sessionmaker[Session]) -> None:
    worker = worker_on(sessions)
    decided = TS - timedelta(days=30)  # a replay's market, far behind the wall clock
    before = datetime.now(UTC)
    await worker.execute(resting("clock-0001", created_at=decided))  # type: ignore[arg-type]
    with sessions() as s:
        row = s.scalars(
            select(OrderRecord).where(OrderRecord.client_order_id == "clock-0001")
        ).one()
    assert row.decided_at == decided
    assert before <= row.created_at <= datetime.now(UTC)

"""The worker refuses what it must not execute (issue 23, item 4), on SQLite and PostgreSQL:
each refusal books nothing, records its reason (a rejected order row where one fits, and the
dead letter's reason), raises one alert and is dead-lettered once, without retries."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable
from decimal import Decimal
from typing import Any

import pytest
from execution_helpers import order_event
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from sigma.bus import Delivery, InMemoryWorkQueue
from sigma.domain import OrderStatus, OrderType
from sigma.execution.broker import Broker, BrokerReport, Capability, PaperBroker
from sigma.execution.events import OrderEvent
from sigma.execution.worker import OrderWorker
from sigma.store import session_factory
from sigma.store.models import FillRecord, OrderRecord, PositionRecord

Alert = tuple[str, str, dict[str, Any]]


class VenueStub:
    """A venue broker (no IN_PROCESS) that rests every order and counts what it was sent."""

    name = "venue-stub"
    capabilities: frozenset[str] = frozenset({Capability.CANCEL})

    def __init__(self) -> None:
        self.placed: list[OrderEvent] = []

    async def place(self, order: OrderEvent) -> BrokerReport:
        self.placed.append(order)
        return BrokerReport(order.client_order_id, OrderStatus.NEW, exchange_order_id="x1")

    async def lookup(self, client_order_id: str, symbol: str) -> BrokerReport | None:
        return None

    async def cancel(self, client_order_id: str, symbol: str) -> BrokerReport | None:
        return None

    async def cancel_all(self, symbols: Iterable[str] | None = None) -> int:
        return 0

    async def close(self) -> None:
        pass


_OPEN: list[OrderWorker] = []


@pytest.fixture
async def sessions(engine: Engine) -> AsyncIterator[sessionmaker[Session]]:
    yield session_factory(engine)
    while _OPEN:
        await _OPEN.pop().close()


def worker_for(
    sessions: sessionmaker[Session], broker: Broker | None = None, **options: Any
) -> tuple[OrderWorker, list[Alert]]:
    alerts: list[Alert] = []
    worker = OrderWorker(
        sessions,
        broker or PaperBroker(),
        on_alert=lambda *alert: alerts.append(alert),
        symbols=("ACME",),
        **options,
    )
    _OPEN.append(worker)
    return worker, alerts


async def deliver(worker: OrderWorker, body: bytes, message_id: str = "msg-1") -> Delivery:
    """Run `body` through a work queue that would retry three times; the dead letter, after
    checking the handler ran once."""
    queue = InMemoryWorkQueue(max_retries=3, retry_base_delay=0.01)
    calls: list[int] = []

    async def handler(delivery: Delivery) -> None:
        calls.append(delivery.attempt)
        await worker.handle(delivery)

    task = asyncio.create_task(queue.consume("orders", handler))
    await queue.publish("orders", body, message_id=message_id)
    dead: list[Delivery] = []
    for _ in range(500):
        dead += await queue.dead_letters("orders")
        if dead:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # a retry, were there one, would have been scheduled by now
    await queue.stop()
    await task
    assert calls == [1]  # refused once, never retried
    (letter,) = dead
    assert letter.headers["x-attempts"] == "1"
    return letter


def orders(sessions: sessionmaker[Session]) -> list[OrderRecord]:
    with sessions() as s:
        return list(s.scalars(select(OrderRecord)))


def nothing_filled(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        assert s.scalars(select(FillRecord)).all() == []
        assert all(p.qty == 0 for p in s.scalars(select(PositionRecord)))
    assert all(o.status != OrderStatus.FILLED.value for o in orders(sessions))


async def test_a_live_event_on_the_paper_worker_is_refused(
    sessions: sessionmaker[Session],
) -> None:
    worker, alerts = worker_for(sessions)
    letter = await deliver(worker, order_event("live-0001", mode="live").to_bytes())
    assert "Refused" in letter.headers["x-error"] and "live order" in letter.headers["x-error"]
    (row,) = orders(sessions)
    assert (row.status, row.mode) == ("rejected", "live")
    nothing_filled(sessions)
    assert len(alerts) == 1 and "live order on a paper worker" in alerts[0][1]


async def test_a_paper_event_on_a_live_venue_worker_is_refused_before_the_venue_sees_it(
    sessions: sessionmaker[Session],
) -> None:
    venue = VenueStub()
    worker, alerts = worker_for(sessions, venue)
    assert worker.mode == "live"
    letter = await deliver(worker, order_event("papr-0001").to_bytes())
    assert "paper order on a live worker" in letter.headers["x-error"]
    assert venue.placed == []
    assert [o.status for o in orders(sessions)] == ["rejected"]
    assert len(alerts) == 1


def test_a_paper_broker_cannot_be_a_live_worker(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(ValueError, match="cannot trade live"):
        OrderWorker(sessions, PaperBroker(), mode="live")


async def test_an_unknown_symbol_is_refused(sessions: sessionmaker[Session]) -> None:
    worker, alerts = worker_for(sessions)
    letter = await deliver(worker, order_event("sym-00001", symbol="EVIL").to_bytes())
    assert "symbol EVIL is not traded here" in letter.headers["x-error"]
    assert [o.status for o in orders(sessions)] == ["rejected"]
    nothing_filled(sessions)
    assert len(alerts) == 1


@pytest.mark.parametrize(
    "fields",
    [
        {"qty": Decimal("1e-20")},
        {"type": OrderType.LIMIT, "limit_price": Decimal("1e-11")},
        {"type": OrderType.STOP, "stop_price": Decimal("4e-11")},
    ],
    ids=["qty", "limit_price", "stop_price"],
)
async def test_a_value_that_rounds_to_zero_is_refused(
    sessions: sessionmaker[Session], fields: dict[str, Any]
) -> None:
    worker, alerts = worker_for(sessions)
    event = order_event("tiny-0001", **fields)
    letter = await deliver(worker, event.to_bytes())
    assert "rounds to zero" in letter.headers["x-error"]
    assert [o.status for o in orders(sessions)] == ["rejected"]
    nothing_filled(sessions)
    assert len(alerts) == 1


async def test_a_value_too_large_for_the_store_is_refused_without_a_row(
    sessions: sessionmaker[Session],
) -> None:
    worker, alerts = worker_for(sessions)
    letter = await deliver(worker, order_event("huge-0001", qty="1e30").to_bytes())
    assert "does not fit the store" in letter.headers["x-error"]
    assert orders(sessions) == []
    assert len(alerts) == 1


@pytest.mark.parametrize("kind", ["limit", "stop"])
async def test_an_order_without_the_price_its_type_needs_is_dead_lettered_once(
    sessions: sessionmaker[Session], kind: str
) -> None:
    worker, alerts = worker_for(sessions)
    body = order_event("nopx-0001").model_dump(mode="json") | {"type": kind}
    letter = await deliver(worker, json.dumps(body).encode())
    assert f"a {kind} order needs {kind}_price" in letter.headers["x-error"]
    assert "PermanentError" in letter.headers["x-error"]
    assert orders(sessions) == []
    assert len(alerts) == 1


@pytest.mark.parametrize("venue", [False, True], ids=["paper", "venue"])
async def test_a_reused_client_order_id_with_another_payload_is_refused(
    sessions: sessionmaker[Session], venue: bool
) -> None:
    stub = VenueStub()
    broker: Broker = stub if venue else PaperBroker()
    mode = "live" if venue else "paper"
    first = order_event("same-0001", mode=mode, type=OrderType.LIMIT, limit_price=Decimal(90))
    # The first order rests (its limit is below the price), as it would on a venue.
    worker, alerts = worker_for(sessions, broker)
    await worker.execute(first)
    if venue:  # (a resting paper order redelivered on PostgreSQL: see the report, issue 23)
        await worker.handle(Delivery(first.to_bytes(), "msg-0"))  # the same order: harmless
    # Another worker process (the paper broker there never saw the id).
    other, other_alerts = worker_for(sessions, VenueStub() if venue else PaperBroker())
    reused = order_event(
        "same-0001", mode=mode, qty="99", type=OrderType.LIMIT, limit_price=Decimal(200)
    )
    letter = await deliver(other, reused.to_bytes())
    assert "reused with another order" in letter.headers["x-error"]
    assert "qty" in letter.headers["x-error"] and "limit_price" in letter.headers["x-error"]
    (row,) = orders(sessions)
    assert (row.status, row.qty, row.limit_price) == ("new", 10, 90)  # the first, untouched
    nothing_filled(sessions)
    assert alerts == [] and len(other_alerts) == 1
    if venue:
        assert stub.placed and all(sent == first for sent in stub.placed)
    else:
        assert await other.broker.lookup("same-0001", "ACME") is None  # nothing left to fill
        assert other.broker.on_price("ACME", Decimal(150)) == []  # type: ignore[attr-defined]


async def test_a_refused_order_in_a_batch_does_not_hold_back_the_others(
    sessions: sessionmaker[Session],
) -> None:
    worker, alerts = worker_for(sessions)
    good = order_event("good-0001").model_dump(mode="json")
    bad = order_event("evil-0001", symbol="EVIL").model_dump(mode="json")
    letter = await deliver(worker, json.dumps({"orders": [good, bad]}).encode())
    assert "symbol EVIL" in letter.headers["x-error"]
    status = {o.client_order_id: o.status for o in orders(sessions)}
    assert status == {"good-0001": "filled", "evil-0001": "rejected"}
    assert len(alerts) == 1

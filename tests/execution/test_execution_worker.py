"""The order worker on SQLite and PostgreSQL: rows written, idempotency, bad input, restarts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from execution_helpers import TS, RecordingPubSub, order_event
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from sigma.bus import CHANNEL_FILLS, CHANNEL_ORDER_STATUS, Delivery, InMemoryWorkQueue
from sigma.bus.base import PermanentError
from sigma.domain import OrderStatus, OrderType, Side
from sigma.engine.fill_model import FillModel
from sigma.execution.booking import accept_order
from sigma.execution.broker import BrokerFill, BrokerReport, PaperBroker
from sigma.execution.events import FillEvent, OrderBatch, OrderEvent, OrderStatusEvent
from sigma.execution.settlement import Holding
from sigma.execution.worker import OrderWorker
from sigma.store import init_db, session_factory
from sigma.store.models import FillRecord, LedgerEntry, OrderRecord, PositionRecord
from sigma.store.types import quantize
from sigma.venues.emulator.config import AccountConfig, ProtocolConfig, VenueConfig
from sigma.venues.emulator.server import VenueServer
from sigma.venues.factory import make_ccxt_broker

FEE = Decimal("0.001")


_OPEN: list[OrderWorker] = []


@pytest.fixture
async def sessions(engine: Engine) -> AsyncIterator[sessionmaker[Session]]:
    yield session_factory(engine)
    while _OPEN:  # a worker holds a database connection until it is closed
        await _OPEN.pop().close()


def opened(worker: OrderWorker) -> OrderWorker:
    _OPEN.append(worker)
    return worker


def make_worker(
    sessions: sessionmaker[Session], pubsub: RecordingPubSub | None = None
) -> OrderWorker:
    return opened(OrderWorker(sessions, PaperBroker(FillModel(commission_pct=FEE)), pubsub))


def record_only(sessions: sessionmaker[Session], event: OrderEvent) -> None:
    """The order row as the worker writes it before an exchange sees the order."""
    with sessions.kw["bind"].begin() as conn:
        accept_order(conn, event)


def rows(sessions: sessionmaker[Session], model: type) -> list:  # type: ignore[type-arg]
    with sessions() as s:
        return list(s.scalars(select(model)))


async def test_market_order_books_order_fill_position_and_ledger_together(
    sessions: sessionmaker[Session],
) -> None:
    bus = RecordingPubSub()
    worker = make_worker(sessions, bus)
    booked = await worker.execute(order_event(qty="10", ref="100"))
    assert booked is not None and booked.status == "filled"
    (order,) = rows(sessions, OrderRecord)
    assert (order.status, order.filled_qty, order.avg_fill_price) == ("filled", 10, 100)
    (fill,) = rows(sessions, FillRecord)
    assert (fill.qty, fill.price, fill.fee) == (Decimal(10), Decimal(100), Decimal(1))
    (pos,) = rows(sessions, PositionRecord)
    assert (pos.symbol, pos.strategy, pos.mode, pos.qty, pos.avg_price) == (
        "ACME",
        "s1",
        "paper",
        Decimal(10),
        Decimal(100),
    )
    (entry,) = rows(sessions, LedgerEntry)
    assert (entry.cash_delta, entry.fee, entry.reason) == (Decimal(-1001), Decimal(1), "fill")
    channels = [c for c, _ in bus.sent]
    assert channels == [CHANNEL_FILLS, CHANNEL_ORDER_STATUS]
    event = FillEvent.model_validate_json(bus.sent[0][1])
    assert (event.client_order_id, event.qty, event.price) == ("coid-0001", 10, 100)
    status = OrderStatusEvent.model_validate_json(bus.sent[1][1])
    assert status.status == "filled"


async def test_round_trip_keeps_the_accounting_invariants(sessions: sessionmaker[Session]) -> None:
    worker = make_worker(sessions)
    await worker.execute(order_event("buy-000001", Side.BUY, "10", "100"))
    await worker.execute(order_event("sell-00001", Side.SELL, "4", "110"))
    await worker.execute(order_event("sell-00002", Side.SELL, "10", "90"))
    (pos,) = rows(sessions, PositionRecord)
    assert (pos.qty, pos.avg_price) == (Decimal(-4), Decimal(90))
    assert pos.realized_pnl == Decimal(4 * 10 - 6 * 10)
    ledger = rows(sessions, LedgerEntry)
    cash = Decimal(10_000) + sum((e.cash_delta for e in ledger), start=Decimal(0))
    fees = sum((e.fee for e in ledger), start=Decimal(0))
    assert fees == Decimal("1") + Decimal("0.44") + Decimal("0.9")
    # equity = cash + position value, and equals start + realised + unrealised - fees
    mark = Decimal(95)
    equity = cash + pos.qty * mark
    assert equity == Decimal(10_000) + pos.realized_pnl + pos.qty * (mark - pos.avg_price) - fees
    for order in rows(sessions, OrderRecord):  # fills sum to the order quantity
        with sessions() as s:
            total = s.scalar(
                select(func.sum(FillRecord.qty)).where(
                    FillRecord.client_order_id == order.client_order_id
                )
            )
        assert total == order.qty == order.filled_qty


async def test_orders_booked_in_one_batch_match_the_same_orders_booked_one_by_one(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    """Concurrent orders share one transaction and its round trips; the rows are those of
    booking them one at a time, and an id seen twice in the batch trades once."""
    flips = [
        order_event("buy-000001", Side.BUY, "10", "100"),
        order_event("sell-00001", Side.SELL, "4", "110"),
        order_event("buy-000001", Side.BUY, "10", "100"),  # the same order delivered twice
        order_event("sell-00002", Side.SELL, "10", "90"),
        order_event("other-0001", Side.BUY, "3", "50", symbol="OTHER"),
    ]
    worker = make_worker(sessions)
    results = await asyncio.gather(*(worker.execute(e) for e in flips))
    # One batch per position (lane), and one for the duplicate's lookup.
    assert worker.db.transactions <= 3
    assert [r is None for r in results] == [False, False, True, False, False]
    assert worker.duplicates == 1
    batched = _book_state(sessions)

    one_by_one = opened(
        OrderWorker(session_factory(engine), PaperBroker(FillModel(commission_pct=FEE)))
    )
    with sessions.kw["bind"].begin() as conn:
        for table in ("ledger", "fills", "positions", "orders"):
            conn.execute(text(f"DELETE FROM {table}"))
    for event in flips:
        await one_by_one.execute(event)
    assert _book_state(sessions) == batched
    positions = {
        p.symbol: (p.qty, p.avg_price, p.realized_pnl) for p in rows(sessions, PositionRecord)
    }
    assert positions == {
        "ACME": (Decimal(-4), Decimal(90), Decimal(4 * 10 - 6 * 10)),
        "OTHER": (Decimal(3), Decimal(50), Decimal(0)),
    }


def _book_state(sessions: sessionmaker[Session]) -> tuple[Any, ...]:
    """Orders, fills, positions and ledger as comparable values (no ids or clock times)."""
    return (
        sorted(
            (o.client_order_id, o.status, o.filled_qty, o.avg_fill_price)
            for o in rows(sessions, OrderRecord)
        ),
        sorted((f.client_order_id, f.qty, f.price, f.fee) for f in rows(sessions, FillRecord)),
        sorted(
            (p.symbol, p.qty, p.avg_price, p.realized_pnl) for p in rows(sessions, PositionRecord)
        ),
        sorted(
            (e.client_order_id, e.cash_delta, e.fee, e.realized_pnl)
            for e in rows(sessions, LedgerEntry)
        ),
    )


async def test_redelivered_event_never_trades_twice(sessions: sessionmaker[Session]) -> None:
    worker = make_worker(sessions)
    event = order_event()
    await worker.execute(event)
    assert await worker.execute(event) is None
    await opened(OrderWorker(sessions, PaperBroker())).execute(event)  # another worker process
    assert len(rows(sessions, FillRecord)) == 1 and worker.duplicates == 1
    assert rows(sessions, PositionRecord)[0].qty == Decimal(10)


async def test_booking_the_same_report_twice_adds_nothing(sessions: sessionmaker[Session]) -> None:
    worker = make_worker(sessions)
    event = order_event(qty="5")
    await worker.execute(event)
    report = await worker.broker.place(event)
    booked = await worker.book("ACME", Side.BUY, "s1", "paper", report)
    assert booked.fills == () and booked.status == "filled"
    assert len(rows(sessions, LedgerEntry)) == 1


async def test_partial_fills_accumulate_and_cannot_exceed_the_quantity(
    sessions: sessionmaker[Session],
) -> None:
    worker = make_worker(sessions)
    event = order_event(type=OrderType.LIMIT, limit_price=Decimal(90), qty="10")
    await worker.execute(event)  # rests at the paper broker

    def part(fill_id: str, qty: str, price: str) -> BrokerFill:
        return BrokerFill(fill_id, Decimal(qty), Decimal(price), Decimal(0), TS)

    first = BrokerReport(
        event.client_order_id, OrderStatus.PARTIALLY_FILLED, (part("a", "4", "90"),)
    )
    booked = await worker.book("ACME", Side.BUY, "s1", "paper", first)
    assert booked.status == "partially_filled"
    both = BrokerReport(
        event.client_order_id,
        OrderStatus.FILLED,
        (part("a", "4", "90"), part("b", "6", "85")),
        exchange_order_id="X-1",
    )
    assert (await worker.book("ACME", Side.BUY, "s1", "paper", both)).status == "filled"
    (order,) = rows(sessions, OrderRecord)
    assert order.avg_fill_price == Decimal(87) and order.exchange_order_id == "X-1"
    too_much = BrokerReport(event.client_order_id, OrderStatus.FILLED, (part("c", "1", "85"),))
    with pytest.raises(RuntimeError, match="exceed quantity"):
        await worker.book("ACME", Side.BUY, "s1", "paper", too_much)
    assert len(rows(sessions, FillRecord)) == 2  # the bad booking was rolled back whole


async def test_rejected_order_is_recorded_with_an_alert(sessions: sessionmaker[Session]) -> None:
    alerts: list[tuple[str, str]] = []
    worker = opened(
        OrderWorker(
            sessions, PaperBroker(), on_alert=lambda sev, msg, details: alerts.append((sev, msg))
        )
    )
    event = order_event()
    await worker.execute(event)  # fills; now pretend the venue had refused a second order
    second = order_event("coid-0002")
    await worker.execute(second)
    report = BrokerReport("coid-0002", OrderStatus.REJECTED, reason="insufficient balance")
    with sessions.begin() as s:  # reset to open so the rejection applies
        row = s.scalars(select(OrderRecord).where(OrderRecord.client_order_id == "coid-0002")).one()
        s.delete(row.fills[0])
        s.execute(LedgerEntry.__table__.delete().where(LedgerEntry.client_order_id == "coid-0002"))
        row.status, row.filled_qty = "new", Decimal(0)
    assert (await worker.book("ACME", Side.BUY, "s1", "paper", report)).status == "rejected"
    assert alerts == [("warning", "order coid-0002 rejected by paper: insufficient balance")]


async def test_report_for_an_unknown_order_is_an_error(sessions: sessionmaker[Session]) -> None:
    worker = make_worker(sessions)
    with pytest.raises(RuntimeError, match="unknown order nope"):
        await worker.book("ACME", Side.BUY, "s1", "paper", BrokerReport("nope", OrderStatus.NEW))


async def test_malformed_event_is_a_permanent_error_naming_the_field(
    sessions: sessionmaker[Session],
) -> None:
    worker = make_worker(sessions)
    body = order_event().model_dump(mode="json")
    body["qty"] = "-3"
    with pytest.raises(PermanentError, match=r"malformed order event 'm-1': qty: .*greater than 0"):
        await worker.handle(Delivery(json.dumps(body).encode(), "m-1"))
    with pytest.raises(PermanentError, match="body"):
        await worker.handle(Delivery(b"not json", "m-2"))
    assert rows(sessions, OrderRecord) == []


async def test_bus_failure_after_booking_loses_nothing(sessions: sessionmaker[Session]) -> None:
    worker = make_worker(sessions, RecordingPubSub(fail=True))
    await worker.execute(order_event())
    assert rows(sessions, OrderRecord)[0].status == "filled"


@pytest.mark.parametrize("venue", ["paper", "exchange"])
async def test_crash_between_broker_and_database_is_retried_into_one_fill(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch, venue: str
) -> None:
    """The queue redelivers after the handler fails; the broker returns the first outcome.
    Paper orders are recorded and booked in one transaction, exchange orders are on record
    before the exchange sees them and booked in a second one. The exchange is `sigma venue`
    speaking Upbit's protocol, reached through ccxt over HTTP."""
    async with VenueServer(_UPBIT_ONLY).serve() as server:
        await _crash_between_broker_and_database(sessions, monkeypatch, venue, server)


_UPBIT_ONLY = VenueConfig(
    port=0,
    source="manual",
    history_bars=0,
    binance=ProtocolConfig(enabled=False, maker_fee=Decimal(0), taker_fee=Decimal(0)),
    upbit=ProtocolConfig(
        maker_fee=Decimal("0.0005"),
        taker_fee=Decimal("0.0005"),
        accounts=[AccountConfig(api_key="k", secret="s", balances={"BTC": Decimal(1)})],
    ),
)


async def _crash_between_broker_and_database(
    sessions: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
    venue: str,
    server: VenueServer,
) -> None:
    if venue == "paper":
        worker, step = make_worker(sessions), "_book_placed"
        event = order_event()
    else:
        config = {**server.ccxt_config("upbit"), "apiKey": "k", "secret": "s"}
        broker = make_ccxt_broker("upbit", {"ACME": "BTC/KRW"}, config)
        worker, step = opened(OrderWorker(sessions, broker)), "_record"
        # A market sell fills exactly its quantity (Upbit's market buys spend an amount).
        event = order_event(side=Side.SELL, qty="0.001", ref="130000000", mode="live")
    original = getattr(worker, step)
    calls = {"n": 0}

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("database went away")
        return original(*args, **kwargs)

    monkeypatch.setattr(worker, step, flaky)
    queue = InMemoryWorkQueue(max_retries=3, retry_base_delay=0.01)
    task = asyncio.create_task(queue.consume("orders", worker.handle))
    await queue.publish("orders", event.to_bytes(), message_id=event.client_order_id)
    for _ in range(500):
        if [o.status for o in rows(sessions, OrderRecord)] == ["filled"]:
            break
        await asyncio.sleep(0.01)
    await queue.stop()
    await task
    await worker.broker.close()  # the worker leaves its broker to whoever built it
    assert calls["n"] == 2
    assert len(rows(sessions, FillRecord)) == 1
    if venue == "exchange":
        (held,) = server.upbit.orders("k")  # one order at the venue for the one intent
        assert held.client_id == event.client_order_id
        assert rows(sessions, OrderRecord)[0].exchange_order_id == server.upbit.uuid_of(held)
    assert await queue.dead_letters("orders") == []


async def test_reconcile_books_missing_fills_and_restores_resting_orders(
    sessions: sessionmaker[Session],
) -> None:
    first = make_worker(sessions)
    limit = order_event("limit-0001", type=OrderType.LIMIT, limit_price=Decimal(90))
    await first.execute(limit)
    market = order_event("mkt-000001")
    # The market order was recorded, then the process died before the broker saw it.
    record_only(sessions, market)
    # A worker whose broker already filled an order the database still shows open.
    known = order_event("known-0001")
    record_only(sessions, known)
    restarted = make_worker(sessions)
    await restarted.broker.place(known)
    counts = await restarted.reconcile("paper")
    assert counts == {
        "open": 3,
        "booked": 1,
        "restored": 1,
        "awaiting_redelivery": 1,
        "dead_lettered": 0,
    }
    assert restarted.broker.on_price("ACME", Decimal(95)) == []
    (booked,) = await restarted.on_price("ACME", Decimal(89))
    assert booked.status == "filled"
    statuses = {o.client_order_id: o.status for o in rows(sessions, OrderRecord)}
    assert statuses == {"limit-0001": "filled", "mkt-000001": "new", "known-0001": "filled"}
    assert await restarted.reconcile("paper") == {
        "open": 1,
        "booked": 0,
        "restored": 0,
        "awaiting_redelivery": 1,
        "dead_lettered": 0,
    }


# --- PostgreSQL: a position the worker knows is booked in one round trip -------------------
@pytest.fixture
async def pg_sessions(pg_schema_url: str) -> AsyncIterator[sessionmaker[Session]]:
    engine = init_db(pg_schema_url)
    yield session_factory(engine)
    while _OPEN:
        await _OPEN.pop().close()
    engine.dispose()


def count_exchanges(worker: OrderWorker, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Network exchanges of each booking plan the worker runs, in order."""
    pipeline = worker.db._pipeline
    original_run = pipeline.run
    counts: list[int] = []

    async def run(*args: Any, **kwargs: Any) -> Any:
        counts.append(0)
        return await original_run(*args, **kwargs)

    def counted(original: Any) -> Any:
        async def exchange(*args: Any, **kwargs: Any) -> Any:
            counts[-1] += 1
            return await original(*args, **kwargs)

        return exchange

    monkeypatch.setattr(pipeline, "run", run)
    for name in ("_exchange", "_commit_with"):
        monkeypatch.setattr(pipeline, name, counted(getattr(pipeline, name)))
    return counts


# Prices whose average entry needs more than the ten stored decimals: the known position must
# be the stored (quantized) one, or the next booking would start from another number.
AWKWARD = [
    order_event("buy-000001", Side.BUY, "3", "100"),
    order_event("buy-000002", Side.BUY, "1", "101.37"),
    order_event("buy-000003", Side.BUY, "7", "99.99"),
    order_event("sell-00001", Side.SELL, "5", "100.07"),
    order_event("sell-00002", Side.SELL, "9", "98.13"),
    order_event("buy-000004", Side.BUY, "2", "97.5"),
]


async def test_a_known_position_is_booked_in_one_round_trip_with_the_rows_of_two(
    pg_sessions: sessionmaker[Session], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = make_worker(pg_sessions)
    exchanges = count_exchanges(worker, monkeypatch)
    for event in AWKWARD[:3]:
        await worker.execute(event)
    (position,) = rows(pg_sessions, PositionRecord)
    assert position.avg_price == Decimal("100.1181818182")  # (4 · 100.3425 + 7 · 99.99) / 11
    for event in AWKWARD[3:]:
        await worker.execute(event)
    # The first booking reads the (missing) position; every later one knows it.
    assert exchanges == [2, 1, 1, 1, 1, 1]
    assert worker.rebooked == 0
    (position,) = rows(pg_sessions, PositionRecord)
    assert worker.positions == {
        ("ACME", "s1", "paper"): (Holding(position.qty, position.avg_price, position.realized_pnl))
    }
    sqlite = init_db(f"sqlite:///{tmp_path / 'two_trips.db'}")
    reference = make_worker(session_factory(sqlite))
    for event in AWKWARD:
        await reference.execute(event)
    assert _book_state(pg_sessions) == _book_state(session_factory(sqlite))
    sqlite.dispose()


async def test_a_position_another_worker_changed_is_booked_again_from_the_stored_row(
    pg_sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = make_worker(pg_sessions), make_worker(pg_sessions)
    await first.execute(order_event("buy-000001", Side.BUY, "10", "100"))
    await second.execute(order_event("buy-000002", Side.BUY, "5", "110"))
    exchanges = count_exchanges(first, monkeypatch)
    booked = await first.execute(order_event("sell-00001", Side.SELL, "4", "120"))
    assert booked is not None and booked.status == "filled"
    # One exchange refused (nothing of it written), then the two-step booking.
    assert exchanges == [1, 2] and first.rebooked == 1
    (position,) = rows(pg_sessions, PositionRecord)
    avg = (Decimal(10 * 100) + Decimal(5 * 110)) / 15
    assert (position.qty, position.avg_price) == (Decimal(11), quantize(avg))
    assert position.realized_pnl == quantize(4 * (Decimal(120) - quantize(avg)))
    assert len(rows(pg_sessions, FillRecord)) == len(rows(pg_sessions, LedgerEntry)) == 3
    assert first.positions[("ACME", "s1", "paper")].qty == Decimal(11)


async def test_a_redelivered_order_on_a_known_position_trades_once(
    pg_sessions: sessionmaker[Session],
) -> None:
    worker = make_worker(pg_sessions)
    await worker.execute(order_event("buy-000001", Side.BUY, "10", "100"))
    await worker.execute(order_event("buy-000002", Side.BUY, "1", "100"))
    assert await worker.execute(order_event("buy-000002", Side.BUY, "1", "100")) is None
    assert (worker.rebooked, worker.duplicates) == (1, 1)
    (position,) = rows(pg_sessions, PositionRecord)
    assert position.qty == Decimal(11)
    assert len(rows(pg_sessions, FillRecord)) == 2


def batch(*events: OrderEvent) -> Delivery:
    """The delivery of orders decided together (one queue message)."""
    return Delivery(OrderBatch(orders=list(events)).to_bytes(), f"{events[0].client_order_id}+")


async def test_a_batch_is_booked_in_one_transaction_and_never_twice(
    sessions: sessionmaker[Session],
) -> None:
    worker = make_worker(sessions)
    await worker.execute(order_event("buy-000001", Side.BUY, "2", "100"))
    before = worker.db.transactions
    reversal = (
        order_event("sell-00001", Side.SELL, "2", "101"),
        order_event("sell-00002", Side.SELL, "3", "101"),
    )
    await worker.handle(batch(*reversal))
    assert worker.db.transactions == before + 1  # the close and the open, one commit
    await worker.handle(batch(*reversal))  # delivered again: recognised by the ids
    assert (worker.processed, worker.duplicates) == (3, 2)
    (position,) = rows(sessions, PositionRecord)
    assert position.qty == Decimal(-3)
    assert sorted(r.client_order_id for r in rows(sessions, FillRecord)) == [
        "buy-000001",
        "sell-00001",
        "sell-00002",
    ]


async def test_a_malformed_order_in_a_batch_holds_back_none_of_the_others(
    sessions: sessionmaker[Session],
) -> None:
    worker = make_worker(sessions)
    bad = order_event("sell-00001").model_dump(mode="json")
    bad["qty"] = "-3"
    good = order_event("buy-000001").model_dump(mode="json")
    body = json.dumps({"orders": [good, bad]}).encode()
    with pytest.raises(PermanentError, match=r"orders\.1\.qty: .*greater than 0.*1 order"):
        await worker.handle(Delivery(body, "m-1"))
    assert [r.client_order_id for r in rows(sessions, OrderRecord)] == ["buy-000001"]
    for broken, problem in [
        (b'{"orders": []}', "a batch needs a list of orders"),
        (b'{"orders": 3}', "a batch needs a list of orders"),
        (json.dumps({"orders": [bad]}).encode(), r"orders\.0\.qty"),
    ]:
        with pytest.raises(PermanentError, match=problem):
            await worker.handle(Delivery(broken, "m-2"))


async def test_an_order_of_a_batch_that_fails_fails_the_delivery_after_the_others(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = make_worker(sessions)
    original = worker.execute

    async def execute(event: OrderEvent) -> Any:
        if event.client_order_id == "buy-000002":
            raise ConnectionError("database went away")
        return await original(event)

    monkeypatch.setattr(worker, "execute", execute)
    first, second = order_event("buy-000001"), order_event("buy-000002", symbol="OTHER")
    with pytest.raises(ConnectionError, match="went away"):
        await worker.handle(batch(first, second))
    assert [r.client_order_id for r in rows(sessions, OrderRecord)] == ["buy-000001"]
    monkeypatch.setattr(worker, "execute", original)
    await worker.handle(batch(first, second))  # the retry books the rest, once
    assert sorted(r.client_order_id for r in rows(sessions, OrderRecord)) == [
        "buy-000001",
        "buy-000002",
    ]


async def booked_then_stopped(
    worker: OrderWorker, queue: InMemoryWorkQueue, consumer: asyncio.Task[None]
) -> None:
    """Wait (10 s at most) until the worker booked an order, then stop its queue."""
    for _ in range(1000):
        if worker.processed:
            break
        await asyncio.sleep(0.01)
    await queue.stop()
    await consumer


def database_away_for(
    worker: OrderWorker, monkeypatch: pytest.MonkeyPatch, tries: int
) -> list[int]:
    """Make the worker's bookings find the database away the first `tries` times (forever
    when negative); returns the count of bookings tried."""
    original = worker._book_placed
    calls = [0]

    def away(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if tries < 0 or calls[0] <= tries:
            raise psycopg.OperationalError("connection failed: Connection refused")
        return original(*args, **kwargs)

    monkeypatch.setattr(worker, "_book_placed", away)
    worker.outage_pause = worker.outage_pause_max = 0.001
    return calls


async def test_a_database_that_is_away_holds_the_order_not_the_queues_retries(
    sessions: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The database away for more tries than the queue allows (one retry here): the worker
    tries the same delivery again, warning each time what it waits for and where, and books
    the order once when the database answers; nothing is dead-lettered."""
    worker = make_worker(sessions)
    calls = database_away_for(worker, monkeypatch, tries=4)
    attempts: list[int] = []

    async def handle(delivery: Delivery) -> None:
        attempts.append(delivery.attempt)
        await worker.handle(delivery)

    queue = InMemoryWorkQueue(max_retries=1, retry_base_delay=0.01)
    task = asyncio.create_task(queue.consume("orders", handle))
    event = order_event()
    await queue.publish("orders", event.to_bytes(), message_id=event.client_order_id)
    await booked_then_stopped(worker, queue, task)
    assert (calls[0], attempts, worker.processed) == (5, [1], 1)
    assert [o.status for o in rows(sessions, OrderRecord)] == ["filled"]
    assert len(rows(sessions, FillRecord)) == 1
    assert await queue.dead_letters("orders") == []
    where = sessions.kw["bind"].url.render_as_string(hide_password=True)
    assert (
        f"order event coid-0001 waits (try 4, again in 0.00s): the database {where} is "
        "unavailable: OperationalError: connection failed: Connection refused"
    ) in caplog.text


async def test_stopping_lets_go_of_an_order_waiting_for_the_database(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Asked to stop while the database is still away, the worker leaves the delivery
    unacknowledged: the queue keeps it for the next worker, neither booked nor given up."""
    worker = make_worker(sessions)
    calls = database_away_for(worker, monkeypatch, tries=-1)
    queue = InMemoryWorkQueue(max_retries=1, retry_base_delay=0.01)
    task = asyncio.create_task(queue.consume("orders", worker.handle))
    event = order_event()
    await queue.publish("orders", event.to_bytes(), message_id=event.client_order_id)
    for _ in range(500):
        if calls[0] >= 3:
            break
        await asyncio.sleep(0.01)
    worker.stopping.set()
    await asyncio.wait_for(queue.stop(), 5)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert calls[0] >= 3
    assert await queue.depth("orders") == 1  # back in the queue, as first in line
    assert await queue.dead_letters("orders") == []
    assert rows(sessions, OrderRecord) == [] and worker.processed == 0


async def test_a_write_lock_held_elsewhere_makes_the_order_wait_not_dead_letter(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Another process holds the SQLite file's write lock (an open transaction in a shell)
    longer than the busy timeout and the queue's retries: the order waits for the lock with
    a warning naming the file, and is booked once when it is released."""
    path = tmp_path / "sigma.db"
    engine = init_db(f"sqlite:///{path}", busy_timeout=0.02)
    worker = OrderWorker(session_factory(engine), PaperBroker(FillModel(commission_pct=FEE)))
    worker.outage_pause = worker.outage_pause_max = 0.01
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    queue = InMemoryWorkQueue(max_retries=1, retry_base_delay=0.01)
    task = asyncio.create_task(queue.consume("orders", worker.handle))
    event = order_event()
    await queue.publish("orders", event.to_bytes(), message_id=event.client_order_id)
    try:
        for _ in range(1000):
            if "waits (try 3" in caplog.text:
                break
            await asyncio.sleep(0.01)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    await booked_then_stopped(worker, queue, task)
    await worker.close()
    with engine.connect() as conn:
        fills = conn.execute(select(func.count()).select_from(FillRecord)).scalar()
    engine.dispose()
    assert (worker.processed, fills) == (1, 1)
    assert await queue.dead_letters("orders") == []
    assert (
        f"order event coid-0001 waits (try 3, again in 0.01s): the database sqlite:///{path} "
        "is unavailable: OperationalError: database is locked"
    ) in caplog.text

"""Fault injection and hostile input on the real services: the pipeline recovers by itself and
PostgreSQL holds every order exactly once (one fill per order, positions = sum of fills).

Faults are injected into this test's own connections only (the servers are shared): Redis
`CLIENT KILL` of our subscriber connections, RabbitMQ `close_connection` of our named
connection, `pg_terminate_backend` of the worker's own backend, our feed server stopped, our
worker process SIGKILLed. Each test has its own schema, bus prefix and queues.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

import pytest
import redis.asyncio as aioredis
from sqlalchemy import create_engine, func, select, text
from websockets.asyncio.server import ServerConnection, serve

from sigma.bootstrap import App
from sigma.bus.base import CHANNEL_PRICE_UPDATE, QUEUE_ORDERS, Delivery
from sigma.bus.rabbitmq import RabbitWorkQueue
from sigma.bus.redis_pubsub import RedisPubSub
from sigma.domain import Order, OrderType, Side, Tick
from sigma.execution.broker import BrokerReport
from sigma.execution.events import OrderEvent
from sigma.feeds.ticks import encode_tick
from sigma.feeds.ws_server import BarReplay, MarketServer, bar_ticks
from sigma.risk.limits import AccountState
from sigma.runtime.services import Services
from sigma.store.models import AlertLog, FillRecord, LedgerEntry, OrderRecord, PositionRecord
from tests.runtime.pipeline_helpers import (
    SYMBOL,
    Outcome,
    assert_matches_backtest,
    bars,
    make_app,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.pg]

# Retries of failed orders wait 50 ms, 100 ms, ... (one RabbitMQ queue per delay).
RETRY_BASE_DELAY = 0.05


# --- fixtures and helpers -------------------------------------------------------------------
@pytest.fixture
def services(pg_schema_url: str, redis_url: str, amqp_url: str, bus_prefix: str) -> dict[str, Any]:
    return {
        "database_url": pg_schema_url,
        "redis_url": redis_url,
        "amqp_url": amqp_url,
        "bus_prefix": bus_prefix,
    }


@pytest.fixture
async def cleanup(redis_url: str, amqp_url: str, bus_prefix: str) -> AsyncIterator[None]:
    """Delete this test's queues and Redis keys afterwards."""
    yield
    # The same retry settings as the systems under test, so their retry queues go too.
    admin = RabbitWorkQueue(amqp_url, bus_prefix, retry_base_delay=RETRY_BASE_DELAY)
    await admin.delete_queues(QUEUE_ORDERS)
    await admin.close()
    client = aioredis.Redis.from_url(redis_url)
    keys = [key async for key in client.scan_iter(match=f"{bus_prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


class Running:
    """A Services running in the background of a test (stopped by `close`)."""

    def __init__(self, system: Services) -> None:
        self.system = system
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(system.run(self.stop))

    async def started(self) -> Running:
        await wait_for(lambda: self.system.ready.is_set() or self.task.done(), what="system ready")
        if self.task.done():
            self.task.result()  # raises why it did not start
        return self

    async def close(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 30)


Start = Callable[[Services], Awaitable[Running]]


@pytest.fixture
async def start(cleanup: None) -> AsyncIterator[Start]:
    """Starts systems; any a failing test left running is stopped before the cleanup."""
    runs: list[Running] = []

    async def start_(sys_: Services) -> Running:
        runs.append(Running(sys_))
        return await runs[-1].started()

    yield start_
    for run in runs:
        if not run.task.done():
            await run.close()


def connection_name(bus_prefix: str) -> str:
    return f"sigma-{bus_prefix}"


def system(app: App, components: tuple[str, ...]) -> Services:
    """A Services whose order queue connection is named after the bus prefix (so the broker
    side can close exactly this connection) and retries quickly."""
    out = Services(app, components)
    s = app.settings
    assert s.bus.amqp_url is not None
    out.queue = RabbitWorkQueue(
        s.bus.amqp_url,
        s.bus.bus_prefix,
        max_retries=s.worker.order_max_retries,
        retry_base_delay=RETRY_BASE_DELAY,
        connection_name=connection_name(s.bus.bus_prefix),
    )
    return out


def order(coid: str, *, qty: str = "1", side: Side = Side.BUY, **extra: Any) -> OrderEvent:
    return OrderEvent(
        client_order_id=coid,
        symbol=SYMBOL,
        side=side,
        qty=Decimal(qty),
        ref_price=Decimal(100),
        strategy="faults",
        created_at=datetime.now(UTC),
        **extra,
    )


async def publish(queue: RabbitWorkQueue, *events: OrderEvent) -> None:
    for e in events:
        await queue.publish(QUEUE_ORDERS, e.to_bytes(), message_id=e.client_order_id)


def book(app: App) -> dict[str, tuple[str, Decimal, int]]:
    """Per client order id: status, filled quantity and number of fill rows."""
    with app.sessions() as s:
        fills = dict(
            s.execute(
                select(FillRecord.client_order_id, func.count()).group_by(
                    FillRecord.client_order_id
                )
            ).all()
        )
        return {
            o.client_order_id: (o.status, o.filled_qty, fills.get(o.client_order_id, 0))
            for o in s.scalars(select(OrderRecord))
        }


def assert_positions_equal_fills(app: App) -> None:
    """Every position is the signed sum of its fills; every fill has one ledger entry."""
    with app.sessions() as s:
        rows = s.execute(
            select(OrderRecord.strategy, OrderRecord.side, FillRecord.qty).join(
                FillRecord, FillRecord.client_order_id == OrderRecord.client_order_id
            )
        ).all()
        expected: dict[str, Decimal] = {}
        for strategy, side, qty in rows:
            expected[strategy] = expected.get(strategy, Decimal(0)) + (
                qty if side == "buy" else -qty
            )
        held = {p.strategy: p.qty for p in s.scalars(select(PositionRecord)) if p.qty}
        assert held == {k: v for k, v in expected.items() if v}
        ledger = s.scalar(
            select(func.count()).select_from(LedgerEntry).where(LedgerEntry.reason == "fill")
        )
        assert ledger == len(rows)


async def rabbitmqctl(*args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        "rabbitmqctl", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def close_rabbit_connections(name: str) -> int:
    """Have the broker close every connection named `name` (as a broker restart would)."""
    listing = await rabbitmqctl("list_connections", "-q", "pid", "client_properties")
    pids = [
        line.split("\t", 1)[0]
        for line in listing.splitlines()
        if f'{{"connection_name","{name}"}}' in line
    ]
    for pid in pids:
        await rabbitmqctl("close_connection", pid, "fault injection")
    return len(pids)


async def kill_redis_subscribers(redis_url: str, pubsub: RedisPubSub) -> int:
    """`CLIENT KILL` the subscriber connections of `pubsub` (found by their local address,
    since the system does not name its connections)."""
    ours = set()
    for sub in pubsub._subscriptions:
        assert sub.local_address is not None
        host, port = sub.local_address
        ours.add(f"{host}:{port}")
    admin = aioredis.Redis.from_url(redis_url)
    try:
        killed = 0
        for client in await admin.client_list(_type="pubsub"):
            if client["addr"] in ours:
                killed += await admin.execute_command("CLIENT", "KILL", "ID", client["id"])  # type: ignore[no-untyped-call]
        return killed
    finally:
        await admin.aclose()


# --- Redis ----------------------------------------------------------------------------------
async def test_redis_subscriber_connections_killed_mid_stream_recover(
    services: dict[str, Any], start: Start
) -> None:
    """Half the prices, a quiet moment, every subscriber connection killed, the other half:
    the bot and the worker resubscribe and the stored trades still equal the backtest."""
    app = make_app(**services)
    frame = bars(400)
    ticks = [encode_tick(t) for t in bar_ticks(SYMBOL, frame)]
    run = await start(system(app, ("bot", "worker")))
    sys_ = run.system
    bot, worker = sys_.bot, sys_.worker
    assert bot is not None and worker is not None and isinstance(sys_.pubsub, RedisPubSub)

    async def stream(part: list[bytes]) -> None:
        for raw in part:
            await sys_.pubsub.publish(CHANNEL_PRICE_UPDATE, raw)
            await asyncio.sleep(0)

    def settled() -> bool:
        return worker.processed >= bot.counters.orders_sent and bot.counters.fills >= (
            bot.counters.orders_sent
        )

    # `ready` comes before the components have subscribed; Pub/Sub drops what precedes that.
    await wait_for(lambda: len(sys_.pubsub._subscriptions) == 5, what="subscriptions")
    half = len(ticks) // 2
    await stream(ticks[:half])
    await wait_for(lambda: bot.counters.ticks == half and settled(), what="first half booked")
    # prices, fills, order status, bot control; resting orders
    subs = list(sys_.pubsub._subscriptions)
    assert await kill_redis_subscribers(services["redis_url"], sys_.pubsub) == 5
    await wait_for(lambda: all(s.reconnects >= 1 for s in subs), what="resubscribed")
    await stream(ticks[half:])
    await wait_for(lambda: bot.counters.bars == len(frame) - 1 and settled(), what="all booked")
    await run.close()
    with app.sessions() as s:
        outcome = Outcome(
            orders=list(s.scalars(select(OrderRecord).order_by(OrderRecord.created_at))),
            fills=list(s.scalars(select(FillRecord).order_by(FillRecord.id))),
            positions={p.strategy: p for p in s.scalars(select(PositionRecord))},
            ledger=list(s.scalars(select(LedgerEntry).order_by(LedgerEntry.id))),
            system=sys_,
        )
    assert assert_matches_backtest(outcome, app, frame) >= 4
    app.close()


# --- RabbitMQ -------------------------------------------------------------------------------
Place = Callable[[OrderEvent], Awaitable[BrokerReport]]


def hold_first_place(sys_: Services) -> tuple[asyncio.Event, asyncio.Event, list[str]]:
    """Make the worker's broker stop inside the first `place` until released; returns
    (holding, release, every placed client order id)."""
    assert sys_.worker is not None
    broker = sys_.worker.broker
    original: Place = broker.place
    holding, release = asyncio.Event(), asyncio.Event()
    placed: list[str] = []

    async def place(event: OrderEvent) -> BrokerReport:
        placed.append(event.client_order_id)
        if len(placed) == 1:
            holding.set()
            await release.wait()
        return await original(event)

    broker.place = place  # type: ignore[method-assign]
    return holding, release, placed


async def test_rabbit_connection_closed_while_worker_holds_an_order(
    services: dict[str, Any], start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    """The broker closes the worker's connection while an order is at the (paper) exchange:
    the message is redelivered at once and the order runs again while the first attempt is
    still out. Same client order id, so the exchange answers with the same fill and it is
    booked once; the first attempt finds the order finished and its late ack fails
    harmlessly. The worker keeps consuming on the new connection. (Paper orders are recorded
    together with their fills; an exchange order is on record before the exchange sees it,
    see tests/execution.)"""
    app = make_app(**services)
    run = await start(system(app, ("worker",)))
    worker = run.system.worker
    assert worker is not None
    holding, release, placed = hold_first_place(run.system)
    producer = RabbitWorkQueue(services["amqp_url"], services["bus_prefix"])
    try:
        await publish(producer, order("fault-rabbit-1"))
        await asyncio.wait_for(holding.wait(), 10)
        assert book(app) == {}
        assert await close_rabbit_connections(connection_name(services["bus_prefix"])) == 1
        await wait_for(lambda: worker.processed == 1, what="the redelivered copy booked")
        assert placed == ["fault-rabbit-1", "fault-rabbit-1"]
        release.set()
        await wait_for(lambda: worker.duplicates == 1, what="the first attempt finished")
        await publish(producer, order("fault-rabbit-2", side=Side.SELL))
        await wait_for(lambda: worker.processed == 2, what="next order after reconnecting")
    finally:
        release.set()
        await producer.close()
    assert book(app) == {
        "fault-rabbit-1": ("filled", Decimal(1), 1),
        "fault-rabbit-2": ("filled", Decimal(1), 1),
    }
    assert_positions_equal_fills(app)
    assert "could not settle message fault-rabbit-1" in caplog.text
    app.close()


# --- PostgreSQL -----------------------------------------------------------------------------
async def test_postgres_backend_terminated_during_booking_is_retried_and_booked_once(
    services: dict[str, Any], start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    """The worker's database connection is terminated in the middle of booking (the order
    is written, its fill is not): the transaction is gone, the worker tries the delivery
    again itself (a database that went away is not the order's fault, so the queue's retries
    are not spent on it), the broker answers with the same fill and it is booked exactly
    once."""
    app = make_app(**services)
    run = await start(system(app, ("worker",)))
    worker = run.system.worker
    assert worker is not None
    attempts: list[int] = []
    handle = worker.handle

    async def counted(delivery: Delivery) -> None:
        attempts.append(delivery.attempt)
        await handle(delivery)

    worker.handle = counted  # type: ignore[method-assign]
    admin = create_engine(services["database_url"])
    # The server ends the worker's backend itself, the first time a fill row arrives: a
    # sequence counts attempts outside the transaction that dies with the backend.
    with admin.begin() as c:
        c.execute(text("CREATE SEQUENCE fault_fill_inserts"))
        c.execute(
            text(
                """
                CREATE FUNCTION fault_terminate_once() RETURNS trigger AS $$
                BEGIN
                    IF nextval('fault_fill_inserts') = 1 THEN
                        PERFORM pg_terminate_backend(pg_backend_pid());
                    END IF;
                    RETURN NEW;
                END $$ LANGUAGE plpgsql
                """
            )
        )
        c.execute(
            text(
                "CREATE TRIGGER fault_terminate BEFORE INSERT ON fills "
                "FOR EACH ROW EXECUTE FUNCTION fault_terminate_once()"
            )
        )
    producer = RabbitWorkQueue(services["amqp_url"], services["bus_prefix"])
    try:
        await publish(producer, order("fault-pg-1", qty="2"))
        await wait_for(lambda: worker.processed == 1, what="order booked after the retry")
    finally:
        with admin.begin() as c:
            c.execute(text("DROP TRIGGER fault_terminate ON fills"))
            c.execute(text("DROP FUNCTION fault_terminate_once()"))
            terminated = c.scalar(text("SELECT last_value FROM fault_fill_inserts"))
            c.execute(text("DROP SEQUENCE fault_fill_inserts"))
        await producer.close()
        await run.close()
        admin.dispose()
    assert terminated == 2  # the fill that ended the backend, then the one booked
    assert attempts == [1]  # one delivery: the worker held it until the booking went in
    assert "order event fault-pg-1 waits (try 1, again in 0.10s): the database" in caplog.text
    assert book(app) == {"fault-pg-1": ("filled", Decimal(2), 1)}
    assert_positions_equal_fills(app)
    app.close()


# --- the market feed ------------------------------------------------------------------------
def stale_gauge(sys_: Services) -> float | None:
    return sys_.metrics.registry.get_sample_value("sigma_feed_stale")


async def test_feed_server_going_away_raises_stale_and_reconnects_with_backoff(
    services: dict[str, Any], start: Start
) -> None:
    """The market server stops: the price client goes stale (gauge, alert stored in the
    database), keeps retrying with backoff, and picks the stream up again when the server is
    back on the same address."""
    # 600 bars per second: ticks flow steadily, the replay lasts far longer than the test.
    replay = BarReplay.synthetic([SYMBOL], seed=3, bars=20_000, speed=36_000)
    async with MarketServer("127.0.0.1", 0, replay).serve() as market:
        port = market.port
        app = make_app(**services, feed_url=market.url, feed_stale_seconds=0.3)
        run = await start(system(app, ("prices",)))
        prices = run.system.prices
        assert prices is not None
        await wait_for(lambda: prices.accepted > 20, what="ticks flowing")
        assert stale_gauge(run.system) == 0
    try:
        await wait_for(lambda: stale_gauge(run.system) == 1, what="stale gauge")
        await wait_for(lambda: prices.reconnects >= 2, what="retries while the server is down")
        assert prices.backoff.attempts >= 2  # not reset: no tick arrived in between
        accepted = prices.accepted
        async with MarketServer("127.0.0.1", port, replay).serve():
            await wait_for(lambda: prices.accepted > accepted + 20, what="stream resumed")
            await wait_for(lambda: stale_gauge(run.system) == 0, what="fresh again")
            assert prices.backoff.attempts == 0
    finally:
        await run.close()
    assert prices.monitor.episodes == 1
    with app.sessions() as s:
        alerts = [(a.severity, a.source, a.message) for a in s.scalars(select(AlertLog))]
    assert any(
        a[:2] == ("error", "feed") and a[2].startswith(f"no prices from ws://127.0.0.1:{port}")
        for a in alerts
    )
    assert any(m.startswith("prices back after") for _, source, m in alerts if source == "feed")
    app.close()


async def test_a_feed_the_price_filter_keeps_rejecting_alerts_within_seconds_and_pauses_entries(
    services: dict[str, Any], start: Start
) -> None:
    """Issue 23: after some good ticks the feed sends only prints the filter rejects (wild and
    disagreeing, so never a new level). The rejection-ratio alarm fires within a second
    (alert stored, gauge), the feed goes stale since rejected ticks are no sign of life, and
    the bot's risk check refuses new positions on the symbol while a reducing order passes."""
    now = datetime.now(UTC) - timedelta(minutes=1)
    wild = asyncio.Event()

    def at(k: int, price: str) -> bytes:
        return encode_tick(
            Tick(SYMBOL, now + timedelta(milliseconds=k), Decimal(price), Decimal(1))
        )

    async def feed(ws: ServerConnection) -> None:
        for k in range(20):
            await ws.send(at(k, f"100.{k % 3}"))
        await wild.wait()
        for k in range(20, 100_000):  # until the client goes away (the send then raises)
            await ws.send(at(k, "150" if k % 2 else "50"))
            await asyncio.sleep(0.01)

    async with serve(feed, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        app = make_app(**services, feed_url=f"ws://127.0.0.1:{port}", feed_stale_seconds=1.0)
        run = await start(system(app, ("prices", "bot")))
        sys_, prices, bot = run.system, run.system.prices, run.system.bot
        assert prices is not None and bot is not None
        paused = partial(
            sys_.metrics.registry.get_sample_value, "sigma_entries_paused", {"symbol": SYMBOL}
        )
        try:
            await wait_for(lambda: prices.accepted == 20, what="the good ticks")
            assert sys_.feed_health.entry_pause(SYMBOL) == "" and paused() == 0
            loop = asyncio.get_running_loop()
            began = loop.time()
            wild.set()
            await wait_for(lambda: paused() == 1, what="the symbol paused")
            blinded_in = loop.time() - began
            await wait_for(lambda: stale_gauge(sys_) == 1, what="the feed stale")
            stale_in = loop.time() - began

            def stale_alert_stored() -> bool:
                with app.sessions() as s:
                    messages = s.scalars(select(AlertLog.message))
                    return any(m.startswith("no prices from") for m in messages)

            # The gauge is set before the alert is written: wait for the row.
            await wait_for(stale_alert_stored, what="the stale alert stored")
            account = AccountState("t", Decimal(10_000), Decimal(5), 0, datetime.now(UTC))
            buy = bot.risk.check(Order(SYMBOL, Side.BUY, qty=Decimal(1)), Decimal(100), account)
            sell = bot.risk.check(Order(SYMBOL, Side.SELL, qty=Decimal(1)), Decimal(100), account)
            assert (buy.accepted, buy.rule) == (False, "price_feed") and sell.accepted
        finally:
            await run.close()
    print(json.dumps({"blinded_s": round(blinded_in, 3), "stale_s": round(stale_in, 3)}))
    assert blinded_in < 1.0 and stale_in < 3.0
    assert prices.accepted == 20 and prices.anomalies >= 10
    with app.sessions() as s:
        alerts = [(a.severity, a.message) for a in s.scalars(select(AlertLog))]
    assert any(
        severity == "warning" and f"{SYMBOL}: the price filter rejected" in message
        for severity, message in alerts
    ), alerts
    assert any(message.startswith("no prices from") for _, message in alerts)
    app.close()


def hostile_frames(now: datetime) -> tuple[list[str | bytes], list[Tick], dict[str, int]]:
    """Frames for the price client: good ticks mixed with every kind of bad one; returns the
    frames, the ticks that must get through and the expected drops by reason."""
    good: list[Tick] = []

    def tick(i: int, **fields: Any) -> str:
        obj = {
            "symbol": SYMBOL,
            "ts": (now + timedelta(milliseconds=i)).isoformat(),
            "price": "100.5",
            "volume": "1",
        }
        obj.update(fields)
        return json.dumps(obj)

    frames: list[str | bytes] = []
    for i in range(0, 40, 2):
        frames.append(tick(i, price=str(Decimal("100") + Decimal(i) / 100)))
        good.append(
            Tick(
                SYMBOL,
                now + timedelta(milliseconds=i),
                Decimal("100") + Decimal(i) / 100,
                Decimal(1),
            )
        )
    bad: dict[str, list[str | bytes]] = {
        "json": ["{not json", '{"symbol": "XYZ", "price": 1', ""],
        "not_object": ["[1, 2, 3]", '"tick"', "null"],
        "price": [
            tick(50, price="NaN"),
            tick(51, price=float("nan")),  # json.dumps writes the bare NaN token
            tick(52, price="-3"),
            tick(53, price=0),
            tick(54, price="Infinity"),
            tick(55, price="abc"),
        ],
        "too_large": [tick(56, price="1e300"), tick(57, volume=10**15)],
        "volume": [tick(58, volume="-1")],
        "type": [
            tick(59, price=[1]),
            tick(60, ts=True),
            tick(61, price={"x": 1}),
            tick(62, price=None),  # null only stands for "absent" in the optional fields
        ],
        "missing": [
            json.dumps({"symbol": SYMBOL, "price": "1"}),
            json.dumps({"symbol": SYMBOL, "ts": now.isoformat()}),
            json.dumps({"ts": now.isoformat(), "price": "1"}),
        ],
        "symbol": [tick(63, symbol=""), tick(64, symbol="A" * 40), tick(65, symbol="X Y;DROP")],
        "unknown_symbol": [tick(66, symbol="DOGE"), tick(67, symbol="xyz")],
        "ts": [tick(68, ts="yesterday"), tick(69, ts=-5), tick(70, ts=10**20)],
        "future": [tick(71, ts=(now + timedelta(days=1)).isoformat())],
        "out_of_order": [tick(0, price="100.1"), tick(-1000, price="100.1")],
        "crossed": [tick(72, bid="101", ask="100")],
        "oversized": [tick(73, pad="x" * 5000)],
        "utf8": [b'{"symbol": "XYZ\xff\xfe"}', b"\xc3\x28"],
    }
    expected = {reason: len(items) for reason, items in bad.items()}
    # Interleave: each bad frame after a good one, so drops never hide behind a reconnect.
    mixed: list[str | bytes] = []
    flat = [frame for items in bad.values() for frame in items]
    for k, frame in enumerate(frames):
        mixed.append(frame)
        mixed.extend(flat[k :: len(frames)])
    # One wild print after the good ticks: valid, but the anomaly detector drops it.
    mixed.append(tick(100, price="5000"))
    last = tick(101, price="100.4")
    mixed.append(last)
    good.append(Tick(SYMBOL, now + timedelta(milliseconds=101), Decimal("100.4"), Decimal(1)))
    return mixed, good, expected


async def test_hostile_ticks_over_the_websocket_never_reach_the_strategies(
    services: dict[str, Any], start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    """Malformed, NaN, negative, huge, out-of-order, future, unknown-symbol and undecodable
    frames over a real WebSocket: each is dropped with its reason logged, the client stays
    connected, and the bot (over Redis) sees exactly the good ticks."""
    frames, good, expected = hostile_frames(datetime.now(UTC) - timedelta(minutes=1))
    go = asyncio.Event()

    async def feed(ws: ServerConnection) -> None:
        await go.wait()
        for frame in frames:
            await ws.send(frame)
        await ws.wait_closed()

    async with serve(feed, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        app = make_app(**services, feed_url=f"ws://127.0.0.1:{port}")
        run = await start(system(app, ("prices", "bot")))
        sys_ = run.system
        prices, bot = sys_.prices, sys_.bot
        assert prices is not None and bot is not None
        seen: list[Tick] = []
        on_tick = bot.on_tick

        async def record(tick: Tick, received: float | None = None) -> None:
            seen.append(tick)
            await on_tick(tick, received)

        bot.on_tick = record  # type: ignore[method-assign]
        # prices, fills, order status and bot control
        await wait_for(lambda: len(sys_.pubsub._subscriptions) == 4, what="bot subscribed")
        try:
            go.set()
            await wait_for(lambda: len(seen) == len(good), what="good ticks at the bot")
        finally:
            await run.close()
    assert seen == good
    assert dict(prices.cleaner.drops) == expected
    assert prices.anomalies == 1
    assert prices.reconnects == 0  # nothing a frame says can cut the connection
    assert prices.received == len(frames)
    # the first drop of each reason is logged; repeats fold into a count
    logged = re.findall(r"dropped frame \((\w+)\)", caplog.text)
    assert sorted(logged) == sorted(expected)
    app.close()


async def test_a_frame_beyond_the_websocket_limit_costs_one_reconnect(
    services: dict[str, Any], start: Start
) -> None:
    """A frame larger than the client accepts (64 KiB) fails that connection (1009) instead
    of being buffered: the client reconnects and takes the ticks of the new connection."""
    tick = Tick(SYMBOL, datetime.now(UTC) - timedelta(minutes=1), Decimal(100), Decimal(1))
    connections = 0

    async def feed(ws: ServerConnection) -> None:
        nonlocal connections
        connections += 1
        # Frames read together with the oversized one are lost with the connection, so the
        # first connection carries nothing else.
        await ws.send("x" * 70_000 if connections == 1 else encode_tick(tick), text=True)
        await ws.wait_closed()

    async with serve(feed, "127.0.0.1", 0, max_size=None) as server:
        port = server.sockets[0].getsockname()[1]
        app = make_app(**services, feed_url=f"ws://127.0.0.1:{port}")
        run = await start(system(app, ("prices",)))
        prices = run.system.prices
        assert prices is not None
        await wait_for(lambda: prices.accepted == 1, what="the tick after the reconnect")
        await run.close()
    assert (connections, prices.reconnects, prices.received) == (2, 1, 1)
    app.close()


# --- a worker process killed ----------------------------------------------------------------
# `sigma worker` with two orders stuck at the worst moments: HANG_PLACE taken off the queue
# but not yet at the broker; HANG_ACK booked but not yet acknowledged.
STUCK_WORKER = """
import asyncio, os, sys
from sigma.execution.broker import PaperBroker
from sigma.execution.worker import OrderWorker

place, handle = PaperBroker.place, OrderWorker.handle

async def placing(self, event):
    if event.client_order_id == os.environ["HANG_PLACE"]:
        print("holding", event.client_order_id, flush=True)
        await asyncio.Event().wait()
    return await place(self, event)

async def handling(self, delivery):
    await handle(self, delivery)
    if delivery.message_id == os.environ["HANG_ACK"]:
        print("booked", delivery.message_id, flush=True)
        await asyncio.Event().wait()

PaperBroker.place, OrderWorker.handle = placing, handling
from sigma.cli.main import app
sys.argv = ["sigma", "worker"]
app()
"""


def worker_env(services: dict[str, Any]) -> dict[str, str]:
    return {
        **os.environ,
        "SIGMA_DATABASE_URL": services["database_url"],
        "SIGMA_REDIS_URL": services["redis_url"],
        "SIGMA_AMQP_URL": services["amqp_url"],
        "SIGMA_BUS_PREFIX": services["bus_prefix"],
        "SIGMA_SYMBOLS": SYMBOL,
        "HANG_PLACE": "fault-kill-03",
        "HANG_ACK": "fault-kill-07",
    }


async def read_until(stream: asyncio.StreamReader, wanted: set[str]) -> list[str]:
    lines: list[str] = []
    while wanted - {line.split(" ", 1)[0] for line in lines}:
        line = await stream.readline()
        assert line, "the worker ended early:\n" + "".join(lines)
        lines.append(line.decode())
    return lines


async def test_worker_sigkilled_mid_flight_restart_books_every_order_once(
    services: dict[str, Any], start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    """kill -9 a worker process holding an order it never placed and one it booked but never
    acknowledged: the next worker reconciles (the resting limit order goes back to the fresh
    paper broker), the broker redelivers both messages, and every order ends with exactly one
    fill. (A paper order is recorded together with its fills, so the one never placed is not
    on record yet; its message is.)"""
    caplog.set_level(logging.INFO, logger="sigma.execution.worker")
    app = make_app(**services)
    app.db  # noqa: B018 - schema ready before the worker process starts
    market = [order(f"fault-kill-{i:02d}") for i in range(12)]
    resting = order("fault-kill-limit", type=OrderType.LIMIT, limit_price=Decimal(50))
    producer = RabbitWorkQueue(services["amqp_url"], services["bus_prefix"])
    await publish(producer, *market, resting)
    await producer.close()
    stuck = await asyncio.create_subprocess_exec(
        sys.executable, "-c", STUCK_WORKER, env=worker_env(services),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert stuck.stdout is not None
    try:
        await asyncio.wait_for(read_until(stuck.stdout, {"holding", "booked"}), 30)
        await wait_for(
            lambda: sum(n for _, _, n in book(app).values()) == len(market) - 1,
            what="the other orders booked",
        )
    finally:
        stuck.send_signal(signal.SIGKILL)
        await stuck.wait()
    before = book(app)
    assert "fault-kill-03" not in before
    assert before["fault-kill-07"] == ("filled", Decimal(1), 1)
    assert before["fault-kill-limit"] == ("new", Decimal(0), 0)

    run = await start(system(app, ("worker",)))
    worker = run.system.worker
    assert worker is not None
    await wait_for(
        lambda: worker.duplicates == 1 and book(app)["fault-kill-03"][0] == "filled",
        what="both redelivered messages handled",
    )
    assert (
        "reconciled paper orders: {'open': 1, 'booked': 0, 'restored': 1, "
        "'awaiting_redelivery': 0, 'dead_lettered': 0}" in caplog.text
    )
    assert "order fault-kill-07 already finished; redelivery ignored" in caplog.text
    # The restored limit order still rests at the new broker and fills once when reached.
    await worker.on_price(SYMBOL, Decimal(49))
    await run.close()
    assert book(app) == {e.client_order_id: ("filled", Decimal(1), 1) for e in (*market, resting)}
    assert_positions_equal_fills(app)
    app.close()

"""Servers restarted and processes killed while orders flow at a steady rate: the system
recovers by itself and PostgreSQL holds every accepted order exactly once.

Each service test restarts a private server of its own (`private_servers.py`: the shared ones
serve the tests running alongside) with its real stop and start commands: Redis, RabbitMQ,
PostgreSQL. The process test kills `sigma worker` and `sigma bot` with SIGKILL and starts them
again, as systemd's `Restart=always` would. Orders come from the real pipeline, market
WebSocket -> price client -> Redis -> bot -> RabbitMQ -> worker -> database, at about 10
orders per second (`steady_orders.py`).

After the fault the market stops, the last orders are booked, the system stops in order, and
the books are compared with the bot's own record of what it accepted: none lost, none doubled,
positions equal to the sum of fills, nothing dead-lettered or left in the queue. Each test
prints its figures as one JSON line (`pytest -s`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
import redis.asyncio as aioredis
from sqlalchemy import select

from sigma.bootstrap import App
from sigma.bus.base import QUEUE_ORDERS
from sigma.bus.rabbitmq import RabbitWorkQueue
from sigma.domain import Side, Tick
from sigma.execution.events import OrderEvent
from sigma.runtime.bot import TradingBot
from sigma.runtime.catch_up import FeedbackCatchUp
from sigma.runtime.services import Services
from sigma.store.models import FillRecord, OrderRecord
from sigma.store.restart import BookedAccount, booked_accounts
from tests.integration import steady_orders as steady
from tests.integration.cli_process import Process
from tests.integration.private_servers import (
    PrivatePostgres,
    PrivateRabbit,
    PrivateRedis,
    PrivateServer,
    ServerError,
)
from tests.runtime.pipeline_helpers import SYMBOL, make_app

# One xdist worker runs these one after the other: each starts servers of its own, and two
# RabbitMQ nodes booting at once on two cores would only slow both down.
pytestmark = [pytest.mark.integration, pytest.mark.pg, pytest.mark.xdist_group("restarts")]

# Orders accepted before the fault, and after it before the fault counts as survived.
BEFORE = 20
AFTER = 20
# Orders a killed bot may have had confirmed by the queue but not yet logged: it sends beside
# its price loop, so a few can be on their way at once.
UNLOGGED = 5


S = TypeVar("S", bound=PrivateServer)


# --- private servers ------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def _running(server: S) -> AsyncIterator[S]:
    """`server` started (a PostgreSQL cluster created first), removed with its files after."""
    try:
        if isinstance(server, PrivatePostgres):
            await server.create()
        await server.start()
    except ServerError as exc:
        await server.remove()
        pytest.fail(f"the private {server.name} server did not start: {exc}")
    try:
        yield server
    finally:
        await server.remove()


@pytest.fixture
async def private_redis() -> AsyncIterator[PrivateRedis]:
    async with _running(PrivateRedis()) as server:
        yield server


@pytest.fixture
async def private_rabbit() -> AsyncIterator[PrivateRabbit]:
    async with _running(PrivateRabbit()) as server:
        yield server


@pytest.fixture
async def private_pg() -> AsyncIterator[PrivatePostgres]:
    async with _running(PrivatePostgres()) as server:
        with psycopg.connect(server.dsn(), autocommit=True, connect_timeout=10) as admin:
            admin.execute("CREATE DATABASE sigma")
        yield server


@pytest.fixture
async def bus_cleanup(redis_url: str, amqp_url: str, bus_prefix: str) -> AsyncIterator[None]:
    """Remove this test's queues and keys on the shared servers afterwards."""
    yield
    await steady.delete_queues(amqp_url, bus_prefix)
    client = aioredis.Redis.from_url(redis_url)
    keys = [key async for key in client.scan_iter(match=f"{bus_prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


# --- one system in this process -------------------------------------------------------------
def quiet(count: Callable[[], int], seconds: float = 1.0) -> Callable[[], bool]:
    """True once `count()` has not changed for `seconds`."""
    last = [count(), time.monotonic()]

    def check() -> bool:
        now = count()
        if now != last[0]:
            last[:] = [now, time.monotonic()]
        return time.monotonic() - last[1] >= seconds

    return check


async def run_services(
    app: App, components: tuple[str, ...]
) -> tuple[Services, asyncio.Event, Any]:
    system = Services(app, components)
    stop = asyncio.Event()
    runner = asyncio.create_task(system.run(stop))
    await steady.wait_until(lambda: system.ready.is_set() or runner.done(), "the system ready")
    if runner.done():
        runner.result()  # raises why it did not start
    return system, stop, runner


async def drain(app: App, amqp_url: str, bus_prefix: str) -> None:
    """Start a worker as the next start of the system would, and let it book whatever the
    stopped system left in the (durable) queue: an order event published just before the
    stop is waiting there, not lost."""
    system, stop, runner = await run_services(app, ("worker",))
    queue = system.queue
    depth = -1

    async def empty() -> bool:
        nonlocal depth
        depth = await queue.depth(QUEUE_ORDERS)
        return depth == 0

    deadline = time.monotonic() + 30
    while not await empty():
        assert time.monotonic() < deadline, f"{depth} order events stay in the queue"
        await asyncio.sleep(0.1)
    await steady.wait_until(
        steady.safe(lambda: len(set(steady.order_counts(app))) == 1), "every stored order filled"
    )
    stop.set()
    await asyncio.wait_for(runner, 30)
    await steady.assert_queue_empty(amqp_url, bus_prefix)


async def run_with_fault(
    fault_name: str,
    fault: Callable[[], Awaitable[float]],
    *,
    database_url: str,
    redis_url: str,
    amqp_url: str,
    bus_prefix: str,
    folder: Path,
    bot_on_the_books: bool = False,
) -> tuple[App, dict[str, Any]]:
    """Run prices, bot and worker in this process on a steady market. After `BEFORE` orders
    run `fault` (it returns the seconds the service was away); once `AFTER` more orders are
    accepted, booked and reported back to the bot, stop the market, let the last orders be
    booked (with `bot_on_the_books`, until the running bot's accounts are the booked ones),
    stop the system and check the books."""
    figures: dict[str, Any] = {"fault": fault_name}
    started = time.monotonic()
    async with steady.market().serve() as mkt:
        app = steady.make_app(
            database_url=database_url,
            redis_url=redis_url,
            amqp_url=amqp_url,
            bus_prefix=bus_prefix,
            plugins=steady.write_plugin(folder / "plugins"),
            feed_url=mkt.url,
            var_dir=folder / "var",
        )
        system, stop, runner = await run_services(app, ("prices", "bot", "worker"))
        try:
            bot = system.bot
            assert bot is not None
            t0 = time.monotonic()
            await steady.wait_until(
                lambda: bot.counters.orders_sent >= BEFORE, "orders before the fault"
            )
            figures["orders_per_s_before"] = round(
                bot.counters.orders_sent / (time.monotonic() - t0), 1
            )
            sent_before, fills_before = bot.counters.orders_sent, bot.counters.fills
            figures["down_s"] = round(await fault(), 2)
            back = time.monotonic()
            sent_back = bot.counters.orders_sent
            _, filled_back = await asyncio.to_thread(steady.order_counts, app)
            # Recovered: the bot trades again, the worker books again, fills come back.
            figures["first_order_after_s"] = round(
                await steady.wait_until(
                    lambda: bot.counters.orders_sent > sent_back, "an order after the fault"
                ),
                2,
            )
            await steady.wait_until(
                steady.safe(
                    lambda: (
                        bot.counters.orders_sent >= sent_back + AFTER
                        and steady.order_counts(app)[1] >= filled_back + AFTER
                        and bot.counters.fills >= fills_before + AFTER
                    )
                ),
                "orders accepted, booked and reported back after the fault",
            )
            figures["recovered_s"] = round(time.monotonic() - back, 2)
            figures["orders_during_fault"] = sent_back - sent_before
            assert not runner.done(), "the system stopped during the fault"
        except BaseException:
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(runner, 30)
            raise
    # The market is gone: once the bot has worked off its backlog the system stops in order
    # (the worker finishes what it holds), and a worker started afterwards books whatever
    # was still queued.
    await steady.wait_until(
        lambda: system.prices is not None and system.prices.reconnects >= 1, "the market gone"
    )
    await steady.wait_until(quiet(lambda: bot.counters.ticks), "the bot idle", timeout=60)
    if bot_on_the_books:
        await assert_bot_on_the_books(app, bot)
    stop.set()
    await asyncio.wait_for(runner, 30)
    await drain(app, amqp_url, bus_prefix)
    accepted = steady.decisions(app, "order_sent")
    failed = steady.decisions(app, "order_failed")
    assert len(accepted) == bot.counters.orders_sent, "the audit trail lost accepted orders"
    books = steady.assert_books_exact(app, accepted, failed=failed)
    await steady.assert_no_dead_letters(amqp_url, bus_prefix)
    figures.update(
        books.as_dict(),
        failed=len(failed),
        rejected=bot.counters.orders_rejected,
        seconds=round(time.monotonic() - started, 1),
    )
    print(json.dumps(figures))
    return app, figures


# --- the servers ----------------------------------------------------------------------------
async def test_redis_restart_with_orders_flowing(
    private_redis: PrivateRedis,
    pg_schema_url: str,
    amqp_url: str,
    bus_prefix: str,
    tmp_path: Path,
    bus_cleanup: None,
) -> None:
    """Redis shuts down (every Pub/Sub connection closed), stays away a second and starts
    again: the price client publishes again, the bot and the worker resubscribe, orders flow
    on. Ticks and fill reports published while Redis was away are gone (Pub/Sub keeps
    nothing); the orders are not, and the database has each one once. The bot reads back the
    fills it missed: its accounts are the booked ones while it runs."""
    app, figures = await run_with_fault(
        "redis restart",
        lambda: private_redis.restart(down_for=1.0),
        database_url=pg_schema_url,
        redis_url=private_redis.url,
        amqp_url=amqp_url,
        bus_prefix=bus_prefix,
        folder=tmp_path,
        bot_on_the_books=True,
    )
    assert figures["failed"] == 0  # the order queue never went away
    app.close()


def off_the_books(app: App, bot: TradingBot) -> list[str]:
    """How the running bot's strategy accounts differ from the booked ones: cash, position,
    and orders it still counts in flight (empty: they agree)."""
    with app.sessions() as session:
        booked = booked_accounts(session, app.settings.trading.mode)
    initial = app.settings.trading.initial_cash
    out = []
    for (strategy, symbol), engine in bot.engines.items():
        account = booked.get((strategy, symbol), BookedAccount())
        held = (engine.portfolio.cash, engine.portfolio.qty(symbol), sorted(engine.inflight))
        wanted = (initial + account.cash_moved, account.qty, [])
        if held != wanted:
            out.append(f"{strategy} {symbol}: the bot holds {held}, the books {wanted}")
    return out


async def assert_bot_on_the_books(app: App, bot: TradingBot) -> None:
    """The running bot's accounts become the booked ones (`off_the_books` says how not)."""
    try:
        await steady.wait_until(
            steady.safe(lambda: not off_the_books(app, bot)),
            "the bot's accounts to be the booked ones",
        )
    except AssertionError:
        raise AssertionError("\n".join(off_the_books(app, bot))) from None


async def test_fills_booked_while_redis_is_away_reach_the_running_bot(
    private_redis: PrivateRedis,
    pg_schema_url: str,
    amqp_url: str,
    bus_prefix: str,
    tmp_path: Path,
    bus_cleanup: None,
) -> None:
    """Redis goes away while the worker books the bot's orders (prices are handed to the bot
    directly; the order queue and the database stay up): the fills and statuses the worker
    announces on Redis Pub/Sub are lost. Once its subscriptions are back, the running bot
    reads them back from the database: its cash and positions are the booked ones and no
    order is left in flight, without a restart."""
    app = steady.make_app(
        database_url=pg_schema_url,
        redis_url=private_redis.url,
        amqp_url=amqp_url,
        bus_prefix=bus_prefix,
        plugins=steady.write_plugin(tmp_path / "plugins"),
        feed_url="ws://127.0.0.1:9/unused",  # no price client runs
        var_dir=tmp_path / "var",
    )
    system, stop, runner = await run_services(app, ("bot", "worker"))
    try:
        bot = system.bot
        assert bot is not None and isinstance(bot.catch_up, FeedbackCatchUp)
        await private_redis.stop()
        start = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
        bars = 7  # fault_flip sends one order per closed bar and symbol after its first
        for minute in range(bars + 1):
            for n, symbol in enumerate(steady.SYMBOLS):
                price = Decimal(100 + 10 * n + minute)
                await bot.on_tick(Tick(symbol, start + timedelta(minutes=minute), price))
        await bot.drain()
        orders = bot.counters.orders_sent
        assert orders == (bars - 1) * len(steady.SYMBOLS)  # its first bar sends none
        await steady.wait_until(
            steady.safe(lambda: steady.order_counts(app) == (orders, orders)),
            "the orders booked while Redis is away",
        )
        assert bot.counters.fills == 0 and off_the_books(app, bot)  # nothing came back
        await private_redis.start()
        await assert_bot_on_the_books(app, bot)
        assert bot.catch_up.fills == orders and bot.catch_up.statuses == orders
        assert bot.counters.fills == orders and not list(bot.unsettled)
        assert not runner.done()
    finally:
        stop.set()
        await asyncio.wait_for(runner, 30)
        app.close()


async def test_rabbitmq_restart_with_orders_flowing(
    private_rabbit: PrivateRabbit,
    pg_schema_url: str,
    redis_url: str,
    bus_prefix: str,
    tmp_path: Path,
    bus_cleanup: None,
) -> None:
    """The RabbitMQ node stops (`rabbitmqctl stop`) and starts again: the bot's and the
    worker's connections come back by themselves; order events that were queued (durable
    queue, persistent messages) or unacknowledged are delivered again and booked once. Orders
    the bot could not publish while the node was down are reported failed, never traded."""
    app, figures = await run_with_fault(
        "rabbitmq restart",
        private_rabbit.restart,
        database_url=pg_schema_url,
        redis_url=redis_url,
        amqp_url=private_rabbit.url,
        bus_prefix=bus_prefix,
        folder=tmp_path,
    )
    assert figures["not_accepted"] == 0  # no order failed at the bot but traded anyway
    app.close()


async def test_postgres_stop_and_start_with_orders_flowing(
    private_pg: PrivatePostgres,
    redis_url: str,
    amqp_url: str,
    bus_prefix: str,
    tmp_path: Path,
    bus_cleanup: None,
) -> None:
    """PostgreSQL stops (`pg_ctlcluster stop`: every session terminated), stays down two
    seconds and starts again: bookings that failed meanwhile wait in the retry queues and are
    booked once the database is back (pooled connections are pinged, dead ones replaced). The
    bot treats an unreadable kill switch as engaged and refuses new orders meanwhile."""
    app, figures = await run_with_fault(
        "postgresql stop/start",
        lambda: private_pg.restart(down_for=2.0),
        database_url=private_pg.url("sigma"),
        redis_url=redis_url,
        amqp_url=amqp_url,
        bus_prefix=bus_prefix,
        folder=tmp_path,
    )
    assert figures["rejected"] > 0  # the kill switch could not be read: trading paused
    app.close()


# --- the processes --------------------------------------------------------------------------
async def test_worker_and_bot_processes_killed_with_orders_flowing(
    pg_schema_url: str,
    redis_url: str,
    amqp_url: str,
    bus_prefix: str,
    tmp_path: Path,
    bus_cleanup: None,
) -> None:
    """`sigma worker` is killed with SIGKILL just after the bot published an order, and the
    bot goes on publishing into the durable queue; a new worker (reconciling first) books the
    backlog. Then `sigma bot` is killed and started again: it reconnects to the market and
    trades on. Every order the bot logged as sent is booked once; the only others stored are
    the few the killed bot had sent in its last moment (confirmed, killed before its log
    line)."""
    figures: dict[str, Any] = {"fault": "worker and bot SIGKILL"}
    phases: dict[str, float] = {}
    started = time.monotonic()

    def phase(name: str) -> None:
        phases[name] = round(time.monotonic() - started, 1)

    async with steady.market().serve() as mkt:
        values = {
            "database_url": pg_schema_url,
            "redis_url": redis_url,
            "amqp_url": amqp_url,
            "bus_prefix": bus_prefix,
            "plugins": steady.write_plugin(tmp_path / "plugins"),
            "feed_url": mkt.url,
            "var_dir": tmp_path / "var",
        }
        app = steady.make_app(**values)
        app.db  # noqa: B018 - the schema exists before two processes start
        env = steady.env(**values)
        worker = Process("worker", env, tmp_path)
        bot = Process("bot", env, tmp_path)

        def filled() -> int:
            try:
                return steady.order_counts(app)[1]
            except Exception:
                return -1

        def sent() -> int:
            return len(bot.decisions("order_sent"))

        try:
            await worker.start()
            await bot.start()
            phase("running")
            await steady.wait_until(
                lambda: sent() >= BEFORE and filled() >= BEFORE, "orders flowing"
            )
            # kill -9 the worker just after an order left the bot: it is on its way in.
            before = sent()
            await steady.wait_until(lambda: sent() > before, "the next order", interval=0.001)
            await worker.kill()
            phase("worker_killed")
            figures["booked_when_worker_killed"] = filled()
            await steady.wait_until(
                lambda: sent() >= figures["booked_when_worker_killed"] + 10,
                "orders queued while no worker runs",
            )
            figures["backlog_at_worker_restart"] = sent() - figures["booked_when_worker_killed"]
            await worker.start()
            phase("worker_restarted")
            figures["worker_catch_up_s"] = round(
                await steady.wait_until(lambda: filled() >= sent(), "the backlog booked"), 2
            )
            # kill -9 the bot; a new one trades on.
            await bot.kill()
            phase("bot_killed")
            killed_run = len(bot.lines)
            before = sent()
            await bot.start()
            phase("bot_restarted")
            figures["bot_first_order_after_restart_s"] = round(
                await steady.wait_until(lambda: sent() > before, "an order from the new bot"), 2
            )
            await steady.wait_until(
                lambda: sent() >= before + AFTER and filled() >= before + AFTER,
                "orders from the new bot booked",
            )
            phase("recovered")
        except BaseException:
            for p in (bot, worker):
                await p.kill()
            raise
    # The market is gone. The bot stops in order (its log is then complete), the worker books
    # what is left and stops in order too.
    try:
        await bot.stop()
        accepted = bot.decisions("order_sent")
        await steady.wait_until(
            lambda: filled() >= len(accepted) and steady.order_counts(app)[0] == filled(),
            "every order booked",
        )
        await worker.stop()
    finally:
        for p in (bot, worker):
            await p.kill()
    phase("stopped")
    await steady.assert_queue_empty(amqp_url, bus_prefix)
    await steady.assert_no_dead_letters(amqp_url, bus_prefix)
    books = steady.assert_books_exact(
        app, accepted, failed=bot.decisions("order_failed"), unlogged=UNLOGGED
    )
    # Orders stored but never logged were sent by the killed bot in its last moment: decided
    # no earlier than its last logged order, before the new bot's first.
    when = steady.decided_at(app)
    last_logged = max(
        when[c] for c in steady.decisions_in_log(bot.lines[:killed_run], "order_sent")
    )
    first_new = min(when[c] for c in steady.decisions_in_log(bot.lines[killed_run:], "order_sent"))
    assert all(last_logged <= when[c] < first_new for c in books.not_accepted), books.not_accepted
    figures.update(
        books.as_dict(),
        redelivered_to_new_worker=sum("redelivery ignored" in line for line in worker.lines),
        phases_s=phases,
        seconds=round(time.monotonic() - started, 1),
    )
    print(json.dumps(figures))
    app.close()


async def test_postgres_away_longer_than_the_retries_loses_no_order(
    private_pg: PrivatePostgres,
    redis_url: str,
    amqp_url: str,
    bus_prefix: str,
    bus_cleanup: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """PostgreSQL is down while orders arrive, for longer than the order queue's retries
    last (one retry here; 15 seconds of them by default). An order that failed for want of
    the database is not the order's fault: the worker holds it, says at each try what it
    waits for and where, and books it once the database is back. Then the database goes
    away again and the system is stopped meanwhile: the worker lets go of the orders it
    holds (unacknowledged, so RabbitMQ keeps them) and stops in time, and the next worker
    books them. Nothing is dead-lettered, each order has one fill."""
    caplog.set_level(logging.WARNING)
    app = make_app(
        database_url=private_pg.url("sigma"),
        redis_url=redis_url,
        amqp_url=amqp_url,
        bus_prefix=bus_prefix,
        order_max_retries=1,
    )
    events = [fault_order(f"pg-away-{i:02d}") for i in range(5)]
    first, second = events[:3], events[3:]
    producer = RabbitWorkQueue(amqp_url, bus_prefix)

    async def publish_while_down(part: list[OrderEvent]) -> None:
        waited = caplog.text.count(" waits (try")
        await private_pg.stop()
        for event in part:
            await producer.publish(QUEUE_ORDERS, event.to_bytes(), message_id=event.client_order_id)
        await steady.wait_until(
            lambda: (
                "dead-lettering" in caplog.text
                or caplog.text.count(" waits (try") >= waited + 3 * len(part)
            ),
            "each order tried more often than the queue retries",
        )

    try:
        system, stop, runner = await run_services(app, ("worker",))
        worker = system.worker
        assert worker is not None
        await publish_while_down(first)
        await private_pg.start()
        await steady.wait_until(lambda: worker.processed == len(first), "the orders booked")
        await publish_while_down(second)
        stop.set()
        await asyncio.wait_for(runner, 30)  # stops although the database is still down
        await private_pg.start()
        system, stop, runner = await run_services(app, ("worker",))
        again = system.worker
        assert again is not None
        await steady.wait_until(lambda: again.processed == len(second), "the held orders booked")
    finally:
        await producer.close()
        stop.set()
        await asyncio.wait_for(runner, 30)
    assert "dead-lettering" not in caplog.text
    database = f"postgresql+psycopg://postgres@127.0.0.1:{private_pg.port}/sigma"
    assert re.search(
        r"order event pg-away-00 waits \(try 2, again in 0\.20s\): the database "
        rf"{re.escape(database)} is unavailable: OperationalError: .*Connection refused",
        caplog.text,
    ), caplog.text
    with app.sessions() as s:
        fills = Counter(s.scalars(select(FillRecord.client_order_id)))
        statuses = dict(s.execute(select(OrderRecord.client_order_id, OrderRecord.status)).all())
    assert fills == {e.client_order_id: 1 for e in events}
    assert statuses == {e.client_order_id: "filled" for e in events}
    await steady.assert_no_dead_letters(amqp_url, bus_prefix)
    app.close()


def fault_order(coid: str) -> OrderEvent:
    """A paper market buy of one unit of the test symbol."""
    return OrderEvent(
        client_order_id=coid,
        symbol=SYMBOL,
        side=Side.BUY,
        qty=Decimal(1),
        ref_price=Decimal(100),
        strategy="faults",
        created_at=datetime.now(UTC),
    )

"""Venue faults with the real order queue and database: `sigma venue` in the test process (its
Binance or Upbit protocol on a free port; every test runs for both), a real `sigma worker`
child process trading on it through ccxt over HTTP and WebSocket, on PostgreSQL (a fresh
schema, migrated before the worker starts) and RabbitMQ (queues of the test's own prefix).
The test publishes the orders with `OrderExecutor`, as the bot does, and injects the faults:

1. the connection dropped after the venue accepted an order: one order at the venue, one
   booking;
2. the worker killed with SIGKILL while a limit order rests, the price moving through it while
   no worker runs: the next worker finds the order and books its fills once;
3. a 429 storm on a small rate limit (Binance's request weight, Upbit's order group) while
   orders flow: every order booked once, no 418 ban ever answered, the worker alive;
4. the user stream cut while a limit fills in parts: polling catches up, every venue trade
   booked once;
5. the kill switch turned on with two resting orders: both cancelled at the venue and booked
   so, an alert with the count.

The same faults are tested in-process in `tests/venues/emulator/` (test_order_follower.py,
test_adapter_*.py, test_venue_booking.py); here they cross the process, queue and database
boundaries a deployment has.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import Decimal as D
from pathlib import Path
from typing import Any, cast

import pytest
import redis.asyncio as aioredis
from sqlalchemy import select

from sigma.bootstrap import App, make_work_queue
from sigma.bus.base import QUEUE_ORDERS, WorkQueue
from sigma.config import load_settings
from sigma.domain import Order, OrderType, Side
from sigma.execution.executor import OrderExecutor
from sigma.store.control import KILL_SWITCH, set_flag
from sigma.store.models import AlertLog, FillRecord, LedgerEntry, OrderRecord, PositionRecord
from sigma.venues.emulator.binance import BinanceFrontEnd
from sigma.venues.emulator.limits import Verdict, WeightWindow
from sigma.venues.emulator.server import VenueServer
from sigma.venues.emulator.upbit import UpbitFrontEnd
from sigma.venues.emulator.venue import Venue
from tests.integration import steady_orders as steady
from tests.integration.cli_process import Process
from tests.venues.emulator.venue_helpers import (
    BINANCE_KEY,
    BINANCE_SECRET,
    UPBIT_KEY,
    UPBIT_SECRET,
    venue_config,
)

# One xdist worker runs these one after the other: each starts a worker process of its own.
pytestmark = [pytest.mark.integration, pytest.mark.pg, pytest.mark.xdist_group("venue_faults")]


# --- the venues -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """What differs between the two protocols for these tests."""

    name: str
    key: str
    secret: str
    #: the venue's market for SIGMA's BTC, and its quote currency
    market: str
    quote: str
    #: the account's opening balances at the test venue (venue_helpers)
    opening: dict[str, D]
    #: the venue's start price (the decision price of a market order)
    start: D
    #: a resting buy's limit below the start price, a trade through it, one price tick
    limit: D
    through: D
    tick: D
    #: what one trade through a resting limit fills (the venue's quantity per level)
    level: D
    #: a limit filled by three trades: two levels and a part of one
    three_fills: D
    #: the taker fee and the currency a buy pays it in
    fee: D
    buy_fee_asset: str
    #: the 429 test's small rate limit: the worker's start and eight orders need more, so the
    #: limit refuses some besides the storm
    small_limits: dict[str, int]

    def front(self, server: VenueServer) -> Any:
        return server.fronts[self.name]

    def limiters(self, server: VenueServer) -> list[WeightWindow]:
        """The REST limiters: Binance's one request-weight window, Upbit's one per group."""
        if self.name == "binance":
            return [cast(BinanceFrontEnd, self.front(server)).rest.limiter]
        return list(cast(UpbitFrontEnd, self.front(server)).rest.limiters.values())

    def user_streams(self, server: VenueServer) -> int:
        """The account's user-data (Upbit: private ``myOrder``) subscriptions at the venue."""
        if self.name == "binance":
            front = cast(BinanceFrontEnd, self.front(server))
            return len(front.streams._users.get(self.key, {}))
        streams = cast(UpbitFrontEnd, self.front(server)).streams._streams
        return sum(
            1
            for s in streams
            if s.account is not None and s.account.api_key == self.key and "myOrder" in s.subs
        )


BINANCE = Case(
    name="binance",
    key=BINANCE_KEY,
    secret=BINANCE_SECRET,
    market="BTCUSDT",
    quote="USDT",
    opening={"USDT": D(100_000), "BTC": D(1)},
    start=D(92_000),
    limit=D(91_000),
    through=D(90_990),
    tick=D(1),
    level=D("0.05"),
    three_fills=D("0.12"),
    fee=D("0.001"),
    buy_fee_asset="BTC",
    # the worker's start alone (markets, account, open orders) weighs 46
    small_limits={"weight_limit": 40, "weight_window_ms": 2000},
)
UPBIT = Case(
    name="upbit",
    key=UPBIT_KEY,
    secret=UPBIT_SECRET,
    market="KRW-BTC",
    quote="KRW",
    opening={"KRW": D(100_000_000), "BTC": D(1)},
    start=D(130_000_000),
    limit=D(129_000_000),
    through=D(128_990_000),
    tick=D(1_000),
    level=D("0.01"),
    three_fills=D("0.025"),
    fee=D("0.0005"),
    buy_fee_asset="KRW",
    # two orders a second: eight sent at once cannot all pass in one
    small_limits={"order_per_window": 2, "window_ms": 1000},
)


@pytest.fixture(params=[BINANCE, UPBIT], ids=lambda case: case.name)
def case(request: pytest.FixtureRequest) -> Case:
    return cast(Case, request.param)


# --- the rig --------------------------------------------------------------------------------
@dataclass
class Rig:
    """The venue, the database as the worker books it, the order queue and the worker."""

    case: Case
    server: VenueServer
    app: App
    queue: WorkQueue
    executor: OrderExecutor
    worker: Process
    #: every answer of the venue's rate limiters: ("limit" or "storm", HTTP status)
    verdicts: list[tuple[str, int]] = field(default_factory=list)

    # --- orders in ---------------------------------------------------------------------
    async def send(self, coid: str, side: Side, qty: D, limit: D | None = None) -> None:
        """Publish one live order, as the bot would (a market order decided at the venue's
        start price: an Upbit market buy spends qty × that price)."""
        order = Order(
            "BTC",
            side,
            OrderType.LIMIT if limit is not None else OrderType.MARKET,
            qty=qty,
            limit_price=limit,
            strategy="faults",
            client_order_id=coid,
        )
        await self.executor.submit(order, limit or self.case.start)

    # --- the books ---------------------------------------------------------------------
    def rows(self, model: type) -> list[Any]:
        with self.app.sessions() as s:
            found: list[Any] = list(s.scalars(select(model)))
            s.expunge_all()
            return found

    def order(self, coid: str) -> OrderRecord | None:
        return next((o for o in self.rows(OrderRecord) if o.client_order_id == coid), None)

    def status(self, coid: str) -> str | None:
        order = self.order(coid)
        return None if order is None else order.status

    def resting(self, coid: str) -> bool:
        """Booked as the venue accepted it, open (the worker records an order before it
        sends it, so an open row alone is no proof the venue has it)."""
        order = self.order(coid)
        return order is not None and order.status == "new" and bool(order.exchange_order_id)

    def fills(self, coid: str | None = None) -> list[FillRecord]:
        return [f for f in self.rows(FillRecord) if coid is None or f.client_order_id == coid]

    def position(self) -> D:
        return sum((p.qty for p in self.rows(PositionRecord) if p.symbol == "BTC"), D(0))

    # --- the venue ---------------------------------------------------------------------
    @property
    def venue(self) -> Venue:
        return cast(Venue, getattr(self.server, self.case.name))

    def venue_orders(self, coid: str | None = None) -> list[Any]:
        held = self.venue.orders(self.case.key)
        return [o for o in held if coid is None or o.client_id == coid]

    def open_at_venue(self) -> list[Any]:
        return self.venue.open_orders(self.case.key)

    def venue_total(self, asset: str) -> D:
        free, locked = self.venue.accounts[self.case.key].balance(asset)
        return D(free + locked)

    def user_streams(self) -> int:
        return self.case.user_streams(self.server)

    def through(self) -> None:
        """One trade through the resting limits."""
        self.venue.tick(self.case.market, self.case.through, D(1))

    # --- checks ------------------------------------------------------------------------
    def assert_booked_as_the_venue_traded(self) -> None:
        """Every venue trade of the account is booked once (one fill, one ledger entry), each
        order's fills sum to its filled quantity there and here, and the position and cash are
        what the account holds beyond its opening balances."""
        trades = self.venue.trades(self.case.key)
        fills = self.fills()
        assert len(fills) == len(trades), (len(fills), len(trades))
        assert sorted((f.qty, f.price) for f in fills) == sorted((t.qty, t.price) for t in trades)
        ledger = [e for e in self.rows(LedgerEntry) if e.reason == "fill"]
        assert len(ledger) == len(fills)
        for venue_order in self.venue_orders():
            order = self.order(venue_order.client_id)
            assert order is not None, venue_order.client_id
            assert order.filled_qty == venue_order.filled
            booked = sum((f.qty for f in fills if f.client_order_id == order.client_order_id), D(0))
            assert booked == order.filled_qty
        assert self.venue_total("BTC") == self.case.opening["BTC"] + self.position()
        cash = sum((e.cash_delta for e in self.rows(LedgerEntry)), D(0))
        quote = self.case.quote
        assert self.venue_total(quote) == self.case.opening[quote] + cash


def count_verdicts(limiter: WeightWindow, into: list[tuple[str, int]]) -> None:
    """Record every answer of a venue's rate limiter to a REST request: the window's (200,
    429 over the limit, 418 banned) and the storm's forced 429s."""
    check, refuse = limiter.check, limiter.refuse

    def counted(kind: str, verdict: Verdict) -> Verdict:
        into.append((kind, verdict.status))
        return verdict

    limiter.check = lambda client, weight: counted("limit", check(client, weight))  # type: ignore[method-assign]
    limiter.refuse = lambda client: counted("storm", refuse(client))  # type: ignore[method-assign]


@contextlib.asynccontextmanager
async def rig(
    case: Case,
    *,
    database_url: str,
    redis_url: str,
    amqp_url: str,
    bus_prefix: str,
    folder: Path,
    limits: dict[str, Any] | None = None,
    venue_away: bool = False,
    **worker_settings: Any,
) -> AsyncIterator[Rig]:
    """The venue serving (`limits`: the case's protocol settings), the database migrated,
    the queue ready and `sigma worker` started on them trading the case's protocol (its
    settings from SIGMA_* variables; `worker_settings` add some). With `venue_away` the
    worker is only launched, toward a free port the venue will serve on once the test
    enters `server.serve()`."""
    config = venue_config(**{case.name: limits})
    if venue_away:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            config = config.model_copy(update={"port": probe.getsockname()[1]})
    server = VenueServer(config)
    async with contextlib.AsyncExitStack() as serving:
        if not venue_away:
            await serving.enter_async_context(server.serve())
        verdicts: list[tuple[str, int]] = []
        for limiter in case.limiters(server):
            count_verdicts(limiter, verdicts)
        exchange = {**server.ccxt_config(case.name), "apiKey": case.key, "secret": case.secret}
        settings: dict[str, Any] = {
            "database_url": database_url,
            "redis_url": redis_url,
            "amqp_url": amqp_url,
            "bus_prefix": bus_prefix,
            "var_dir": str(folder / "var"),
            "venue": case.name,
            "mode": "live",
            "exchange_config": json.dumps(exchange),
            "symbols": "BTC",
            "order_poll_seconds": 0.3,
            **worker_settings,
        }
        env = {f"SIGMA_{k.upper()}": str(v) for k, v in settings.items()}
        app = App(load_settings(database_url=database_url, var_dir=folder / "var"))
        app.db  # noqa: B018 - migrated once, before the worker process starts
        queue = make_work_queue(amqp_url, bus_prefix)
        await queue.prepare(QUEUE_ORDERS)
        worker = Process("worker", env, folder)
        try:
            await (worker.launch() if venue_away else worker.start())
            executor = OrderExecutor(queue, mode="live")
            yield Rig(case, server, app, queue, executor, worker, verdicts)
        finally:
            await worker.kill()
            await queue.close()
            app.close()
            await steady.delete_queues(amqp_url, bus_prefix)
            client = aioredis.Redis.from_url(redis_url)
            keys = [key async for key in client.scan_iter(match=f"{bus_prefix}*")]
            if keys:
                await client.delete(*keys)
            await client.aclose()


@pytest.fixture
def servers(
    pg_schema_url: str, redis_url: str, amqp_url: str, bus_prefix: str, tmp_path: Path
) -> dict[str, Any]:
    return {
        "database_url": pg_schema_url,
        "redis_url": redis_url,
        "amqp_url": amqp_url,
        "bus_prefix": bus_prefix,
        "folder": tmp_path,
    }


async def until(check: Callable[[], bool], what: str, timeout: float = 20.0) -> float:
    """`check` true within `timeout` seconds (the database read may fail meanwhile)."""
    return await steady.wait_until(steady.safe(check), what, timeout=timeout)


def log_has(worker: Process, text: str) -> bool:
    return any(text in line for line in worker.lines)


# --- the faults -----------------------------------------------------------------------------
async def test_connection_dropped_after_the_venue_accepted(
    case: Case, servers: dict[str, Any]
) -> None:
    """The venue accepts and books a market buy, then closes the connection unanswered: the
    worker looks the client id up before sending again and books the order it finds. One
    order at the venue, one order with one fill in PostgreSQL. (Upbit's market buy spends
    qty × the decision price, so what it fills is compared with the venue, not the order.)"""
    started = time.monotonic()
    async with rig(case, **servers) as r:
        r.server.faults.update({"drop_after_accept": 1})
        await r.send("drop-0000001", Side.BUY, D("0.01"))
        await until(lambda: r.status("drop-0000001") == "filled", "the order booked filled")
        assert r.server.faults.drop_after_accept == 0  # the fault was used
        (venue_order,) = r.venue_orders()
        assert venue_order.client_id == "drop-0000001" and venue_order.filled > 0
        if case.name == "binance":
            assert venue_order.filled == D("0.01")
        (order,) = r.rows(OrderRecord)
        assert order.filled_qty == venue_order.filled and order.exchange_order_id
        (fill,) = r.fills("drop-0000001")
        assert (fill.qty, fill.fee_asset) == (venue_order.filled, case.buy_fee_asset)
        r.assert_booked_as_the_venue_traded()
        assert log_has(r.worker, "already at the venue"), "\n".join(r.worker.lines[-30:])
    seconds = round(time.monotonic() - started, 1)
    print(json.dumps({"fault": "drop after accept", "venue": case.name, "seconds": seconds}))


async def test_worker_killed_while_an_order_rests_the_next_one_follows_it(
    case: Case, servers: dict[str, Any]
) -> None:
    """A limit buy rests at the venue; the worker is killed with SIGKILL; the price trades
    through the limit three times while no worker runs, filling the order; a new worker
    process finds the order open in PostgreSQL, looks it up and books each fill once. The
    position is what the account holds beyond its opening (Binance takes a buy's fee in BTC,
    Upbit in KRW)."""
    started = time.monotonic()
    qty = case.three_fills
    async with rig(case, **servers) as r:
        await r.send("kill-0000001", Side.BUY, qty, case.limit)
        await until(lambda: r.resting("kill-0000001"), "the limit resting at the venue")
        (venue_order,) = r.venue_orders()
        assert venue_order.status == "NEW"
        await r.worker.kill()
        for _ in range(3):
            r.through()
        assert r.venue_orders()[0].filled == qty  # filled while no worker runs
        assert r.status("kill-0000001") == "new"
        await r.worker.start()
        await until(lambda: r.status("kill-0000001") == "filled", "the fills booked")
        # three trades, maybe within one millisecond: compared as a multiset, not by time
        fills = r.fills()
        assert sorted(f.qty for f in fills) == sorted([case.level] * 2 + [qty - 2 * case.level])
        assert all(f.fee_asset == case.buy_fee_asset and f.fee > 0 for f in fills)
        in_base = case.buy_fee_asset == "BTC"
        assert r.position() == (qty * (1 - case.fee) if in_base else qty)
        r.assert_booked_as_the_venue_traded()
        assert r.worker.runs == 2
    seconds = round(time.monotonic() - started, 1)
    print(json.dumps({"fault": "worker SIGKILL", "venue": case.name, "seconds": seconds}))


async def test_a_worker_started_while_the_venue_is_away_waits_for_it(
    servers: dict[str, Any],
) -> None:
    """`sigma worker` started while nothing listens at the venue's address: it says so in
    one line naming the address and what to check, raises one alert, and tries again with
    growing pauses while an order waits in the queue, instead of ending with a traceback.
    Once the venue serves, the worker reconciles, announces it is ready and books the order
    as the venue traded it."""
    async with rig(BINANCE, venue_away=True, **servers) as r:
        away = f"binance at {r.server.http_url}/api/v3 failed"
        retried = "trying again in 2s"  # the second try's line: the first pause was 1s
        await until(lambda: log_has(r.worker, retried), "the worker trying the venue again", 60)
        assert r.worker.running and not log_has(r.worker, "Traceback")
        (line,) = [x for x in r.worker.lines if "trying again in 1s" in x and "WARNING" in x]
        assert away in line and "SIGMA_EXCHANGE_CONFIG" in line, line
        await r.send("away-0000001", Side.BUY, D("0.01"))
        assert r.status("away-0000001") is None  # not taken while the venue is away
        async with r.server.serve():
            await r.worker.ready()
            await until(lambda: r.status("away-0000001") == "filled", "the order booked")
            r.assert_booked_as_the_venue_traded()
            (alert,) = [a for a in r.rows(AlertLog) if "cannot reconcile" in a.message]
            assert alert.severity == "critical" and away in alert.message
            await r.worker.stop()


async def test_a_429_storm_backs_off_without_a_ban(case: Case, servers: dict[str, Any]) -> None:
    """A small rate limit and a storm of forced 429s while eight market orders flow: the
    worker waits out every refusal and the venue never bans it (no 418 answered); every
    order is at the venue once and booked once, and the worker is still running."""
    started = time.monotonic()
    orders = [f"storm-{n:07d}" for n in range(8)]
    async with rig(case, **servers, limits=case.small_limits) as r:
        r.server.faults.update({"rate_limit_storm": 4})
        for n, coid in enumerate(orders):
            await r.send(coid, Side.BUY if n % 2 == 0 else Side.SELL, D("0.001"))
        try:
            await until(lambda: all(r.status(c) == "filled" for c in orders), "the orders", 45)
        except AssertionError as exc:
            booked = {c: r.status(c) for c in orders}
            raise AssertionError(f"{exc}: {booked}, limiter {Counter(r.verdicts)}") from None
        assert r.worker.running
        assert sorted(o.client_id for o in r.venue_orders()) == orders
        r.assert_booked_as_the_venue_traded()
        statuses = [status for _, status in r.verdicts]
        assert 418 not in statuses, r.verdicts
        storm = r.verdicts.count(("storm", 429))
        over_limit = r.verdicts.count(("limit", 429))
        # Every forced 429 was met; whether the small limit was also overrun depends on how
        # fast the machine sent (the pacing after the storm avoids it): reported, not required.
        assert storm == 4, r.verdicts
    figures = {
        "fault": "429 storm",
        "venue": case.name,
        "answers": len(r.verdicts),
        "storm_429": storm,
        "over_limit_429": over_limit,
        "seconds": round(time.monotonic() - started, 1),
    }
    print(json.dumps(figures))


async def test_user_stream_cut_polling_catches_up(case: Case, servers: dict[str, Any]) -> None:
    """A limit buy of four levels rests; the venue cuts every WebSocket, and the price trades
    through the limit while the user stream is down: polling books the fill. The stream comes
    back and the rest fills: every venue trade is booked once, none missed."""
    started = time.monotonic()
    async with rig(case, **servers, order_stream_poll_seconds=60) as r:
        await r.send("cut-00000001", Side.BUY, 4 * case.level, case.limit)
        await until(lambda: r.resting("cut-00000001"), "the limit resting at the venue")
        await until(lambda: r.user_streams() == 1, "the user stream subscribed")
        r.through()
        await until(lambda: len(r.fills("cut-00000001")) == 1, "the first fill, streamed")
        assert r.server.disconnect_streams() >= 1
        r.through()  # while the stream is down
        await until(lambda: len(r.fills("cut-00000001")) == 2, "the second fill, by polling")
        await until(lambda: r.user_streams() == 1, "the user stream back")
        r.through()
        r.through()
        await until(lambda: r.status("cut-00000001") == "filled", "every fill booked")
        assert [f.qty for f in r.fills()] == [case.level] * 4
        r.assert_booked_as_the_venue_traded()
        assert log_has(r.worker, "user stream dropped"), "\n".join(r.worker.lines[-30:])
    seconds = round(time.monotonic() - started, 1)
    print(json.dumps({"fault": "stream cut", "venue": case.name, "seconds": seconds}))


async def test_the_kill_switch_cancels_every_resting_order(
    case: Case, servers: dict[str, Any]
) -> None:
    """Two limit buys rest at the venue; the kill switch is turned on in the database (as
    `sigma kill-switch on` does): the worker cancels both at the venue, books them cancelled
    (an Upbit cancel is answered with the order still open and followed until it is final)
    and raises a critical alert saying how many it cancelled."""
    started = time.monotonic()
    orders = ["halt-0000001", "halt-0000002"]
    async with rig(case, **servers) as r:
        for n, coid in enumerate(orders):
            await r.send(coid, Side.BUY, D("0.01"), case.limit + n * case.tick)
        await until(lambda: all(r.resting(c) for c in orders), "both limits resting")
        assert len(r.open_at_venue()) == 2
        with r.app.sessions.begin() as session:
            set_flag(session, KILL_SWITCH, True, reason="venue fault test", changed_by="test")
        await until(lambda: all(r.status(c) == "cancelled" for c in orders), "both cancelled")
        assert r.open_at_venue() == []
        assert sorted(o.status for o in r.venue_orders()) == ["CANCELED", "CANCELED"]
        assert r.fills() == []
        await until(
            lambda: any("cancelled 2 open orders" in a.message for a in r.rows(AlertLog)),
            "the kill switch alert stored",
        )
        (alert,) = [a for a in r.rows(AlertLog) if "cancelled 2 open orders" in a.message]
        assert alert.severity == "critical"
        # the worker logs it before it stores the alert; the test reads its output meanwhile
        expected = f"kill switch on: cancelled 2 open orders at {case.name}"
        await until(lambda: log_has(r.worker, expected), "the kill switch logged", 5)
    seconds = round(time.monotonic() - started, 1)
    print(json.dumps({"fault": "kill switch", "venue": case.name, "seconds": seconds}))

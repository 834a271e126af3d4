"""The order lifecycle after placement, through real ccxt over HTTP and WebSocket to
`sigma venue`: open orders followed until final (user stream and polling), partial fills
booked as they happen, cancels, the kill switch, time-outs, rate limits and restarts."""

from __future__ import annotations

import asyncio
import contextlib
from decimal import Decimal as D

import pytest
from adapter_helpers import limit
from follower_helpers import booked, cancel_body, fills, following, order_row, until
from sqlalchemy import Engine
from venue_helpers import BINANCE_KEY, BINANCE_SECRET, UPBIT_KEY, UPBIT_SECRET, venue_config

from sigma.bus.base import Delivery
from sigma.domain import Side
from sigma.execution.events import CancelEvent
from sigma.execution.follower import FollowerSettings
from sigma.store import init_db
from sigma.store.control import KILL_SWITCH, set_flag
from sigma.venues.emulator.binance import BinanceSettings
from sigma.venues.emulator.server import VenueServer

#: venue -> (keys, the venue's market, a resting buy price, a price that trades through it,
#: what one trade there fills, the order's quantity)
VENUES = {
    "binance": (BINANCE_KEY, BINANCE_SECRET, "BTCUSDT", "91000", "90990", D("0.05"), "0.12"),
    "upbit": (UPBIT_KEY, UPBIT_SECRET, "KRW-BTC", "129000000", "128990000", D("0.01"), "0.025"),
}


@pytest.fixture
def sqlite_engine(tmp_path) -> Engine:  # type: ignore[no-untyped-def]
    eng = init_db(f"sqlite:///{tmp_path / 'sigma.db'}")
    yield eng
    eng.dispose()


def tick(server: VenueServer, venue: str, price: str) -> None:
    market = VENUES[venue][2]
    getattr(server, venue).tick(market, D(price), D(1))


@pytest.mark.parametrize("venue", ["binance", "upbit"])
async def test_a_resting_limit_is_booked_fill_by_fill_from_the_stream_then_cancelled(
    venue_server: VenueServer, engine: Engine, venue: str
) -> None:
    key, secret, _, price, through, step, qty = VENUES[venue]
    # Polling far apart: only the user stream can book the fills within the deadline.
    async with following(
        venue_server, venue, engine, key, secret, poll_seconds=60, stream_poll_seconds=60
    ) as f:
        placed = await f.worker.execute(limit("rest-0000001", Side.BUY, qty, price))
        assert placed is not None and placed.status == "new"
        assert list(f.follower.open) == ["rest-0000001"]
        await until(lambda: f.follower.stream_up, "the user stream")
        for n in (1, 2):
            tick(venue_server, venue, through)
            await until(
                lambda n=n: (
                    booked(f.sessions, "rest-0000001")  # type: ignore[misc]
                    == ("partially_filled", step * n, n)
                ),
                f"fill {n} booked",
            )
        assert f.follower.counts.stream_updates >= 2
        await f.worker.handle(Delivery(cancel_body("rest-0000001"), "cancel-rest-0000001"))
        await until(lambda: booked(f.sessions, "rest-0000001")[0] == "cancelled", "the cancel")
        assert booked(f.sessions, "rest-0000001") == ("cancelled", step * 2, 2)
        assert all(fill.fee > 0 for fill in fills(f.sessions, "rest-0000001"))
        assert f.follower.open == {}
        # A cancel delivered again changes nothing.
        again = CancelEvent.model_validate_json(cancel_body("rest-0000001"))
        assert await f.worker.cancel(again) == "cancelled"
    assert not f.sleeps


async def test_the_stream_cut_polling_catches_up_and_nothing_is_booked_twice(
    venue_server: VenueServer, sqlite_engine: Engine
) -> None:
    async with following(
        venue_server,
        "binance",
        sqlite_engine,
        BINANCE_KEY,
        BINANCE_SECRET,
        poll_seconds=0.2,
        stream_poll_seconds=60,
        stream_settle_seconds=0.3,
    ) as f:
        await f.worker.execute(limit("cut-00000001", Side.BUY, "0.2", "91000"))
        await until(lambda: f.follower.stream_up, "the user stream")
        assert venue_server.disconnect_streams() >= 1
        tick(venue_server, "binance", "90990")  # while the stream is down
        await until(lambda: booked(f.sessions, "cut-00000001")[2] == 1, "the fill, by polling")
        await until(lambda: f.follower.stream_up, "the stream back")
        for _ in range(3):
            tick(venue_server, "binance", "90990")
        await until(lambda: booked(f.sessions, "cut-00000001")[0] == "filled", "every fill")
        (order,) = venue_server.binance.orders(BINANCE_KEY)
        assert booked(f.sessions, "cut-00000001") == ("filled", D("0.2"), 4)
        assert order.filled == D("0.2")
        assert f.follower.counts.errors >= 1  # the dropped stream


async def test_polling_keeps_within_its_budget_and_the_venue_limit(
    make_venue_server, sqlite_engine: Engine
) -> None:
    settings = BinanceSettings(weight_limit=80, weight_window_ms=2000)
    async with (
        make_venue_server(binance=settings) as server,
        following(
            server,
            "binance",
            sqlite_engine,
            BINANCE_KEY,
            BINANCE_SECRET,
            stream=False,
            poll_seconds=0.05,
            requests_per_second=5,
        ) as f,
    ):
        for n in range(4):
            await f.worker.execute(limit(f"poll-000000{n}", Side.BUY, "0.01", str(90000 + n)))
        start = f.follower.counts.lookups
        await until(lambda: f.follower.counts.lookups >= start + 12, "a dozen lookups")
        tick(server, "binance", "89990")
        await until(
            lambda: all(booked(f.sessions, f"poll-000000{n}")[0] == "filled" for n in range(4)),
            "the fills, by polling",
        )
    assert not f.sleeps  # never refused: no backoff was needed


async def test_a_429_storm_backs_off_and_is_never_banned(
    make_venue_server, sqlite_engine: Engine
) -> None:
    # A budget above the venue's limit: refusals come, Retry-After is honoured, no 418.
    settings = BinanceSettings(weight_limit=40, weight_window_ms=1000, ban_after=2)
    async with (
        make_venue_server(binance=settings) as server,
        following(
            server,
            "binance",
            sqlite_engine,
            BINANCE_KEY,
            BINANCE_SECRET,
            stream=False,
            poll_seconds=0.02,
            requests_per_second=40,
        ) as f,
    ):
        for n in range(3):
            await f.worker.execute(limit(f"storm-00000{n}", Side.BUY, "0.01", str(90000 + n)))
        server.faults.update({"rate_limit_storm": 3})
        await until(lambda: len(f.sleeps) >= 4, "backoffs after 429s")
        tick(server, "binance", "89990")
        await until(
            lambda: all(booked(f.sessions, f"storm-00000{n}")[0] == "filled" for n in range(3)),
            "the fills despite the refusals",
        )
        assert await f.client.lookup("storm-000000", "BTC") is not None  # not banned
    assert max(f.sleeps) >= 1  # the venue's Retry-After, not the short backoff


async def test_the_kill_switch_cancels_every_open_order_and_reports_how_many(
    venue_server: VenueServer, sqlite_engine: Engine
) -> None:
    async with following(
        venue_server,
        "binance",
        sqlite_engine,
        BINANCE_KEY,
        BINANCE_SECRET,
        kill_switch_seconds=0.05,
        poll_seconds=0.2,
    ) as f:
        for n in range(2):
            await f.worker.execute(limit(f"kill-00000{n}", Side.BUY, "0.01", str(90000 + n)))
        await f.worker.execute(limit("kill-sell-01", Side.SELL, "0.01", "95000"))
        with f.sessions() as session:
            set_flag(session, KILL_SWITCH, True, reason="test", changed_by="test")
            session.commit()
        await until(lambda: bool(f.alerts), "the alert")
        ids = ["kill-000000", "kill-000001", "kill-sell-01"]
        await until(
            lambda: all(booked(f.sessions, c)[0] == "cancelled" for c in ids), "cancels booked"
        )
        (severity, message, details) = f.alerts[0]
        assert severity == "critical" and details["cancelled"] == 3
        assert "cancelled 3 open orders" in message
        assert not venue_server.binance.open_orders(BINANCE_KEY)


async def test_a_resting_limit_that_times_out_is_cancelled(
    venue_server: VenueServer, sqlite_engine: Engine
) -> None:
    # Upbit cancels asynchronously: the follower books the cancel once the venue reports it.
    async with following(
        venue_server,
        "upbit",
        sqlite_engine,
        UPBIT_KEY,
        UPBIT_SECRET,
        order_timeout=0.4,
        poll_seconds=0.1,
    ) as f:
        await f.worker.execute(limit("late-0000001", Side.BUY, "0.02", "129000000"))
        await until(lambda: booked(f.sessions, "late-0000001")[0] == "cancelled", "time-out")
        assert f.follower.counts.timeouts == 1


async def test_a_fresh_worker_finds_and_follows_an_order_left_open(
    venue_server: VenueServer, sqlite_engine: Engine
) -> None:
    async with following(
        venue_server, "upbit", sqlite_engine, UPBIT_KEY, UPBIT_SECRET, run=False
    ) as dead:
        await dead.worker.execute(limit("left-0000001", Side.BUY, "0.025", "129000000"))
    # The first worker is gone (its process killed); the next one starts on the same store.
    async with following(
        venue_server, "upbit", sqlite_engine, UPBIT_KEY, UPBIT_SECRET, poll_seconds=0.2
    ) as f:
        await until(lambda: "left-0000001" in f.follower.open, "the open order loaded")
        tick(venue_server, "upbit", "128990000")
        await until(lambda: booked(f.sessions, "left-0000001")[2] == 1, "its fill")
        assert order_row(f.sessions, "left-0000001").status == "partially_filled"


@pytest.mark.parametrize("name", ["binance", "upbit"])
async def test_an_order_a_restarted_venue_lost_is_booked_cancelled_with_an_alert(
    sqlite_engine: Engine, name: str
) -> None:
    """`sigma venue` killed and started again without its state while a limit order rests:
    the new venue has never heard of it. Looked up twice in a row without being found, it is
    booked cancelled with the reason and a critical alert, instead of staying open for good
    with nothing to finish it."""
    key, secret, _, price, _, _, qty = VENUES[name]
    config = venue_config()
    async with contextlib.AsyncExitStack() as venue:
        first = await venue.enter_async_context(VenueServer(config).serve())
        async with following(first, name, sqlite_engine, key, secret, stream=False, run=False) as f:
            await f.worker.execute(limit("lost-0000001", Side.BUY, qty, price))
            assert order_row(f.sessions, "lost-0000001").exchange_order_id
            f.follower.settings = FollowerSettings(poll_seconds=0.05, retry_seconds=0.05)
            await venue.aclose()  # the venue goes, its state with it
            async with VenueServer(config.model_copy(update={"port": first.port})).serve():
                stop = asyncio.Event()
                task = asyncio.create_task(f.follower.run("live", stop))
                try:
                    # Booked, then no longer followed: the worker tells the follower once its
                    # booking is committed and announced, and stopping cancels the poll.
                    await until(
                        lambda: (
                            order_row(f.sessions, "lost-0000001").status == "cancelled"
                            and "lost-0000001" not in f.follower.open
                        ),
                        "the lost order booked cancelled and no longer followed",
                    )
                finally:
                    stop.set()
                    await asyncio.wait_for(task, 15)
    row = order_row(f.sessions, "lost-0000001")
    assert row.filled_qty == 0
    ((severity, message, details),) = f.alerts
    assert severity == "critical" and details["client_order_id"] == "lost-0000001"
    assert message.startswith(f"order lost-0000001 ({row.exchange_order_id} at {name}) booked")
    assert f"{name} no longer knows order {row.exchange_order_id} (not found 2 times" in message

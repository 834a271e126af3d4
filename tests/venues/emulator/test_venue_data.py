"""Venue prices through real ccxt.pro over a real WebSocket to `sigma venue`: the data client
each venue's factory builds delivers the venue's trades as ticks on `price_update`, through the
cleaner and the detector, reconnects after a cut and raises the stale alert on a quiet stream."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import pytest

from sigma.bus.base import CHANNEL_PRICE_UPDATE
from sigma.bus.memory import InMemoryPubSub
from sigma.domain import Tick
from sigma.feeds.ticks import decode_tick
from sigma.feeds.ws_client import Backoff
from sigma.risk.anomaly import AnomalyDetector
from sigma.venues.ccxt.data import CcxtDataClient
from sigma.venues.emulator.server import VenueServer
from sigma.venues.emulator.venue import Venue
from sigma.venues.factory import make_venue_data, venue_markets

WAIT = 15.0
# venue -> (the emulator's market id, a price on its tick, a second one)
MARKETS = {
    "binance": ("BTCUSDT", Decimal("92000.5"), Decimal("92001")),
    "upbit": ("KRW-BTC", Decimal("130100000"), Decimal("130200000")),
}


async def until(check: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


class Listener:
    """The ticks published on `price_update`, and the stale/recovered calls."""

    def __init__(self) -> None:
        self.ticks: list[Tick] = []
        self.stale: list[float] = []
        self.recovered: list[float] = []

    async def on_stale(self, seconds: float) -> None:
        self.stale.append(seconds)

    async def on_recovered(self, seconds: float) -> None:
        self.recovered.append(seconds)


@contextlib.asynccontextmanager
async def streaming(
    server: VenueServer, name: str, **options: Any
) -> AsyncIterator[tuple[CcxtDataClient, Listener]]:
    """The venue's data client on ``server`` running, its ticks collected from the bus."""
    bus, listener = InMemoryPubSub(), Listener()
    subscription = await bus.subscribe(CHANNEL_PRICE_UPDATE)
    client = make_venue_data(
        name,
        venue_markets(name, ["BTC"]),
        server.ccxt_config(name),
        pubsub=bus,
        detector=AnomalyDetector(),
        backoff=Backoff(0.05, 0.2),
        on_stale=listener.on_stale,
        on_recovered=listener.on_recovered,
        **options,
    )

    async def collect() -> None:
        async for raw in subscription:
            listener.ticks.append(decode_tick(raw))

    tasks = [asyncio.create_task(client.run()), asyncio.create_task(collect())]
    try:
        yield client, listener
    finally:
        await client.stop()
        await asyncio.wait_for(tasks[0], WAIT)
        tasks[1].cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await tasks[1]
        await bus.close()


async def trade_until_seen(venue: Venue, market: str, price: Decimal, listener: Listener) -> None:
    """Trade at ``price`` until a tick at that price is on the bus (the subscription may not
    be in place yet when the first trade prints)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not any(t.price == price for t in listener.ticks):
        assert loop.time() < deadline, f"no tick at {price}"
        venue.tick(market, price, Decimal("0.5"))
        retry = loop.time() + 0.3
        while loop.time() < retry and not any(t.price == price for t in listener.ticks):
            await asyncio.sleep(0.01)


@pytest.mark.parametrize("name", ["binance", "upbit"])
async def test_venue_trades_arrive_as_ticks_and_survive_a_cut(
    venue_server: VenueServer, name: str
) -> None:
    venue = venue_server.venues[name]
    market, first, second = MARKETS[name]
    async with streaming(venue_server, name) as (client, listener):
        await trade_until_seen(venue, market, first, listener)
        tick = next(t for t in listener.ticks if t.price == first)
        assert tick.symbol == "BTC" and tick.volume == Decimal("0.5")
        assert client.accepted >= 1 and client.cleaner.drops == {}
        # The venue cuts every stream: the client reconnects after its backoff and goes on.
        assert venue_server.disconnect_streams() >= 1
        await until(lambda: client.reconnects >= 1, "the reconnect")
        await trade_until_seen(venue, market, second, listener)


@pytest.mark.parametrize("name", ["binance", "upbit"])
async def test_a_quiet_venue_stream_raises_the_stale_alert(
    venue_server: VenueServer, name: str
) -> None:
    venue = venue_server.venues[name]
    market, first, second = MARKETS[name]
    async with streaming(venue_server, name, stale_after=0.5) as (client, listener):
        await trade_until_seen(venue, market, first, listener)
        # Connected, but nothing comes: the feed says it is stale once, and recovers.
        venue_server.faults.update({"stale_streams": True})
        venue.tick(market, second, Decimal("0.5"))
        await until(lambda: bool(listener.stale), "the stale alert")
        assert client.monitor.episodes == 1 and listener.stale[0] >= 0.5
        venue_server.faults.update({"stale_streams": False})
        await trade_until_seen(venue, market, second, listener)
        await until(lambda: bool(listener.recovered), "the recovery")

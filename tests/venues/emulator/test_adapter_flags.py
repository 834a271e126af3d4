"""Time in force and reduce-only reach the venue through real ccxt over HTTP to `sigma venue`:
an IOC or FOK limit order the book cannot fill ends at the venue at once (nothing rests to
fill later), Binance's `timeInForce` and Upbit's `time_in_force` alike; spot takes no
reduce-only flag, so none is sent there."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from adapter_helpers import adapter, event, limit
from venue_helpers import BINANCE_KEY, BINANCE_SECRET, UPBIT_KEY, UPBIT_SECRET

from sigma.domain import Instrument, OrderStatus, OrderType, Side, TimeInForce
from sigma.execution.broker import Capability
from sigma.venues.binance.execution import BinanceProfile
from sigma.venues.ccxt.profile import OrderPlan
from sigma.venues.emulator.server import VenueServer

VENUES = {
    "binance": (BINANCE_KEY, BINANCE_SECRET, "91000", "93000"),
    "upbit": (UPBIT_KEY, UPBIT_SECRET, "129000000", "131000000"),
}


@pytest.mark.parametrize("venue", VENUES)
@pytest.mark.parametrize("tif", [TimeInForce.IOC, TimeInForce.FOK])
async def test_an_ioc_or_fok_limit_the_book_cannot_fill_ends_at_once(
    venue_server: VenueServer, venue: str, tif: TimeInForce
) -> None:
    key, secret, below, _ = VENUES[venue]
    async with adapter(venue_server, venue, key, secret) as (client, _):
        report = await client.place(limit("ioc-00000001", Side.BUY, "0.01", below, tif=tif))
        gtc = await client.place(limit("gtc-00000001", Side.BUY, "0.01", below))
    assert (report.status, report.fills) == (OrderStatus.CANCELLED, ())
    assert gtc.status is OrderStatus.NEW
    book = venue_server.binance if venue == "binance" else venue_server.upbit
    assert [o.client_id for o in book.open_orders(key)] == ["gtc-00000001"]


@pytest.mark.parametrize("venue", VENUES)
async def test_an_ioc_limit_takes_what_crosses_and_leaves_nothing_resting(
    venue_server: VenueServer, venue: str
) -> None:
    key, secret, _, above = VENUES[venue]
    async with adapter(venue_server, venue, key, secret) as (client, _):
        report = await client.place(
            limit("ioc-00000002", Side.BUY, "0.01", above, tif=TimeInForce.IOC)
        )
    assert report.status is OrderStatus.FILLED
    assert sum(f.qty for f in report.fills) == D("0.01")
    book = venue_server.binance if venue == "binance" else venue_server.upbit
    assert book.open_orders(key) == []


async def test_fok_fills_all_or_nothing_and_ioc_what_the_book_has(
    venue_server: VenueServer,
) -> None:
    # One level of the book (0.05 BTC) is at or under 92010: the rest of 0.5 is not.
    async with adapter(venue_server, "binance", BINANCE_KEY, BINANCE_SECRET) as (client, _):
        fok = await client.place(
            limit("fok-00000003", Side.BUY, "0.5", "92010", tif=TimeInForce.FOK)
        )
        ioc = await client.place(
            limit("ioc-00000003", Side.BUY, "0.5", "92010", tif=TimeInForce.IOC)
        )
    assert (fok.status, fok.fills) == (OrderStatus.CANCELLED, ())
    assert ioc.status is OrderStatus.CANCELLED
    assert sum(f.qty for f in ioc.fills) == D("0.05")
    assert venue_server.binance.open_orders(BINANCE_KEY) == []


def test_the_flags_in_ccxts_unified_parameters() -> None:
    class Futures(BinanceProfile):
        capabilities = BinanceProfile.capabilities | {Capability.REDUCE_ONLY}

    btc = Instrument("BTC", "BTC/USDT", "BTC", "USDT", D("0.01"), D("0.00001"))
    ioc = limit("ioc-00000004", Side.SELL, "0.01", "91000", tif="IOC", reduce_only=True)
    close = event("close-0000004", Side.SELL, "0.01", reduce_only=True)
    spot, futures = BinanceProfile(), Futures()
    assert spot.plan(ioc, btc) == OrderPlan(
        "limit", "sell", "0.01", "91000", {"timeInForce": "IOC"}
    )
    assert spot.plan(close, btc) == OrderPlan("market", "sell", "0.01", None)
    assert futures.plan(ioc, btc) == OrderPlan(
        "limit", "sell", "0.01", "91000", {"timeInForce": "IOC", "reduceOnly": True}
    )
    assert futures.plan(close, btc) == OrderPlan(
        "market", "sell", "0.01", None, {"reduceOnly": True}
    )
    # A market order fills at once: its time in force is not the venue's business.
    market = event("mkt-00000004", Side.BUY, "0.01", tif="IOC")
    assert market.type is OrderType.MARKET and spot.plan(market, btc) == OrderPlan(
        "market", "buy", "0.01", None
    )
    # A refusal stays a refusal.
    assert isinstance(
        spot.plan(limit("tiny-0000004", Side.BUY, "0.000001", "91000", tif="IOC"), btc), str
    )

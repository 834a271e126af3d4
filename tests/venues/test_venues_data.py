"""The ccxt data client's conversions and watch loop against a scripted exchange (no network);
through real ccxt.pro to `sigma venue`: tests/venues/emulator/test_venue_data.py."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from sigma.domain import Tick
from sigma.feeds.ticks import TickError
from sigma.feeds.ws_client import Backoff
from sigma.venues.ccxt.data import CcxtDataClient, make_data_client, ticker_to_tick, trade_to_tick
from sigma.venues.factory import make_venue_data, venue_markets

MS = 1704067200000
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def trade(price: float, ms: int = MS, amount: float | None = 0.5) -> dict[str, Any]:
    return {"symbol": "BTC/USDT", "timestamp": ms, "price": price, "amount": amount, "id": "1"}


class FakeExchange:
    """Implements the ccxt.pro calls the adapter makes; scripted results per call."""

    def __init__(self, script: list[list[dict[str, Any]] | Exception]) -> None:
        self.script = script
        self.calls: list[str] = []
        self.closed = False

    async def watch_trades(self, symbol: str) -> list[dict[str, Any]]:
        self.calls.append(symbol)
        if not self.script:
            await asyncio.Event().wait()  # no more data: wait like a quiet market
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return step

    async def watch_ticker(self, symbol: str) -> dict[str, Any]:
        trades = await self.watch_trades(symbol)
        return trades[0]

    async def close(self) -> None:
        self.closed = True


async def wait(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


def test_trade_and_ticker_conversion() -> None:
    tick = trade_to_tick(trade(42000.1), "BTC")
    assert tick == Tick("BTC", T0, Decimal("42000.1"), Decimal("0.5"))
    assert trade_to_tick(trade(1.0, amount=None), "BTC").volume == 0
    ticker = {"timestamp": MS, "last": 10.5, "bid": 10.4, "ask": 10.6, "baseVolume": 1234.5}
    assert ticker_to_tick(ticker, "X") == Tick.of("X", T0, "10.5", "1234.5", bid="10.4", ask="10.6")
    with pytest.raises(TickError) as info:
        trade_to_tick(trade(float("nan")), "BTC")
    assert info.value.reason == "price"
    with pytest.raises(TickError):
        trade_to_tick({"price": 1.0}, "BTC")  # no timestamp
    with pytest.raises(TickError):
        ticker_to_tick({**ticker, "bid": 11.0}, "X")  # crossed


def test_make_data_client_builds_ccxt_pro_offline() -> None:
    client = make_data_client("binance", {}, {"BTC": "BTC/USDT"})
    assert type(client.exchange).__module__.startswith("ccxt.pro")
    assert client.markets == {"BTC/USDT": "BTC"}
    asyncio.run(client.exchange.close())


async def test_loop_converts_delivers_and_retries_after_errors() -> None:
    fake = FakeExchange(
        [
            [trade(100.0), trade(float("inf")), trade(101.0, MS + 1)],
            ConnectionError("socket closed"),
            [trade(100.5, MS - 5)],  # older than the last accepted tick: dropped
            [trade(102.0, MS + 2)],
        ]
    )
    got: list[Tick] = []

    async def on_tick(tick: Tick) -> None:
        got.append(tick)

    source = CcxtDataClient(
        fake,
        {"BTC": "BTC/USDT"},
        on_tick=on_tick,
        backoff=Backoff(0.01, 0.02, rng=random.Random(0)),
    )
    task = asyncio.create_task(source.run())
    await wait(lambda: len(got) == 3)
    await source.stop()
    await asyncio.wait_for(task, 5)
    assert [t.price for t in got] == [100, 101, 102] and {t.symbol for t in got} == {"BTC"}
    assert source.reconnects == 1 and source.received == 5 and source.rejected == 2
    assert source.cleaner.drops == {"price": 1, "out_of_order": 1}
    assert fake.closed and fake.calls[0] == "BTC/USDT"


async def test_ticker_mode_and_symbol_lists() -> None:
    ticker = {"timestamp": MS, "last": 10.5, "bid": 10.4, "ask": 10.6, "baseVolume": 1.0}
    fake = FakeExchange([[ticker]])
    got: list[Tick] = []

    async def on_tick(tick: Tick) -> None:
        got.append(tick)

    source = CcxtDataClient(fake, {"ETH/USDT": "ETH/USDT"}, watch="ticker", on_tick=on_tick)
    assert str(source) == "CcxtDataClient(FakeExchange)"
    task = asyncio.create_task(source.run())
    await wait(lambda: bool(got))
    await source.stop()
    await asyncio.wait_for(task, 5)
    assert got[0].symbol == "ETH/USDT" and got[0].bid == Decimal("10.4")


def test_constructor_checks() -> None:
    with pytest.raises(ValueError, match="no symbols"):
        CcxtDataClient(FakeExchange([]), {})


def test_the_factory_names_venues_and_their_markets() -> None:
    assert venue_markets("binance", ["BTC", "ETH"], {"ETH": "ETH/BTC"}) == {
        "BTC": "BTC/USDT",
        "ETH": "ETH/BTC",
    }
    assert venue_markets("upbit", ["BTC"]) == {"BTC": "BTC/KRW"}
    with pytest.raises(ValueError, match="no venue adapter for 'kraken'; known: binance, upbit"):
        make_venue_data("kraken", {"BTC": "BTC/USD"})

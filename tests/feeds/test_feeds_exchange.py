"""ccxt adapter: conversions, and the watch loop against a fake exchange (no network)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from sigma.domain import Tick
from sigma.feeds.exchange import (
    ExchangePriceSource,
    make_exchange,
    ticker_to_tick,
    trade_to_tick,
)
from sigma.feeds.ticks import TickError
from sigma.feeds.ws_client import Backoff

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


def test_make_exchange_uses_ccxt_pro_offline() -> None:
    exchange = make_exchange("binance")
    assert hasattr(exchange, "watch_trades") and hasattr(exchange, "watch_ticker")
    asyncio.run(exchange.close())
    with pytest.raises(ValueError, match="no exchange"):
        make_exchange("not-an-exchange")


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

    source = ExchangePriceSource(
        fake,
        {"BTC/USDT": "BTC"},
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

    source = ExchangePriceSource(fake, ["ETH/USDT"], watch="ticker", on_tick=on_tick)
    assert str(source) == "ExchangePriceSource(FakeExchange)"
    task = asyncio.create_task(source.run())
    await wait(lambda: bool(got))
    await source.stop()
    await asyncio.wait_for(task, 5)
    assert got[0].symbol == "ETH/USDT" and got[0].bid == Decimal("10.4")


def test_constructor_checks(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ValueError, match="no symbols"):
        ExchangePriceSource(FakeExchange([]), [])
    source = ExchangePriceSource("kraken", ["BTC/USD"])
    assert "not one SIGMA is tested with" in caplog.text
    asyncio.run(source.exchange.close())

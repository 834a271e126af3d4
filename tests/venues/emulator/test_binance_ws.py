"""The Binance front end's WebSocket side through the real ccxt.pro client (market streams,
order book sync, user-data stream) and raw aiohttp sockets for the protocol's details."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import ccxt.pro as ccxt_pro
import pytest
from binance_helpers import (
    BTC,
    CHATTY,
    WAIT,
    binance,
    early_in_window,
    front,
    receive,
    request,
    socket,
    until,
    ws_signed,
)
from conftest import MakeVenue
from venue_helpers import BINANCE_KEY, BINANCE_KEY_2, BINANCE_SECRET_2

from sigma.venues.emulator.server import VenueServer

D = Decimal


# ----------------------------------------------------------------- market streams
async def test_ccxt_pro_watches_trades_klines_tickers_and_tops(venue_server: VenueServer) -> None:
    venue = venue_server.binance
    async with binance(venue_server, pro=True) as ex:
        await ex.load_markets()
        trades = asyncio.create_task(ex.watch_trades(BTC))
        candles = asyncio.create_task(ex.watch_ohlcv(BTC, "1m"))
        ticker = asyncio.create_task(ex.watch_ticker(BTC))
        tops = asyncio.create_task(ex.watch_bids_asks([BTC]))
        fronts = front(venue_server).streams
        await until(lambda: len(fronts._subscribers) == 4, "four subscriptions")
        venue.tick("BTCUSDT", D("91000"), D("0.5"))
        (trade,) = await asyncio.wait_for(trades, WAIT)
        assert (trade["price"], trade["amount"], trade["symbol"]) == (91000, 0.5, BTC)
        (candle,) = await asyncio.wait_for(candles, WAIT)
        assert candle[4] == 91000 and candle[5] == 0.5
        assert (await asyncio.wait_for(ticker, WAIT))["last"] == 91000
        top = (await asyncio.wait_for(tops, WAIT))[BTC]
        assert top["bid"] < 91000 < top["ask"]


async def test_ccxt_pro_order_book_stays_in_sync_with_the_venue(
    venue_server: VenueServer,
) -> None:
    venue = venue_server.binance
    async with binance(venue_server, pro=True) as ex, binance(venue_server) as rest:
        book = await ex.watch_order_book(BTC)
        for price in ("91000", "91010.5", "90990"):
            venue.tick("BTCUSDT", D(price), D("0.1"))
            book = await ex.watch_order_book(BTC)
        await rest.create_order(BTC, "limit", "buy", 0.3, 90000)
        await rest.create_order(BTC, "market", "buy", 0.07)

        def synced() -> bool:
            bids, asks = venue.book("BTCUSDT", 1000)
            return book["nonce"] == front(venue_server).versions["BTCUSDT"] and (
                [[float(p), float(q)] for p, q in bids] == book["bids"][:]
                and [[float(p), float(q)] for p, q in asks] == book["asks"][:]
            )

        async def follow() -> None:
            nonlocal book
            while not synced():
                book = await ex.watch_order_book(BTC)

        await asyncio.wait_for(follow(), WAIT)
        assert [90000.0, 0.3] in book["bids"]


async def test_raw_and_combined_streams_and_the_subscribe_protocol(
    make_venue_server: MakeVenue,
) -> None:
    async with make_venue_server(binance=CHATTY) as venue_server:
        await _raw_and_combined(venue_server)


async def _raw_and_combined(venue_server: VenueServer) -> None:
    venue = venue_server.binance
    async with (
        socket(venue_server, "/ws/btcusdt@trade") as raw,
        socket(venue_server, "/stream?streams=btcusdt@aggTrade/ethusdt@miniTicker") as combined,
    ):
        await until(lambda: len(front(venue_server).streams.sockets) == 2, "two sockets")
        venue.tick("BTCUSDT", D("91000"), D("0.5"))
        trade = await receive(raw)
        assert (trade["e"], trade["p"], trade["q"], trade["m"]) == (
            "trade",
            "91000.00000000",
            "0.50000000",
            False,
        )
        wrapped = await receive(combined)
        assert wrapped["stream"] == "btcusdt@aggTrade" and wrapped["data"]["a"] == trade["t"]
        listed = await request(raw, {"method": "LIST_SUBSCRIPTIONS", "id": 3})
        assert listed == {"result": ["btcusdt@trade"], "id": 3}
        reply = await request(
            raw, {"method": "SUBSCRIBE", "params": ["btcusdt@depth5@100ms"], "id": 4}
        )
        assert reply == {"result": None, "id": 4}
        depth = await receive(raw)
        assert len(depth["bids"]) == 5 and depth["lastUpdateId"] > 0
        assert await request(
            raw,
            {"method": "UNSUBSCRIBE", "params": ["btcusdt@depth5@100ms", "btcusdt@trade"], "id": 5},
        ) == {"result": None, "id": 5}
        for bad, code in (
            ({"method": "SUBSCRIBE", "params": ["btcusdt@nothing"], "id": 6}, 2),
            ({"method": "SUBSCRIBE", "params": ["DOGEUSDT@trade"], "id": 7}, 2),
            ({"method": "SHOUT", "id": 8}, 2),
            ({"method": "SET_PROPERTY", "params": ["colour", True], "id": 9}, 0),
            ({"method": "SET_PROPERTY", "params": ["combined", "yes"], "id": 10}, 1),
        ):
            assert (await request(raw, bad))["error"]["code"] == code
        await raw.send_str("{not json")
        assert (await receive(raw))["error"]["code"] == 3
        await raw.send_str("[1]")
        assert (await receive(raw))["error"]["code"] == 2
        assert await request(raw, {"method": "GET_PROPERTY", "params": ["combined"], "id": 11}) == {
            "result": False,
            "id": 11,
        }
        assert await request(
            raw, {"method": "SET_PROPERTY", "params": ["combined", True], "id": 12}
        ) == {"result": None, "id": 12}
        await request(raw, {"method": "SUBSCRIBE", "params": ["btcusdt@kline_1m"], "id": 13})
        venue.tick("BTCUSDT", D("91500"), D("0.25"))
        kline = await receive(raw)
        assert kline["stream"] == "btcusdt@kline_1m" and kline["data"]["k"]["c"] == "91500.00000000"
        mini = await receive(combined)
        while mini["stream"] != "ethusdt@miniTicker":
            mini = await receive(combined)
        assert mini["data"]["e"] == "24hrMiniTicker" and mini["data"]["c"] == "3000.00000000"


# ----------------------------------------------------------------- user data
async def test_user_stream_sends_the_account_events_in_order(venue_server: VenueServer) -> None:
    venue = venue_server.binance
    async with (
        binance(venue_server, pro=True) as ex,
        binance(venue_server) as rest,
        binance(venue_server, BINANCE_KEY_2, BINANCE_SECRET_2) as other,
    ):
        await ex.load_markets()
        orders = asyncio.create_task(ex.watch_orders(BTC))
        mine = asyncio.create_task(ex.watch_my_trades(BTC))
        balances = asyncio.create_task(ex.watch_balance())
        streams = front(venue_server).streams
        await until(lambda: bool(streams._users.get(BINANCE_KEY)), "the user subscription")
        await other.create_order(BTC, "limit", "buy", 0.001, 90000)
        placed = await rest.create_order(BTC, "limit", "buy", 0.08, 91000)
        seen = await asyncio.wait_for(orders, WAIT)
        assert [(o["id"], o["status"]) for o in seen] == [(placed["id"], "open")]
        balance = await asyncio.wait_for(balances, WAIT)
        assert balance["USDT"]["used"] == 0.08 * 91000
        venue.tick("BTCUSDT", D("91000"), D("1"))
        (trade,) = await asyncio.wait_for(mine, WAIT)
        assert (trade["order"], trade["amount"], trade["takerOrMaker"]) == (
            placed["id"],
            0.05,
            "maker",
        )
        assert trade["fee"] == {"cost": 5e-05, "currency": "BTC"}
        await rest.cancel_order(placed["id"], BTC)

        async def until_canceled() -> list[Any]:
            while True:
                seen = await ex.watch_orders(BTC)
                if seen[-1]["status"] == "canceled":
                    return seen

        final = (await asyncio.wait_for(until_canceled(), WAIT))[-1]
        assert final["filled"] == 0.05 and final["clientOrderId"] == placed["clientOrderId"]
        account = venue.account(BINANCE_KEY)
        assert account is not None
        latest = await ex.watch_balance()
        while latest["USDT"]["used"] != 0:
            latest = await asyncio.wait_for(ex.watch_balance(), WAIT)
        assert D(str(latest["USDT"]["free"])) == account.balance("USDT")[0]


async def test_websocket_api_requests(venue_server: VenueServer) -> None:
    await early_in_window(venue_server, 60_000)
    async with socket(venue_server, "/ws-api/v3") as ws:
        good = ws_signed({"apiKey": BINANCE_KEY})
        assert (await request(ws, {"id": "a", "method": "ping"}))["result"] == {}
        assert (await request(ws, {"id": "b", "method": "time"}))["result"]["serverTime"] > 0
        bad = await request(
            ws,
            {
                "id": "c",
                "method": "userDataStream.subscribe.signature",
                "params": {**good, "signature": "0" * 64},
            },
        )
        assert (bad["status"], bad["error"]["code"]) == (400, -1022)
        ok = await request(
            ws, {"id": "d", "method": "userDataStream.subscribe.signature", "params": good}
        )
        assert (ok["status"], ok["result"]) == (200, {"subscriptionId": 0})
        # Weight so far: 2 to connect, 1 each for ping and time, 2 per subscription attempt.
        assert ok["rateLimits"] == [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": 6000,
                "count": 8,
            }
        ]
        again = await request(
            ws,
            {
                "id": "e",
                "method": "userDataStream.subscribe.signature",
                "params": ws_signed({"apiKey": BINANCE_KEY}),
            },
        )
        assert again["error"]["code"] == -2035
        listed = await request(ws, {"id": "f", "method": "session.subscriptions"})
        assert listed["result"] == [{"subscriptionId": 0}]
        assert (
            await request(
                ws,
                {
                    "id": "g",
                    "method": "userDataStream.unsubscribe",
                    "params": {"subscriptionId": 0},
                },
            )
        )["status"] == 200
        assert (await request(ws, {"id": "h", "method": "session.subscriptions"}))["result"] == []
        assert (await request(ws, {"id": "i", "method": "order.place"}))["error"]["code"] == -1020
        await ws.send_str("nope")
        assert (await receive(ws))["error"]["code"] == -1135


# ----------------------------------------------------------------- faults
async def test_disconnect_makes_ccxt_pro_reconnect(venue_server: VenueServer) -> None:
    venue = venue_server.binance
    async with binance(venue_server, pro=True) as ex:
        await ex.load_markets()
        pending = asyncio.create_task(ex.watch_trades(BTC))
        streams = front(venue_server).streams
        await until(lambda: bool(streams._subscribers), "the subscription")
        assert venue_server.disconnect_streams() >= 1
        with pytest.raises(ccxt_pro.NetworkError):
            await asyncio.wait_for(pending, WAIT)
        again = asyncio.create_task(ex.watch_trades(BTC))
        await until(lambda: bool(streams._subscribers), "the new subscription")
        venue.tick("BTCUSDT", D("91000"), D("0.5"))
        assert (await asyncio.wait_for(again, WAIT))[-1]["price"] == 91000


async def test_stale_streams_and_latency_hold_back_market_data(venue_server: VenueServer) -> None:
    venue, faults = venue_server.binance, venue_server.faults
    async with socket(venue_server, "/ws/btcusdt@trade") as ws:
        await until(lambda: bool(front(venue_server).streams.sockets), "the socket")
        faults.stale_streams = True
        venue.tick("BTCUSDT", D("91000"), D("0.5"))
        faults.stale_streams = False
        faults.latency_ms = 200
        started = asyncio.get_running_loop().time()
        venue.tick("BTCUSDT", D("91100"), D("0.5"))
        trade = await receive(ws)
        # The trade sent while stale never arrives; the next one does, late by the latency.
        assert trade["p"] == "91100.00000000"
        assert asyncio.get_running_loop().time() - started >= 0.2

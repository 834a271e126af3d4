"""The Upbit front end's streams through the real ccxt.pro (``ccxt.pro.upbit``) over real
WebSockets, and raw connections for the frames ccxt hides."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import ccxt.pro as ccxt_pro
import orjson
import pytest
from conftest import MakeVenue
from upbit_helpers import BTC, call, token, until, upbit

from sigma.venues.emulator.server import VenueServer
from sigma.venues.emulator.upbit import UpbitSettings
from sigma.venues.emulator.venue import wall_clock_ms

D = Decimal

WAIT = 15.0  # generous: CI runs two workers on two busy cores


@contextlib.asynccontextmanager
async def _socket(server: VenueServer, path: str = "", auth: bool = False) -> AsyncIterator[Any]:
    headers = {"Authorization": f"Bearer {token()}"} if auth else {}
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{server.ws_url}/websocket/v1{path}", headers=headers) as ws,
    ):
        yield ws


async def _frame(ws: Any, timeout: float = 5.0) -> dict[str, Any]:
    message = await asyncio.wait_for(ws.receive(), timeout)
    assert message.type == aiohttp.WSMsgType.BINARY, message
    frame: dict[str, Any] = orjson.loads(message.data)
    return frame


async def test_public_streams_through_ccxt_pro(venue_server: VenueServer) -> None:
    async with upbit(venue_server, pro=True) as ex:
        await ex.load_markets()
        book = await asyncio.wait_for(ex.watch_order_book(BTC), WAIT)
        assert book["bids"][0][0] < book["asks"][0][0]
        ticker_task = asyncio.ensure_future(ex.watch_ticker(BTC))
        assert (await asyncio.wait_for(ticker_task, WAIT))["last"] == 130_000_000
        trades_task = asyncio.ensure_future(ex.watch_trades(BTC))
        streams = venue_server.fronts["upbit"].streams._streams
        await until(lambda: any(s.wants("trade", "KRW-BTC") for s in streams), "trade subscription")
        next_ticker = asyncio.ensure_future(ex.watch_ticker(BTC))
        venue_server.upbit.tick("KRW-BTC", D(130_500_000), D("0.1"))
        assert (await asyncio.wait_for(trades_task, WAIT))[-1]["price"] == 130_500_000
        # The trade subscription's own ticker SNAPSHOT (at the old price) may reach the client
        # after next_ticker is asked for: the tick's REALTIME ticker follows it.
        await asyncio.wait_for(next_ticker, WAIT)
        await until(lambda: ex.tickers[BTC]["last"] == 130_500_000, "the ticker at the tick")


async def test_private_stream_events_in_order(venue_server: VenueServer) -> None:
    async with _socket(venue_server, "/private", auth=True) as ws:
        await ws.send_str(
            orjson.dumps([{"ticket": "t"}, {"type": "myOrder"}, {"type": "myAsset"}]).decode()
        )
        await ws.send_str("PING")
        assert (await asyncio.wait_for(ws.receive(), WAIT)).data == b'{"status":"UP"}'
        async with upbit(venue_server) as ex:
            order = await ex.create_order(BTC, "limit", "buy", 0.02, 129_000_000)
        first, asset = await _frame(ws), await _frame(ws)
        assert (first["type"], first["state"], first["uuid"]) == ("myOrder", "wait", order["id"])
        assert asset["type"] == "myAsset" and asset["assets"][0]["currency"] == "KRW"
        assert asset["assets"][0]["locked"] == 2581290
        for _ in range(2):
            venue_server.upbit.tick("KRW-BTC", D(128_990_000), D(1))
        kinds = [(f["type"], f.get("state")) for f in [await _frame(ws) for _ in range(5)]]
        assert kinds == [
            ("myOrder", "trade"),
            ("myAsset", None),
            ("myOrder", "trade"),
            ("myOrder", "done"),
            ("myAsset", None),
        ]


async def test_watch_orders_balance_and_my_trades(venue_server: VenueServer) -> None:
    async with upbit(venue_server, pro=True) as ex:
        await ex.load_markets()
        orders = asyncio.ensure_future(ex.watch_orders(BTC))
        balance = asyncio.ensure_future(ex.watch_balance())
        trades = asyncio.ensure_future(ex.watch_my_trades(BTC))
        await until(
            lambda: len(venue_server.fronts["upbit"].streams._streams) == 1, "private stream"
        )
        await until(
            lambda: all(
                "myAsset" in s.subs and "myOrder" in s.subs
                for s in venue_server.fronts["upbit"].streams._streams
            ),
            "subscriptions",
        )
        placed = await ex.create_order(BTC, "market", "sell", 0.005)
        seen = await asyncio.wait_for(orders, WAIT)
        assert seen[0]["id"] == placed["id"]
        assert (await asyncio.wait_for(balance, WAIT))["KRW"]["free"] > 100_000_000
        fill = (await asyncio.wait_for(trades, WAIT))[0]
        assert fill["price"] == 129_987_000 and fill["takerOrMaker"] == "taker"
        assert fill["fee"]["currency"] == "KRW"


async def test_disconnect_then_ccxt_pro_reconnects(venue_server: VenueServer) -> None:
    async with upbit(venue_server, pro=True) as ex:
        await ex.load_markets()
        await asyncio.wait_for(ex.watch_ticker(BTC), WAIT)
        pending = asyncio.ensure_future(ex.watch_ticker(BTC))
        await asyncio.sleep(0)
        assert venue_server.disconnect_streams() == 1
        with pytest.raises(ccxt_pro.NetworkError):
            await asyncio.wait_for(pending, WAIT)
        again = await asyncio.wait_for(ex.watch_ticker(BTC), WAIT)
        assert again["last"] == 130_000_000


async def test_stale_streams_and_latency(venue_server: VenueServer) -> None:
    async with _socket(venue_server) as ws:
        await ws.send_str(
            orjson.dumps([{"ticket": "t"}, {"type": "trade", "codes": ["KRW-BTC"]}]).decode()
        )
        await until(
            lambda: any(s.subs for s in venue_server.fronts["upbit"].streams._streams), "subscribed"
        )
        venue_server.faults.stale_streams = True
        venue_server.upbit.tick("KRW-BTC", D(130_100_000), D(1))
        with pytest.raises(TimeoutError):
            await _frame(ws, timeout=0.3)
        venue_server.faults.stale_streams = False
        venue_server.faults.latency_ms = 100
        loop = asyncio.get_running_loop()
        started = loop.time()
        venue_server.upbit.tick("KRW-BTC", D(130_200_000), D(1))
        frame = await _frame(ws)
        assert frame["trade_price"] == 130_200_000 and loop.time() - started >= 0.1


async def test_raw_request_errors(make_venue_server: MakeVenue) -> None:
    # Ten requests at once: above Upbit's five a second (tested on their own below).
    chatty = UpbitSettings(stream_messages_per_window=1000)
    async with make_venue_server(upbit=chatty) as venue_server:
        await _check_raw_request_errors(venue_server)


async def _check_raw_request_errors(venue_server: VenueServer) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{venue_server.ws_url}/websocket/v1/private") as reply,
    ):
        assert reply.status == 401
        assert (await reply.json())["error"]["name"] == "jwt_verification"
    async with _socket(venue_server) as ws:
        bad = [
            ("not json", "WRONG_FORMAT"),
            ('{"ticket": 1}', "WRONG_FORMAT"),
            ('[{"type": "ticker", "codes": ["KRW-BTC"]}]', "NO_TICKET"),
            ('[{"ticket": "t"}, {"format": "SIMPLE"}]', "WRONG_FORMAT"),
            ('[{"ticket": "t"}]', "NO_TYPE"),
            ('[{"ticket": "t"}, {"type": "ticker"}]', "NO_CODES"),
            ('[{"ticket": "t"}, {"type": "ticker", "codes": ["KRW-XRP"]}]', "INVALID_PARAM"),
            ('[{"ticket": "t"}, {"type": "candle.1s", "codes": ["KRW-BTC"]}]', "INVALID_PARAM"),
            ('[{"ticket": "t"}, {"type": "myOrder"}]', "INVALID_AUTH"),
        ]
        for request, name in bad:
            await ws.send_str(request)
            assert (await _frame(ws))["error"]["name"] == name, request
        await ws.send_str(
            '[{"ticket": "t"}, {"type": "ticker", "codes": ["KRW-ETH"]}, {"format": "DEFAULT"}]'
        )
        snapshot = await _frame(ws)
        assert (snapshot["code"], snapshot["stream_type"]) == ("KRW-ETH", "SNAPSHOT")
    status, _, _ = await call(venue_server, "GET", "/v1/accounts")
    assert status == 200


# ---------------------------------------------------------------- Upbit's stream limits
#: one window a minute (its "minute" an hour): a test runs well inside one
SLOW_WINDOWS = {"window_ms": 60_000, "ban_after": 1}
TICKER = '[{"ticket": "t"}, {"type": "ticker", "codes": ["KRW-BTC"]}]'


@contextlib.asynccontextmanager
async def _limited(make_venue_server: MakeVenue, **settings: int) -> AsyncIterator[VenueServer]:
    """A venue with one-minute windows and ``settings``, its clock skewed to the start of an
    Upbit minute (and so of a window): the limits' fixed windows do not roll over while a
    test counts."""
    async with make_venue_server(upbit=UpbitSettings(**settings, **SLOW_WINDOWS)) as server:
        period = 60 * SLOW_WINDOWS["window_ms"]
        server.faults.clock_skew_ms = period - wall_clock_ms() % period
        yield server


async def _handshake_status(server: VenueServer, path: str = "", auth: bool = False) -> int:
    try:
        async with _socket(server, path, auth):
            return 101
    except aiohttp.WSServerHandshakeError as refused:
        return refused.status


async def test_connection_requests_over_the_limit_are_429_then_418(
    make_venue_server: MakeVenue,
) -> None:
    async with _limited(make_venue_server, stream_connects_per_window=2) as server:
        statuses = [await _handshake_status(server) for _ in range(5)]
        assert statuses == [101, 101, 429, 429, 418]
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(f"{server.ws_url}/websocket/v1")
        assert refused.value.headers is not None
        assert refused.value.headers["Remaining-Req"] == "group=websocket-connect; min=120; sec=0"
        assert int(refused.value.headers["Retry-After"]) > 0
        # With authentication the account is counted, not the address.
        assert [await _handshake_status(server, "/private", auth=True) for _ in range(3)] == [
            101,
            101,
            429,
        ]


async def test_data_requests_over_the_limit_are_refused_then_the_connection_closed(
    make_venue_server: MakeVenue,
) -> None:
    async with _limited(make_venue_server, stream_messages_per_window=3) as server:
        async with _socket(server) as ws, _socket(server) as other:
            for _ in range(3):
                await ws.send_str(TICKER)
                assert (await _frame(ws))["stream_type"] == "SNAPSHOT"
            await ws.send_str(TICKER)
            assert (await _frame(ws))["error"] == {
                "name": "TOO_MANY_REQUESTS",
                "message": "요청 수 제한을 초과했습니다.",
            }
            await ws.send_str("PING")  # a keep-alive is no data request
            assert await _frame(ws) == {"status": "UP"}
            # The limit is the connection's: another one is served.
            await other.send_str(TICKER)
            assert (await _frame(other))["stream_type"] == "SNAPSHOT"
            await ws.send_str(TICKER)
            assert (await _frame(ws))["error"]["name"] == "TOO_MANY_REQUESTS"
            await ws.send_str(TICKER)  # kept sending while refused
            closing = await asyncio.wait_for(ws.receive(), 5)
            assert closing.type is aiohttp.WSMsgType.CLOSE
            assert (ws.close_code, closing.extra) == (1008, "Too many requests: blocked for 60 s")
        await until(lambda: not _message_counts(server), "the closed connections' counts")


async def test_data_requests_are_limited_per_minute_too(make_venue_server: MakeVenue) -> None:
    limits = {"stream_messages_per_window": 1000, "stream_messages_per_minute": 2}
    async with _limited(make_venue_server, **limits) as server, _socket(server) as ws:
        for _ in range(2):
            await ws.send_str(TICKER)
            assert (await _frame(ws))["stream_type"] == "SNAPSHOT"
        await ws.send_str(TICKER)
        assert (await _frame(ws))["error"]["name"] == "TOO_MANY_REQUESTS"


def _message_counts(server: VenueServer) -> list[object]:
    return [limiter._used for limiter in server.fronts["upbit"].streams.messages if limiter._used]

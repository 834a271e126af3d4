"""Binance's WebSocket limits (web-socket-streams.md "WebSocket Limits", web-socket-api.md
"Connection limits"): connection attempts per address and window and streams per
connection, over real sockets."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from binance_helpers import CHATTY, early_in_window, request, socket, until
from conftest import MakeVenue

from sigma.venues.emulator.binance_wire import BinanceSettings
from sigma.venues.emulator.server import VenueServer


async def _attempt(server: VenueServer, path: str) -> tuple[int, dict[str, str]]:
    """A WebSocket handshake to ``path``, as ccxt.pro's: (101, {}) when it upgraded, else
    the refusal's status and headers."""
    async with aiohttp.ClientSession() as http:
        try:
            async with http.ws_connect(f"{server.ws_url}{path}") as ws:
                await ws.close()
                return 101, {}
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status, dict(exc.headers or {})


async def _refusal(server: VenueServer, path: str) -> tuple[int, Any]:
    """The body of a refused handshake (the handshake error carries none), read by a plain
    GET of ``path``: itself an attempt."""
    async with aiohttp.ClientSession() as http, http.get(f"{server.http_url}{path}") as reply:
        return reply.status, await reply.json()


def test_the_defaults_are_binances() -> None:
    settings = BinanceSettings()
    assert settings.stream_connects_per_window == 300
    assert settings.stream_connect_window_ms == 5 * 60_000
    assert settings.streams_per_connection == 1024


async def test_connection_attempts_over_the_window_limit_are_refused_then_banned(
    make_venue_server: MakeVenue,
) -> None:
    # "There is a limit of 300 connections per attempt every 5 minutes per IP": three per
    # two seconds here. A refused attempt is answered before the upgrade, in Binance's REST
    # shape (errors.md -1034); one that keeps trying is banned (ban_after 1 here).
    window = 2000
    settings = {"stream_connects_per_window": 3, "stream_connect_window_ms": window}
    async with make_venue_server(binance={**settings, "ban_after": 1, "ban_ms": 60_000}) as server:
        await early_in_window(server, window, needed_ms=1500)
        for _ in range(3):
            assert (await _attempt(server, "/ws/btcusdt@trade"))[0] == 101
        # The handshake is refused by status (what ccxt.pro sees) and the body says why.
        status, headers = await _attempt(server, "/stream?streams=btcusdt@trade")
        assert status == 429 and 1 <= int(headers["Retry-After"]) <= 2
        assert await _refusal(server, "/ws") == (
            429,
            {
                "code": -1034,
                "msg": "Too many connection attempts from IP; current limit is 3 per '2 SECOND'.",
            },
        )
        assert await _attempt(server, "/ws") == (418, {**headers, "Retry-After": "60"})
        status, body = await _refusal(server, "/ws")
        assert (status, body["code"]) == (418, -1034)


async def test_attempts_are_counted_per_window_and_per_service(
    make_venue_server: MakeVenue,
) -> None:
    window = 2000
    settings = {"stream_connects_per_window": 1, "stream_connect_window_ms": window}
    async with make_venue_server(binance=settings) as server:
        await early_in_window(server, window, needed_ms=1500)
        assert (await _attempt(server, "/ws"))[0] == 101
        assert (await _attempt(server, "/ws"))[0] == 429
        # The WebSocket API (its own host at Binance) counts its own attempts.
        assert (await _attempt(server, "/ws-api/v3"))[0] == 101
        status, body = await _refusal(server, "/ws-api/v3")
        assert (status, body["code"]) == (429, -1034)
        # The next window admits the address again (trying on while refused would ban it).
        start = server.binance.now_ms() // window
        await until(lambda: server.binance.now_ms() // window != start, "the next window")
        assert (await _attempt(server, "/ws"))[0] == 101


@pytest.mark.parametrize("path", ["/stream?streams={}", "/ws/{}"])
async def test_a_url_naming_more_streams_than_a_connection_takes_is_refused(
    make_venue_server: MakeVenue, path: str
) -> None:
    # "A single connection can listen to a maximum of 1024 streams": two here. A name given
    # twice is one stream.
    async with make_venue_server(binance={"streams_per_connection": 2}) as server:
        two = "btcusdt@trade/btcusdt@aggTrade/btcusdt@trade"
        assert (await _attempt(server, path.format(two)))[0] == 101
        too_many = path.format(f"{two}/btcusdt@bookTicker")
        assert (await _attempt(server, too_many))[0] == 400
        assert await _refusal(server, too_many) == (
            400,
            {
                "code": 2,
                "msg": "Invalid request: too many streams; a connection can listen to at most 2",
            },
        )


async def test_a_subscribe_beyond_the_streams_a_connection_takes_subscribes_nothing(
    make_venue_server: MakeVenue,
) -> None:
    async with (
        make_venue_server(binance={"streams_per_connection": 2, **CHATTY}) as server,
        socket(server, "/ws/btcusdt@trade") as ws,
    ):
        reply = await request(
            ws, {"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade", "btcusdt@depth"], "id": 1}
        )
        assert reply == {
            "error": {
                "code": 2,
                "msg": "Invalid request: too many streams; a connection can listen to at most 2",
            },
            "id": 1,
        }
        listed = await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 2})
        assert listed == {"result": ["btcusdt@trade"], "id": 2}
        # Up to the limit, and a stream already listened to again, are taken.
        for rid, names in enumerate((["btcusdt@aggTrade"], ["btcusdt@trade"]), start=3):
            reply = await request(ws, {"method": "SUBSCRIBE", "params": names, "id": rid})
            assert reply == {"result": None, "id": rid}
        # An unsubscribe makes room.
        await request(ws, {"method": "UNSUBSCRIBE", "params": ["btcusdt@trade"], "id": 5})
        reply = await request(ws, {"method": "SUBSCRIBE", "params": ["btcusdt@depth"], "id": 6})
        assert reply == {"result": None, "id": 6}
        listed = await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 7})
        assert listed == {"result": ["btcusdt@aggTrade", "btcusdt@depth"], "id": 7}

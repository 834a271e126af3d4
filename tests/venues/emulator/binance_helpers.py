"""What the Binance front end's tests share: real ccxt clients on the test venue, signed raw
requests for what ccxt hides, and waiting on a condition with a deadline."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import aiohttp
import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro
from venue_helpers import BINANCE_KEY, BINANCE_SECRET

from sigma.venues.emulator.binance import BinanceFrontEnd
from sigma.venues.emulator.server import VenueServer

BTC = "BTC/USDT"
WAIT = 15.0  # generous: CI runs two workers on two busy cores
#: settings for tests that send stream requests faster than Binance's five messages a second
#: to check something else (the limit itself has its own tests)
CHATTY = {"stream_messages_per_second": 1000}


@contextlib.asynccontextmanager
async def binance(
    server: VenueServer,
    key: str = BINANCE_KEY,
    secret: str = BINANCE_SECRET,
    *,
    pro: bool = False,
    **config: Any,
) -> AsyncIterator[Any]:
    """A real ccxt (or ccxt.pro) Binance client pointed at ``server``; its own throttle off so
    the venue's limits are what the tests see."""
    cls = ccxt_pro.binance if pro else ccxt_async.binance
    exchange = cls(
        {
            **server.ccxt_config("binance"),
            "apiKey": key,
            "secret": secret,
            "enableRateLimit": False,
            **config,
        }
    )
    try:
        yield exchange
    finally:
        await exchange.close()


def front(server: VenueServer) -> BinanceFrontEnd:
    fe = server.fronts["binance"]
    assert isinstance(fe, BinanceFrontEnd)
    return fe


def balance(server: VenueServer, asset: str, key: str = BINANCE_KEY) -> tuple[Decimal, Decimal]:
    """(free, locked) of ``asset`` at the venue."""
    account = server.binance.account(key)
    assert account is not None
    return account.balance(asset)


def limit_order(**override: str) -> dict[str, str]:
    """``POST /api/v3/order`` parameters of a 0.01 BTC GTC limit buy at 90000, with
    ``override`` applied; an override of ``"-"`` drops that parameter."""
    order = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.01",
        "price": "90000",
    }
    return {key: value for key, value in {**order, **override}.items() if value != "-"}


def signed_query(params: dict[str, Any], secret: str = BINANCE_SECRET, body: str = "") -> str:
    """``params`` with a fresh ``timestamp`` and the HMAC-SHA256 ``signature`` over them and
    the form ``body`` sent with them."""
    query = urlencode({"timestamp": int(time.time() * 1000), **params})
    payload = (query + body).encode()
    signature = hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()
    return f"{query}&signature={signature}"


async def call(
    server: VenueServer,
    method: str,
    path: str,
    params: dict[str, Any] | None = None,
    *,
    signed: bool = False,
    key: str | None = BINANCE_KEY,
    body: str | None = None,
) -> tuple[int, Any, dict[str, str]]:
    """A raw request to ``/api/v3/<path>``: (status, JSON body, headers)."""
    query = signed_query(params or {}) if signed else urlencode(params or {})
    headers = {"X-MBX-APIKEY": key} if key else {}
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    url = f"{server.http_url}/api/v3/{path}" + (f"?{query}" if query else "")
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, url, headers=headers, data=body) as reply,
    ):
        return reply.status, await reply.json(), dict(reply.headers)


@contextlib.asynccontextmanager
async def socket(server: VenueServer, path: str) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    """A raw WebSocket connection to ``path`` on the venue."""
    async with aiohttp.ClientSession() as http, http.ws_connect(f"{server.ws_url}{path}") as ws:
        yield ws


async def receive(ws: aiohttp.ClientWebSocketResponse) -> Any:
    """The next JSON frame, failing after :data:`WAIT` seconds."""
    return await asyncio.wait_for(ws.receive_json(), WAIT)


async def request(ws: aiohttp.ClientWebSocketResponse, body: dict[str, Any]) -> Any:
    """The reply to ``body`` (stream frames already on their way are skipped)."""
    await ws.send_json(body)
    while True:
        reply = await receive(ws)
        if isinstance(reply, dict) and reply.get("id") == body.get("id"):
            return reply


def ws_signed(params: dict[str, Any]) -> dict[str, Any]:
    """WebSocket API ``params`` with a fresh timestamp and the HMAC-SHA256 signature over them
    sorted by name (web-socket-api.md "SIGNED request example (HMAC)")."""
    signed: dict[str, Any] = {**params, "timestamp": int(time.time() * 1000), "recvWindow": 5000}
    payload = "&".join(f"{k}={v}" for k, v in sorted(signed.items()))
    digest = hmac.new(BINANCE_SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return {**signed, "signature": digest}


async def early_in_window(server: VenueServer, window_ms: int, needed_ms: int = 10_000) -> None:
    """Wait until the venue's clock leaves at least ``needed_ms`` of the current fixed
    ``window_ms`` window (weight per minute, orders per 10 s), so counts a test reads are not
    reset under it."""
    await until(
        lambda: server.binance.now_ms() % window_ms <= window_ms - needed_ms,
        "room in the rate-limit window",
        timeout=needed_ms / 1000 + 5,
    )


async def until(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Wait until ``check()`` holds, failing after ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)

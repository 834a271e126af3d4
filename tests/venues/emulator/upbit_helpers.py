"""What the Upbit front end's tests share: real ccxt clients on the test venue, signed raw
requests for what ccxt hides, and waiting on a condition with a deadline."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import unquote, urlencode

import aiohttp
import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro
from venue_helpers import UPBIT_KEY, UPBIT_SECRET

from sigma.venues.emulator.server import VenueServer

BTC = "BTC/KRW"


@contextlib.asynccontextmanager
async def upbit(
    server: VenueServer,
    key: str = UPBIT_KEY,
    secret: str = UPBIT_SECRET,
    *,
    pro: bool = False,
    **config: Any,
) -> AsyncIterator[Any]:
    """A real ccxt (or ccxt.pro) Upbit client pointed at ``server``; its own throttle off so
    the venue's limits are what the tests see."""
    cls = ccxt_pro.upbit if pro else ccxt_async.upbit
    exchange = cls(
        {
            **server.ccxt_config("upbit"),
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


def token(
    key: str = UPBIT_KEY,
    secret: str = UPBIT_SECRET,
    query: str | None = None,
    nonce: str | None = None,
) -> str:
    """An Upbit JWT, signed the way ccxt signs it (HS256)."""
    payload: dict[str, Any] = {"access_key": key, "nonce": nonce or str(uuid.uuid4())}
    if query:
        payload["query_hash"] = hashlib.sha512(query.encode()).hexdigest()
        payload["query_hash_alg"] = "SHA512"
    return ccxt_async.Exchange.jwt(payload, secret.encode(), "sha256")


async def call(
    server: VenueServer,
    method: str,
    path: str,
    params: dict[str, Any] | None = None,
    *,
    auth: str | None = "sign",
    body: dict[str, Any] | None = None,
) -> tuple[int, Any, dict[str, str]]:
    """A raw request: ``auth="sign"`` signs it like ccxt, None sends no Authorization, any
    other string is sent as the header."""
    query = urlencode(params or {}, doseq=True)
    hashed = unquote(query) if query else None
    if body is not None:
        hashed = "&".join(f"{k}={v}" for k, v in body.items())
    headers = {}
    if auth == "sign":
        headers["Authorization"] = f"Bearer {token(query=hashed)}"
    elif auth is not None:
        headers["Authorization"] = auth
    url = f"{server.http_url}{path}" + (f"?{query}" if query else "")
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, url, json=body, headers=headers) as reply,
    ):
        raw = await reply.read()
        try:
            parsed: Any = await reply.json(content_type=None)
        except ValueError:
            parsed = raw.decode()
        return reply.status, parsed, dict(reply.headers)


async def until(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Wait for ``check()`` to hold, failing after ``timeout`` seconds."""

    async def poll() -> None:
        while not check():
            await asyncio.sleep(0.005)

    try:
        await asyncio.wait_for(poll(), timeout)
    except TimeoutError as exc:
        raise AssertionError(f"timed out waiting for {what}") from exc

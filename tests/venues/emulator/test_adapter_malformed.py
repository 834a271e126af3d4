"""A venue whose answer to a new order is not an order (cut short, empty, a proxy's page, JSON
of another shape), through real ccxt over HTTP: a reverse proxy in front of `sigma venue`
spoils the answers. ccxt parses any such 2xx body into an order of Nones; the execution client
must not take that for the venue's answer (it booked an open order the venue never had, and
the worker acknowledged its message). The outcome is unknown, so the client looks the client
order id up before it sends again: one order at the venue, its real fills in the report."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal as D

import ccxt
import pytest
from adapter_helpers import adapter, event
from aiohttp import ClientSession, web
from venue_helpers import BINANCE_KEY, BINANCE_SECRET, UPBIT_KEY, UPBIT_SECRET

from sigma.domain import OrderStatus, Side
from sigma.venues.emulator.server import VenueServer

# venue: (key, secret, the path of a new order, the start price)
VENUES = {
    "binance": (BINANCE_KEY, BINANCE_SECRET, "/api/v3/order", "92000"),
    "upbit": (UPBIT_KEY, UPBIT_SECRET, "/v1/orders", "130000000"),
}
# What a spoiled answer says (status 200 each), and whether the venue took the order first.
SPOILED = {
    "cut_short": (b'{"symbol":"BTCUSDT","orderId', "application/json", True),
    "empty": (b"", "application/json", False),
    "html": (b"<html><body>upstream timeout</body></html>", "text/html", True),
    "other_json": (b'{"ok": true}', "application/json", False),
}
_HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection"}


@dataclass
class SpoilingProxy:
    """Forwards every request to the venue, except that the next `spoil` new orders are
    answered with `body` (after the venue took them when `forward`, else never sent)."""

    upstream: str
    order_path: str
    body: bytes = b""
    content_type: str = "application/json"
    spoil: int = 0
    forward: bool = True
    spoiled: list[str] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        new_order = request.method == "POST" and request.path == self.order_path
        data = await request.read()
        if new_order and self.spoil > 0:
            self.spoil -= 1
            self.spoiled.append("forwarded" if self.forward else "withheld")
            if self.forward:
                await self._forward(request, data)
            return web.Response(status=200, body=self.body, content_type=self.content_type)
        status, body, content_type = await self._forward(request, data)
        return web.Response(status=status, body=body, content_type=content_type)

    async def _forward(self, request: web.Request, data: bytes) -> tuple[int, bytes, str]:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        async with (
            ClientSession() as session,
            session.request(
                request.method, self.upstream + request.path_qs, data=data, headers=headers
            ) as answer,
        ):
            return answer.status, await answer.read(), answer.content_type


@contextlib.asynccontextmanager
async def proxy(server: VenueServer, venue: str) -> AsyncIterator[tuple[SpoilingProxy, str]]:
    """The proxy for ``venue`` serving on a free port, and its URL."""
    spoiler = SpoilingProxy(server.http_url, VENUES[venue][2])
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", spoiler.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield spoiler, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def held(server: VenueServer, venue: str, key: str) -> list[str]:
    book = server.binance if venue == "binance" else server.upbit
    return [o.client_id for o in book.orders(key)]


@pytest.mark.parametrize("venue", VENUES)
@pytest.mark.parametrize("spoiled", SPOILED)
async def test_an_answer_that_is_no_order_is_looked_up_and_the_order_placed_once(
    venue_server: VenueServer, venue: str, spoiled: str
) -> None:
    key, secret, _, start = VENUES[venue]
    async with proxy(venue_server, venue) as (spoiler, url):
        spoiler.body, spoiler.content_type, forward = SPOILED[spoiled]
        spoiler.spoil, spoiler.forward = 1, forward
        async with adapter(venue_server, venue, key, secret, http_url=url) as (client, sleeps):
            report = await client.place(event("spoil-000001", Side.BUY, "0.01", start))
    assert spoiler.spoiled == ["forwarded" if forward else "withheld"]
    assert held(venue_server, venue, key) == ["spoil-000001"]
    assert report.status is OrderStatus.FILLED and report.exchange_order_id not in ("", "None")
    assert report.fills and sum(f.qty for f in report.fills) > D(0)
    assert len(sleeps) == 1


@pytest.mark.parametrize("venue", VENUES)
async def test_a_venue_that_keeps_answering_no_order_fails_naming_the_venue_and_the_order(
    venue_server: VenueServer, venue: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Every try answered with a page cut short (the venue never sees the order): after the
    policy's tries the error says which venue, which order and what came back, and the venue
    holds nothing (the worker's queue retries the order later)."""
    key, secret, _, start = VENUES[venue]
    async with proxy(venue_server, venue) as (spoiler, url):
        spoiler.body, spoiler.content_type, _ = SPOILED["cut_short"]
        spoiler.spoil, spoiler.forward = 100, False
        async with adapter(venue_server, venue, key, secret, http_url=url, attempts=3) as (
            client,
            sleeps,
        ):
            with pytest.raises(ccxt.BadResponse) as raised:
                await client.place(event("spoil-000002", Side.BUY, "0.01", start))
    assert str(raised.value) == (
        f"{venue}: the answer about order spoil-000002 is not an order (no order id): "
        '\'{"symbol":"BTCUSDT","orderId\''
    )
    assert len(spoiler.spoiled) == 3 and len(sleeps) == 2
    assert held(venue_server, venue, key) == []
    assert f"{venue}: place spoil-000002 failed 3 times" in caplog.text

"""A reverse proxy in front of `sigma venue` that spoils its answers: the answers to new orders
are replaced by what a venue should never say (cut short, empty, a proxy's page), or every
request is answered 503 (the venue away behind its load balancer)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiohttp import ClientSession, web
from venue_helpers import BINANCE_KEY, BINANCE_SECRET, UPBIT_KEY, UPBIT_SECRET

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
    answered with `body` (after the venue took them when `forward`, else never sent), and
    that nothing is forwarded while `down`."""

    upstream: str
    order_path: str
    body: bytes = b""
    content_type: str = "application/json"
    spoil: int = 0
    forward: bool = True
    spoiled: list[str] = field(default_factory=list)
    #: every request answered 503 without reaching the venue
    down: bool = False
    #: `down` from the first spoiled answer on (the venue went away right after it)
    down_after_spoil: bool = False

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.down:
            return web.Response(status=503, text="no healthy upstream")
        new_order = request.method == "POST" and request.path == self.order_path
        data = await request.read()
        if new_order and self.spoil > 0:
            self.spoil -= 1
            self.spoiled.append("forwarded" if self.forward else "withheld")
            if self.forward:
                await self._forward(request, data)
            self.down = self.down_after_spoil
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

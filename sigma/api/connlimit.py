"""Bounds on the connections the API's uvicorn server holds open: in all, and per client
address.

Without them one client could open thousands of connections (each an idle keep-alive, a
WebSocket, or a head trickling in under the 10 s head clock) and take every file descriptor of
the process that also runs the bot. uvicorn's own `limit_concurrency` counts only in all, not
per address, answers in plain text and lets WebSocket handshakes through; so the connections
are counted where uvicorn makes them (`LimitedHttpTools`, and `LimitedWebSocket` once upgraded)
and refused by `ConnectionGate` in the API's shapes: a 503 `{"detail"}` with `Retry-After`, or
a WebSocket accepted and closed with 1013 ("try again later"), which a browser can see (a
refused handshake is an anonymous 1006 to it). A refused connection is not counted, and its
head has `REFUSED_HEAD_SECONDS` to arrive instead of ten.

The address is the TCP peer's (forwarded headers cannot be read before a request arrives);
the proxies the API trusts are exempt from the per-address bound, since every client behind
them shares their address, and count only towards the total.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket
from uvicorn.protocols.utils import get_remote_addr
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from sigma.api.headers import SecurityHeadersMiddleware
from sigma.api.headlimit import HeadLimitedHttpTools
from sigma.api.ws import BEARER_PROTOCOL, CLOSE_TOO_SLOW, bearer_protocol
from sigma.ops.connections import ConnectionLimits

REFUSED_HEAD_SECONDS = 2.0
"""How long a refused connection may take to send the head its refusal answers."""
RETRY_AFTER_SECONDS = 5
"""What a refused client is told to wait: connections are short, most free up in seconds."""


class LimitedHttpTools(HeadLimitedHttpTools):
    """The head-limited httptools protocol, each connection counted by `limits` (set on a
    subclass by `limited_protocols`)."""

    limits: ClassVar[ConnectionLimits]

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Count the connection; a refused one gets a short head clock."""
        # uvicorn sets `self.client` in super().connection_made, which starts the clock.
        if not self.limits.admit(get_remote_addr(transport)):
            self.head_seconds = REFUSED_HEAD_SECONDS
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        """Uncount the connection (an upgraded one is uncounted by `LimitedWebSocket`)."""
        self.limits.release(self.client)
        super().connection_lost(exc)


class LimitedWebSocket(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol, uncounting its connection when it closes: after an
    upgrade the HTTP protocol never hears of the connection again."""

    limits: ClassVar[ConnectionLimits]

    def connection_lost(self, exc: Exception | None) -> None:
        """Uncount the connection."""
        self.limits.release(self.client)
        super().connection_lost(exc)


def limited_protocols(limits: ConnectionLimits) -> dict[str, Any]:
    """uvicorn's `http` and `ws` options counting every connection in `limits`."""
    http = type("LimitedHttpTools", (LimitedHttpTools,), {"limits": limits})
    ws = type("LimitedWebSocket", (LimitedWebSocket,), {"limits": limits})
    return {"http": http, "ws": ws}


class ConnectionGate:
    """ASGI wrapper answering every request of a refused connection: 503 with `Retry-After`
    (closing the connection), or a WebSocket closed with 1013. It must see the TCP peer, so it
    wraps any forwarded-headers middleware, never the reverse."""

    def __init__(self, app: ASGIApp, limits: ConnectionLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, unless its connection was refused."""
        if scope["type"] == "lifespan" or not self.limits.refused(scope.get("client")):
            await self.app(scope, receive, send)
            return
        why = "too many connections: try again later"
        if scope["type"] == "websocket":
            websocket = WebSocket(scope, receive, send)
            offered = bearer_protocol(scope.get("subprotocols", []))
            # A browser that offered subprotocols drops a handshake naming none (it would see
            # 1006, not the 1013 that says when to come back).
            await websocket.accept(subprotocol=BEARER_PROTOCOL if offered else None)
            await websocket.close(CLOSE_TOO_SLOW, why)
            return
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS), "Connection": "close"}
        refusal = JSONResponse({"detail": why}, 503, headers=headers)
        # Outside the app, so its security headers are added here.
        await SecurityHeadersMiddleware(refusal)(scope, receive, send)

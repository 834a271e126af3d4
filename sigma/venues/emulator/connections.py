"""Bounds on the connections `sigma venue` holds open, as the API bounds its own
(`sigma.api.connlimit`, `sigma.api.headlimit`): how many, in all and per client address, and how
long a request's head and body may take.

aiohttp times neither: a client sending a head byte by byte, or half a body, held its
connection (and a body's request task) for as long as its idle keep-alive allowed, an hour.
A head not complete `head_seconds` after the connection opened or the request's first byte
is answered 408 and closed; a body not complete `body_seconds` after its head fails the read
of the route waiting on it (the 408 then comes through the server's error replies) and the
connection closes after the answer. A connection beyond the limits is not served: its first
head is answered 503 with `Retry-After` (a refused head gets `REFUSED_HEAD_SECONDS`). Each
answer is in the shape of the protocol whose path was asked for (`ErrorReply`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler

from sigma.ops.connections import ConnectionLimits, Peer
from sigma.venues.emulator.parse_errors import ErrorReply, JsonErrorHandler, JsonErrorRunner

__all__ = ["REFUSED_HEAD_SECONDS", "RETRY_AFTER_SECONDS", "BoundedRunner", "Bounds"]

REFUSED_HEAD_SECONDS = 2.0
"""How long a refused connection may take to send the head its refusal answers."""
RETRY_AFTER_SECONDS = 5
"""What a refused client is told to wait: connections are short, most free up in seconds."""
_REFUSED_HEAD_BYTES = 16 * 1024
"""What is read of a refused connection's head before it is answered anyway."""
_HEAD_START_BYTES = 128
"""What is kept of a head's first bytes: its request line's path, for a head cut short."""


@dataclass(frozen=True)
class Bounds:
    """The connections a server admits (`limits`) and the seconds a head and a body may
    take."""

    limits: ConnectionLimits
    head_seconds: float
    body_seconds: float


def _raw(response: web.Response, headers: dict[str, str] | None = None) -> bytes:
    """`response` (a JSON error reply) as the bytes of a whole answer closing the
    connection: written straight to the transport, with no request to answer through."""
    body = bytes(response.body or b"")  # type: ignore[arg-type]  # always bytes here
    fields = {
        **response.headers,
        **(headers or {}),
        "Content-Length": str(len(body)),
        "Connection": "close",
    }
    head = f"HTTP/1.1 {response.status} {response.reason}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in fields.items())
    return (head + "\r\n").encode("latin-1") + body


class _BoundedHandler(JsonErrorHandler):
    """A connection counted in `bounds.limits`, its heads and bodies on a clock."""

    def __init__(self, manager: web.Server, reply: ErrorReply, bounds: Bounds, **kwargs: Any):
        super().__init__(manager, reply, **kwargs)
        self._bounds = bounds
        self._timer: asyncio.TimerHandle | None = None
        self._peer: Peer | None = None
        self._refused = False
        self._awaiting_head = True
        self._refused_head = b""
        self._head_start = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Count the connection and start its first head's clock."""
        name = transport.get_extra_info("peername")
        self._peer = (str(name[0]), int(name[1])) if isinstance(name, tuple) else None
        self._refused = not self._bounds.limits.admit(self._peer)
        super().connection_made(transport)
        seconds = REFUSED_HEAD_SECONDS if self._refused else self._bounds.head_seconds
        self._start_clock(seconds, self._head_too_slow)

    def connection_lost(self, exc: BaseException | None) -> None:
        """Uncount the connection and stop its clock."""
        self._stop_clock()
        self._bounds.limits.release(self._peer)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Parse `data` on the clock of the head or body it belongs to; a refused connection's
        head is answered 503, never parsed."""
        if self._refused:
            self._refuse(data)
            return
        if self._awaiting_head:
            if self._timer is None:
                self._start_clock(self._bounds.head_seconds, self._head_too_slow)
            # A head sent in pieces names its path in none of them.
            self._head_start = (self._head_start + data)[:_HEAD_START_BYTES]
        parsed = self._request_count
        super().data_received(data)
        if self._request_count == parsed or not self._messages:
            return
        self._stop_clock()
        self._head_start = b""
        payload = self._messages[-1][1]
        self._awaiting_head = not self._upgraded  # a WebSocket has no more heads
        if self._upgraded or payload.is_eof():
            return
        self._awaiting_head = False
        self._start_clock(self._bounds.body_seconds, lambda: self._body_too_slow(payload))
        payload.on_eof(self._body_complete)

    def _body_complete(self) -> None:
        self._stop_clock()
        self._awaiting_head = True

    def _refuse(self, data: bytes) -> None:
        self.note_path(data)
        self._refused_head += data
        if b"\r\n\r\n" in self._refused_head or len(self._refused_head) > _REFUSED_HEAD_BYTES:
            why = "too many connections: try again later"
            self._answer(503, why, {"Retry-After": str(RETRY_AFTER_SECONDS)})

    def _head_too_slow(self) -> None:
        self._timer = None
        self.logger.warning("venue: request head not complete in time: closed")
        self.note_path(self._head_start)
        self._answer(408, "request line and headers not received in time")

    def _body_too_slow(self, payload: StreamReader) -> None:
        self._timer = None
        self.logger.warning("venue: request body not complete in time: closed")
        if self._current_request is None:  # answered already: only the connection is left
            self.force_close()
            return
        # The route's read fails with the 408 (answered in the protocol's shape by the
        # server's error middleware); the rest of the body is not waited for.
        self._lingering_time = 0.0
        payload.set_exception(web.HTTPRequestTimeout(text="request body not received in time"))

    def _answer(self, status: int, why: str, headers: dict[str, str] | None = None) -> None:
        """Answer `status` in the protocol's shape and close, with no request in flight."""
        self._stop_clock()
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.write(_raw(self._reply(self._path, status, why), headers))
        self.force_close()

    def _start_clock(self, seconds: float, expired: Callable[[], None]) -> None:
        self._stop_clock()
        self._timer = self._loop.call_later(seconds, expired)

    def _stop_clock(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class BoundedRunner(JsonErrorRunner):
    """`JsonErrorRunner` whose connections are bounded by `bounds`."""

    def __init__(
        self, app: web.Application, reply: ErrorReply, bounds: Bounds, **kwargs: Any
    ) -> None:
        super().__init__(app, reply, **kwargs)
        self.bounds = bounds

    def handler(self, server: web.Server) -> RequestHandler:
        """A bounded handler for a new connection to `server`."""
        return _BoundedHandler(server, self.reply, self.bounds, loop=server._loop, **server._kwargs)

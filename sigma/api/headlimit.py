"""Bounds on the request line and headers uvicorn's httptools protocol reads: their size and
the time they take, and the time a body takes.

httptools takes a request head of any size (a 20 MB header was read and answered 200): the
1 MiB body limit meant nothing while each connection could make the process hold megabytes of
headers. uvicorn bounds them only for h11, which is slower; `HeadLimitedHttpTools` counts the
bytes a request's head has taken and answers 431 and closes the connection beyond
`MAX_HEAD_BYTES`, before anything reaches the app. Nor did uvicorn time a head: a connection
sending half a head (or nothing) stayed open for good, so a few hundred such clients held
every file descriptor; a head not complete `HEAD_SECONDS` after the connection opened or the
request began is answered 408 and closed. Likewise a body: once a head said one follows, a
client could send half of it and hold the connection (and the request's task) for good; one
not complete `BODY_SECONDS` after its head is answered 408 and closed. A request httptools
cannot parse (a malformed line, Content-Length beside Transfer-Encoding) is answered in the
API's error shape too, not uvicorn's plain text.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from sigma.api.headers import COMMON_HEADERS

MAX_HEAD_BYTES = 64 * 1024
"""The request line and headers of one request (a bearer token is under 1 KiB)."""
HEAD_SECONDS = 10.0
"""How long a request's head may take to arrive (a client sends it in one go)."""
BODY_SECONDS = 30.0
"""How long a body may take after its head: 1 MiB (the body limit) at 35 KB/s."""


_SECURITY = b"".join(
    f"{name}: {value}\r\n".encode()
    for name, value in (*COMMON_HEADERS, ("Cache-Control", "no-store"))
)


def _answer(status: bytes, detail: str) -> bytes:
    """A whole HTTP answer in the API's error shape, with the security headers every answer
    carries, closing the connection."""
    body = json.dumps({"detail": detail}).encode()
    return (
        b"HTTP/1.1 "
        + status
        + b"\r\ncontent-type: application/json\r\n"
        + _SECURITY
        + b"content-length: "
        + str(len(body)).encode()
        + b"\r\nconnection: close\r\n\r\n"
        + body
    )


TOO_LARGE = _answer(
    b"431 Request Header Fields Too Large",
    f"request line and headers larger than {MAX_HEAD_BYTES} bytes",
)
TOO_SLOW = _answer(b"408 Request Timeout", "request line and headers not received in time")
BODY_TOO_SLOW = _answer(b"408 Request Timeout", "request body not received in time")


class HeadLimitedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol with a request's head bounded to `MAX_HEAD_BYTES` and
    `HEAD_SECONDS`.

    The bytes up to the blank line ending a head are counted before they reach the parser
    (so it never holds more than the limit, and a body never counts). The clock runs from
    the connection's start and from each request's first byte until its head is complete
    (between requests uvicorn's keep-alive timeout closes an idle connection); then, for a
    request with a body, from the head's end until the body is complete."""

    head_seconds: float = HEAD_SECONDS
    """The head's clock, shortened for a connection refused beyond the connection limits."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start a connection awaiting its first request's head."""
        super().connection_made(transport)
        self._timer: asyncio.TimerHandle | None = None
        self._awaiting_head = True
        self._head_bytes = 0
        self._head_tail = b""  # the last bytes seen, for a blank line split between reads
        self._start_clock(self.head_seconds, self._head_too_slow)

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the head's clock with the connection."""
        self._stop_clock()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        """A new request: the clock starts again for its head."""
        self._start_clock(self.head_seconds, self._head_too_slow)
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        """The head is complete: what follows is the body, on its own clock (stopped at once
        by the request's end when there is none; an upgrade leaves this protocol)."""
        self._stop_clock()
        self._awaiting_head = False
        self._head_bytes = 0
        self._head_tail = b""
        super().on_headers_complete()
        if not self.parser.should_upgrade():
            self._start_clock(BODY_SECONDS, self._body_too_slow)

    def on_message_complete(self) -> None:
        """The request is complete: what follows is the next one's head."""
        self._stop_clock()
        self._awaiting_head = True
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        """A request httptools cannot parse: 400 in the API's error shape, and closed."""
        # uvicorn has logged it already.
        self._refuse(_answer(b"400 Bad Request", f"malformed request: {msg}"))

    def data_received(self, data: bytes) -> None:
        """Count the head's bytes in `data`, then parse it; 431 and close beyond the limit."""
        if self._awaiting_head:
            seen = self._head_tail + data
            end = seen.find(b"\r\n\r\n")
            self._head_bytes += len(data) if end < 0 else end + 4 - len(self._head_tail)
            self._head_tail = seen[-3:]
            if self._head_bytes > MAX_HEAD_BYTES:
                self.logger.warning("request head over %d bytes: refused", MAX_HEAD_BYTES)
                self._refuse(TOO_LARGE)
                return
        super().data_received(data)

    def _start_clock(self, seconds: float, expired: Callable[[], None]) -> None:
        self._stop_clock()
        self._timer = self.loop.call_later(seconds, expired)

    def _stop_clock(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _head_too_slow(self) -> None:
        self._timer = None
        if not self.transport.is_closing():
            self.logger.warning("request head not complete in %g s: closed", self.head_seconds)
            self._refuse(TOO_SLOW)

    def _body_too_slow(self) -> None:
        self._timer = None
        # The app may have answered already (a 413, say): then only the connection is left.
        answered = self.cycle is not None and self.cycle.response_started
        if answered or not self.transport.is_closing():
            self.logger.warning("request body not complete in %g s: closed", BODY_SECONDS)
            self._refuse(b"" if answered else BODY_TOO_SLOW)

    def _refuse(self, answer: bytes) -> None:
        self._stop_clock()
        self._awaiting_head = False  # nothing more is read from this connection
        self.transport.write(answer)
        self.transport.close()

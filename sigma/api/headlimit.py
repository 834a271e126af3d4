"""A bound on the request line and headers uvicorn's httptools protocol buffers.

httptools takes a request head of any size (a 20 MB header was read and answered 200): the
1 MiB body limit meant nothing while each connection could make the process hold megabytes of
headers. uvicorn bounds them only for h11, which is slower; `HeadLimitedHttpTools` counts the
bytes a request's head has taken and answers 431 and closes the connection beyond
`MAX_HEAD_BYTES`, before anything reaches the app.
"""

from __future__ import annotations

import asyncio
import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD_BYTES = 64 * 1024
"""The request line and headers of one request (a bearer token is under 1 KiB)."""

_DETAIL = json.dumps(
    {"detail": f"request line and headers larger than {MAX_HEAD_BYTES} bytes"}
).encode()
TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: application/json\r\n"
    b"content-length: " + str(len(_DETAIL)).encode() + b"\r\n"
    b"connection: close\r\n\r\n" + _DETAIL
)
"""The whole answer to a head beyond the limit, in the API's error shape."""


class HeadLimitedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol with a request's head bounded to `MAX_HEAD_BYTES`.

    The bytes of every chunk fed while a head is still incomplete count (a chunk that
    completes the head does not, so a body arriving with it is never counted): the parser
    holds at most the limit and one read."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start a connection awaiting its first request's head."""
        self._in_head = True
        self._head_bytes = 0
        super().connection_made(transport)

    def on_message_begin(self) -> None:
        """A new request: its head starts."""
        self._in_head = True
        self._head_bytes = 0
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        """The head is complete: what follows is the body."""
        self._in_head = False
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        """Parse `data`; answer 431 and close once an incomplete head passes the limit."""
        super().data_received(data)
        if not self._in_head or self.transport.is_closing():
            return
        self._head_bytes += len(data)
        if self._head_bytes > MAX_HEAD_BYTES:
            self.logger.warning("request head over %d bytes: refused", MAX_HEAD_BYTES)
            self.transport.write(TOO_LARGE)
            self.transport.close()

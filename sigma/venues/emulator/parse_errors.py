"""The HTTP parser's refusals in the protocols' JSON.

aiohttp refuses a request its parser cannot take (a request line over 8190 bytes, a header
over 8190 bytes, more than 128 headers, a malformed line) before any route or middleware sees
it, with a plain-text 400 from `RequestHandler.handle_error`: a Binance or Upbit client then
gets neither the venue's status nor its error shape. `JsonErrorRunner` serves with a request
handler whose `handle_error` answers those refusals through the venue's own error reply:
414 for a request line too long, 431 for a header too large or too many, 400 otherwise, in the
shape of the protocol whose path was asked for.

The path is not in aiohttp's error (its request is a placeholder): the handler notes the path
of each request line as it arrives, and takes an over-long line's from what the parser read.
aiohttp offers no hook for the handler's class: `_JsonErrorServer.__call__` makes it as
`web.Server` does, through `JsonErrorRunner.handler` (which a runner adding to the handler
overrides).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

__all__ = ["ErrorReply", "JsonErrorHandler", "JsonErrorRunner"]

log = logging.getLogger(__name__)

ErrorReply = Callable[[str, int, str], web.Response]
"""The venue's error reply for (path, status, message)."""

_REQUEST_START = re.compile(rb"(?:\A|\r\n\r\n)[A-Z]{1,16} (/[^ ?#\r\n]{0,64})")
"""A request line beginning a read, or following a head's blank line: its path's start."""
_TARGET = re.compile(rb"(?:[A-Z]{1,16} )?(/[^ ?#\r\n]{0,64})")
"""What the parser read of an over-long request line (llhttp: the target; aiohttp's pure
Python parser: the line): a header's name cannot start with "/"."""


class JsonErrorHandler(RequestHandler):
    """aiohttp's request handler, its parser's refusals answered by `reply`."""

    def __init__(self, manager: web.Server, reply: ErrorReply, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._reply = reply
        self._path = ""

    def data_received(self, data: bytes) -> None:
        """Note the path of the latest request beginning in `data`, then parse it."""
        self.note_path(data)
        super().data_received(data)

    def note_path(self, data: bytes) -> None:
        """Note the path of the latest request beginning in `data` (what its refusal names)."""
        if starts := _REQUEST_START.findall(data):
            self._path = starts[-1].decode("latin-1")

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """The parser's refusals in the protocol's JSON, closing the connection; anything
        else as aiohttp answers it."""
        if not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)
        path = self._path
        if isinstance(exc, LineTooLong) and (target := _TARGET.match(bytes(exc.args[0]))):
            path = target[1].decode("latin-1")
            status, why = 414, f"request line over {self.max_line_size} bytes"
        elif isinstance(exc, LineTooLong):
            status, why = 431, f"request header over {self.max_field_size} bytes"
        elif exc.message.startswith("Too many headers"):
            status, why = 431, f"more than {self.max_headers} request headers"
        else:
            detail = exc.message.splitlines()[0].rstrip(": ")
            status, why = 400, f"malformed request: {detail}"
        log.warning("refused a request to %r: %s", path, why)
        response = self._reply(path, status, why)
        response.force_close()
        return response


class _JsonErrorServer(web.Server):
    """`web.Server` making its connections' handlers with `make`."""

    def __init__(self, server: web.Server, make: Callable[[web.Server], RequestHandler]) -> None:
        # The app's server, built by AppRunner with its handler and request factory.
        self.__dict__.update(vars(server))
        self._make = make

    def __call__(self) -> RequestHandler:
        return self._make(self)


class JsonErrorRunner(web.AppRunner):
    """`web.AppRunner` whose connections answer the HTTP parser's refusals with `reply`."""

    def __init__(self, app: web.Application, reply: ErrorReply, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.reply = reply

    def handler(self, server: web.Server) -> RequestHandler:
        """The request handler of a new connection to `server`."""
        return JsonErrorHandler(server, self.reply, loop=server._loop, **server._kwargs)

    async def _make_server(self) -> web.Server:
        return _JsonErrorServer(await super()._make_server(), self.handler)

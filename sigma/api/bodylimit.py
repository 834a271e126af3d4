"""A cap on the size of request bodies, applied before any route reads them.

Neither uvicorn nor FastAPI limits bodies: without this, one request could make the process
buffer gigabytes (a form, a JSON document) and the unit's MemoryMax would kill the API.
"""

from __future__ import annotations

import logging

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

# The largest legitimate body (a backtest request, a news item, a parameter set) is a few kB.
MAX_BODY_BYTES = 1 << 20


class BodyLimitMiddleware:
    """Answer 413 to a request whose body exceeds `max_bytes` (pure ASGI, no buffering).

    A declared ``Content-Length`` beyond the limit is refused before a byte is read; a body
    without one (chunked) is counted as it arrives and cut off where it crosses the limit:
    the route then sees a disconnected client, and its response is dropped for the 413."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, refusing it once its body is known to be too large."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(scope, receive, send)
            return
        received = 0
        refused = False

        async def counted() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request" and not refused:
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    refused = True
                    await self._refuse(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def unless_refused(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, counted, unless_refused)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        log.warning(
            "refused %s %s: request body larger than %d bytes",
            scope["method"],
            scope["path"],
            self.max_bytes,
        )
        response = JSONResponse(
            status_code=413,
            content={"detail": f"request body larger than {self.max_bytes} bytes"},
        )
        await response(scope, receive, send)

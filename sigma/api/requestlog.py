"""LoggingService: one log line per HTTP request - method, path, status, user, latency.

The query string is left out (it may hold a token) and so are bodies (they may hold passwords).
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sigma.api.context import LOG_SCOPE_KEY

log = logging.getLogger("sigma.api.requests")


class RequestLogMiddleware:
    """Pure ASGI middleware (no response buffering, streaming is untouched)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on and log it when the response is done (or failed)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        fields: dict[str, Any] = {}
        scope[LOG_SCOPE_KEY] = fields
        status = 500  # what the client gets if the app raises before responding
        started = time.perf_counter()

        async def send_and_watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        finally:
            latency_ms = round((time.perf_counter() - started) * 1000, 2)
            user = fields.get("user", "-")
            log.info(
                "%s %s %d user=%s %.2fms",
                scope["method"],
                scope["path"],
                status,
                user,
                latency_ms,
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "user": user,
                    "latency_ms": latency_ms,
                },
            )


class TokenQueryFilter(logging.Filter):
    """Masks `token=...` in log arguments. uvicorn logs each accepted WebSocket with its full
    query string, and `/ws` carries the JWT there."""

    _TOKEN = re.compile(r"([?&]token=)[^&\s\"']+")

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's string arguments; never drops a record."""
        if isinstance(record.args, tuple):
            record.args = tuple(
                self._TOKEN.sub(r"\1***", arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
        return True


def mask_tokens_in_server_logs(
    names: tuple[str, ...] = ("uvicorn.error", "uvicorn.access"),
) -> None:
    """Install `TokenQueryFilter` on the server's loggers (once each)."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, TokenQueryFilter) for f in logger.filters):
            logger.addFilter(TokenQueryFilter())

"""What the local exchange's front ends share on the wire: JSON replies, decimals as the venues
print them, client addresses, and dropping a connection on purpose."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
from aiohttp import web

__all__ = ["ConnectionDropped", "client_address", "decimal_text", "drop", "json_reply"]


class ConnectionDropped(Exception):
    """Raised by :func:`drop`; the server swallows it (the client sees the connection close)."""


def drop(request: web.Request) -> None:
    """Close the client's connection without a reply (the "accepted, then lost" fault)."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    raise ConnectionDropped


def client_address(request: web.Request) -> str:
    """The peer's address, the key rate limits count by (proxies' headers are not trusted)."""
    return request.remote or "unknown"


def json_reply(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON response (orjson; Decimals must already be strings or numbers)."""
    return web.Response(
        body=orjson.dumps(body, default=_default),
        status=status,
        headers=headers,
        content_type="application/json",
    )


def decimal_text(value: Decimal | None, places: int | None = 8) -> str | None:
    """``value`` as the venue prints it: fixed point, ``places`` decimals (Binance's 8), or
    the shortest exact form with ``places=None`` (Upbit)."""
    if value is None:
        return None
    if places is None:
        text = format(value.normalize(), "f")
        return text if text != "-0" else "0"
    return format(value.quantize(Decimal(1).scaleb(-places)), "f")


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot encode {type(value).__name__}")

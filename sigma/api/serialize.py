"""JSON shapes shared by the routers: money as exact strings, rows as plain dicts, and a
response that skips the per-row model validation of hot read routes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
from starlette.background import BackgroundTask
from starlette.responses import Response


def dec(value: Decimal) -> str:
    """An exact decimal string without the storage padding (`1.5000000000` -> `1.5`), never
    in exponent notation, "0" for any zero. Works on the text (about 0.3 µs), not through
    `normalize()`, which also rounds to the context's 28 digits."""
    text = str(value)
    if "E" in text:  # exponent notation: zero with a scale (0E-10), tiny or huge values
        text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def opt_dec(value: Decimal | None) -> str | None:
    """`dec` that passes None through."""
    return None if value is None else dec(value)


def dec_text(text: str | None) -> str | None:
    """`dec` of a decimal the database already wrote as plain fixed-point text (an amount
    column read with `CAST(... AS VARCHAR)`: `0.5000000000`), without making a Decimal of it;
    None passes through."""
    if text is None or "." not in text:
        return text
    text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


class JsonBytes(Response):
    """JSON rendered by orjson: the same text FastAPI's encoder gives for plain dicts, lists,
    strings, numbers, booleans, None and aware datetimes (`...Z`), several times faster.

    A route that returns it keeps its `response_model` for the OpenAPI schema, but its rows
    are not validated again on the way out: build them with exactly the model's fields."""

    media_type = "application/json"

    def __init__(
        self,
        content: Any,
        status_code: int = 200,
        headers: dict[str, str] | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        super().__init__(content, status_code, headers, self.media_type, background)

    def render(self, content: Any) -> bytes:
        """orjson bytes; aware UTC datetimes end in `Z` as pydantic writes them."""
        return orjson.dumps(content, option=orjson.OPT_UTC_Z)

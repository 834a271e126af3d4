"""JSON shapes shared by the routers: money as exact strings (the store's `dec`), rows as
plain dicts, and a response that skips the per-row model validation of hot read routes."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any

import orjson
from pydantic import Field
from starlette.background import BackgroundTask
from starlette.responses import Response

from sigma.store.amounts import PRECISION, SCALE, dec, dec_text, opt_dec

__all__ = ["Amount", "JsonBytes", "dec", "dec_text", "opt_dec"]

_PLAIN_DECIMAL = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


def plain_decimal(value: Any) -> Any:
    """`value`, unless it is a text other than a decimal number in ASCII digits: Decimal()
    reads any Unicode digit ("١" is 1) and strips blanks, so a text meaning something else to
    whoever typed or checked it would be taken. A `mode="before"` validator of `Amount`
    fields (within `Amount` itself it would garble the schema's bounds)."""
    if isinstance(value, str) and not _PLAIN_DECIMAL.fullmatch(value):
        raise ValueError('expected a decimal number in ASCII digits, e.g. "12.5"')
    return value


Amount = Annotated[Decimal, Field(max_digits=PRECISION, decimal_places=SCALE)]
"""An amount in a request, a JSON number or a string (see `plain_decimal`): one the books hold
exactly (NUMERIC(28, 10)), so nothing accepted is rounded or overflows when it is stored; more
digits are a 422 naming the field."""


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

"""JSON shapes shared by the routers: money as exact strings (the store's `dec`), rows as
plain dicts, and a response that skips the per-row model validation of hot read routes."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.background import BackgroundTask
from starlette.responses import Response

from sigma.store.amounts import dec, dec_text, opt_dec

__all__ = ["JsonBytes", "dec", "dec_text", "opt_dec"]


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

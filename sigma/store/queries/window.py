"""The time window shared by the listing queries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select


def within(
    query: Select[Any], ts: Any, since: datetime | None, until: datetime | None
) -> Select[Any]:
    """`query` restricted to rows whose `ts` is in [`since`, `until`) (an open end when None)."""
    if since is not None:
        query = query.where(ts >= since)
    if until is not None:
        query = query.where(ts < until)
    return query

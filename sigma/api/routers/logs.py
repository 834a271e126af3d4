"""The alert log and the bot's action log (read-only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel

from sigma.api.context import Db, Instant, Viewer
from sigma.api.routers.trading import Limit, Offset
from sigma.store.queries import logs

router = APIRouter(prefix="/api", tags=["logs"])


class AlertOut(BaseModel):
    """A raised alert: one row per alert key, `count` times seen from `ts` (first) to
    `last_seen`; the message and severity are the latest occurrence's."""

    id: int
    ts: datetime
    last_seen: datetime
    count: int
    severity: str
    source: str
    message: str
    dedupe_key: str | None


class ActionOut(BaseModel):
    """A decision the bot took."""

    id: int
    ts: datetime
    source: str
    action: str
    mode: str | None
    strategy: str | None
    symbol: str | None
    details: dict[str, Any]


@router.get("/alerts", response_model=list[AlertOut])
def alerts(
    session: Db,
    _: Viewer,
    severity: Literal["info", "warning", "error", "critical"] | None = None,
    source: str | None = None,
    since: Instant | None = None,
    until: Instant | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[AlertOut]:
    """Alerts, the most recently seen first (`since`/`until` bound the last sighting)."""
    found = logs.alerts(
        session,
        severity=severity,
        source=source,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
    return [
        AlertOut(
            id=a.id,
            ts=a.ts,
            last_seen=a.last_seen,
            count=a.seen,
            severity=a.severity,
            source=a.source,
            message=a.message,
            dedupe_key=a.dedupe_key,
        )
        for a in found
    ]


@router.get("/actions", response_model=list[ActionOut])
def actions(
    session: Db,
    _: Viewer,
    strategy: str | None = None,
    symbol: str | None = None,
    action: str | None = None,
    since: Instant | None = None,
    until: Instant | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[ActionOut]:
    """Bot decisions, newest first."""
    found = logs.actions(
        session,
        strategy=strategy,
        symbol=symbol,
        action=action,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
    return [
        ActionOut(
            id=a.id,
            ts=a.ts,
            source=a.source,
            action=a.action,
            mode=a.mode,
            strategy=a.strategy,
            symbol=a.symbol,
            details=dict(a.details),
        )
        for a in found
    ]

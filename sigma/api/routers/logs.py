"""The alert log and the bot's action log (read-only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import select

from sigma.api.context import Db, Viewer
from sigma.api.paging import within
from sigma.api.routers.trading import Limit, Offset
from sigma.store.models import ActionLog, AlertLog

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
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[AlertOut]:
    """Alerts, the most recently seen first (`since`/`until` bound the last sighting)."""
    query = select(AlertLog).order_by(AlertLog.last_seen.desc(), AlertLog.id.desc())
    if severity is not None:
        query = query.where(AlertLog.severity == severity)
    if source is not None:
        query = query.where(AlertLog.source == source)
    query = within(query, AlertLog.last_seen, since, until).limit(limit).offset(offset)
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
        for a in session.scalars(query)
    ]


@router.get("/actions", response_model=list[ActionOut])
def actions(
    session: Db,
    _: Viewer,
    strategy: str | None = None,
    symbol: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[ActionOut]:
    """Bot decisions, newest first."""
    query = select(ActionLog).order_by(ActionLog.ts.desc(), ActionLog.id.desc())
    if strategy is not None:
        query = query.where(ActionLog.strategy == strategy)
    if symbol is not None:
        query = query.where(ActionLog.symbol == symbol)
    if action is not None:
        query = query.where(ActionLog.action == action)
    query = within(query, ActionLog.ts, since, until).limit(limit).offset(offset)
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
        for a in session.scalars(query)
    ]

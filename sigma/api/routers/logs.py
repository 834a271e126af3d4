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
    """A raised alert."""

    id: int
    ts: datetime
    severity: str
    source: str
    message: str


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
    """Alerts, newest first."""
    query = select(AlertLog).order_by(AlertLog.ts.desc(), AlertLog.id.desc())
    if severity is not None:
        query = query.where(AlertLog.severity == severity)
    if source is not None:
        query = query.where(AlertLog.source == source)
    query = within(query, AlertLog.ts, since, until).limit(limit).offset(offset)
    return [
        AlertOut(id=a.id, ts=a.ts, severity=a.severity, source=a.source, message=a.message)
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

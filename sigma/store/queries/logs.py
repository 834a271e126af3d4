"""The alert log and the bot's action log, newest first."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from sigma.store.models import ActionLog, AlertLog
from sigma.store.queries.window import within


def alerts(
    session: Session,
    *,
    severity: str | None = None,
    source: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Sequence[AlertLog]:
    """Alerts, the most recently seen first (`since`/`until` bound the last sighting)."""
    query = select(AlertLog).order_by(AlertLog.last_seen.desc(), AlertLog.id.desc())
    if severity is not None:
        query = query.where(AlertLog.severity == severity)
    if source is not None:
        query = query.where(AlertLog.source == source)
    query = within(query, AlertLog.last_seen, since, until).limit(limit).offset(offset)
    return session.scalars(query).all()


def actions(
    session: Session,
    *,
    strategy: str | None = None,
    symbol: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Sequence[ActionLog]:
    """Bot decisions, newest first."""
    query = select(ActionLog).order_by(ActionLog.ts.desc(), ActionLog.id.desc())
    if strategy is not None:
        query = query.where(ActionLog.strategy == strategy)
    if symbol is not None:
        query = query.where(ActionLog.symbol == symbol)
    if action is not None:
        query = query.where(ActionLog.action == action)
    query = within(query, ActionLog.ts, since, until).limit(limit).offset(offset)
    return session.scalars(query).all()

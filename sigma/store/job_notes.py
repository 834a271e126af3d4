"""What scheduled jobs remember between runs, kept as `action_log` rows: the user check's last
rights snapshot, the periods whose report was delivered and where.

A note is the `details` document of a row with a `source` and an `action`; what it says is
the job's business."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sigma.store.models import ActionLog


def add_note(
    session: Session, ts: datetime, source: str, action: str, details: dict[str, Any]
) -> None:
    """Record `details` as `action` of `source` at `ts`, in the caller's transaction."""
    session.add(ActionLog(ts=ts, source=source, action=action, details=details))
    session.flush()


def latest_note(session: Session, action: str) -> dict[str, Any] | None:
    """The newest `action` note of any source, None when there is none."""
    return session.scalar(
        select(ActionLog.details)
        .where(ActionLog.action == action)
        .order_by(ActionLog.ts.desc(), ActionLog.id.desc())
        .limit(1)
    )


def notes(session: Session, source: str, action: str) -> list[dict[str, Any]]:
    """Every `action` note of `source`, in no particular order."""
    query = select(ActionLog.details).where(ActionLog.source == source, ActionLog.action == action)
    return list(session.scalars(query))

"""Stored performance reports."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from sigma.store.models import PerformanceReport
from sigma.store.queries.window import within


def reports(
    session: Session,
    *,
    kind: str | None = None,
    strategy: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Sequence[PerformanceReport]:
    """Reports, newest period first; `since`/`until` bound the end of their period."""
    query = select(PerformanceReport).order_by(
        PerformanceReport.period_end.desc(), PerformanceReport.id.desc()
    )
    if kind is not None:
        query = query.where(PerformanceReport.kind == kind)
    if strategy is not None:
        query = query.where(PerformanceReport.strategy == strategy)
    query = within(query, PerformanceReport.period_end, since, until)
    return session.scalars(query.limit(limit).offset(offset)).all()


def report(session: Session, report_id: int) -> PerformanceReport | None:
    """Report `report_id`, or None."""
    return session.get(PerformanceReport, report_id)

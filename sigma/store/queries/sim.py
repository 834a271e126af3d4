"""Simulation (paper) runs and their orders."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from sigma.store.models import SimOrder, SimRun
from sigma.store.queries.window import within


def runs(
    session: Session,
    *,
    strategy: str | None = None,
    symbol: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Sequence[SimRun]:
    """Runs, newest first; `since`/`until` bound their start."""
    query = select(SimRun).order_by(SimRun.started_at.desc(), SimRun.id.desc())
    if strategy is not None:
        query = query.where(SimRun.strategy == strategy)
    if symbol is not None:
        query = query.where(SimRun.symbol == symbol)
    query = within(query, SimRun.started_at, since, until).limit(limit).offset(offset)
    return session.scalars(query).all()


def run(session: Session, run_id: int) -> SimRun | None:
    """Run `run_id`, or None."""
    return session.get(SimRun, run_id)


def run_orders(session: Session, run_id: int, *, limit: int, offset: int) -> Sequence[SimOrder]:
    """The orders of run `run_id` in the order they were placed."""
    query = (
        select(SimOrder)
        .where(SimOrder.sim_run_id == run_id)
        .order_by(SimOrder.ts, SimOrder.id)
        .limit(limit)
        .offset(offset)
    )
    return session.scalars(query).all()

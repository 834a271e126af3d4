"""Helpers shared by the scheduler tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sigma.store.models import AlertLog


@dataclass
class FakeClock:
    """A clock that only moves when told to."""

    now: datetime = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def alerts(sessions: sessionmaker[Session]) -> list[AlertLog]:
    """Every recorded alert, oldest first."""
    with sessions() as session:
        return list(session.scalars(select(AlertLog).order_by(AlertLog.id)))

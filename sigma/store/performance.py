"""What the performance report reads (the ledger, the recorded regimes and market notes, the
simulation ratings of a period) and where it is kept (`performance_reports`). The figures
themselves are computed by `sigma.reports.performance`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from sigma.store.models import LedgerEntry, PerformanceReport, SimRun, TrendData


@dataclass(frozen=True, slots=True)
class ReportRow:
    """One stored row of a report: the account (no strategy, no mode) or one strategy in one
    mode, with its JSON figures."""

    strategy: str | None
    mode: str | None
    stats: dict[str, Any]


def ledger_entries(session: Session, start: datetime, end: datetime) -> Sequence[LedgerEntry]:
    """The ledger entries with `start <= ts < end`, in the order they were booked."""
    return session.scalars(
        select(LedgerEntry)
        .where(LedgerEntry.ts >= start, LedgerEntry.ts < end)
        .order_by(LedgerEntry.ts, LedgerEntry.id)
    ).all()


def regime_at(session: Session, symbol: str, ts: datetime) -> str | None:
    """The trend the scanner last recorded for `symbol` at or before `ts`, None before any."""
    return session.scalar(
        select(TrendData.trend)
        .where(TrendData.symbol == symbol, TrendData.ts <= ts)
        .order_by(TrendData.ts.desc())
        .limit(1)
    )


def newest_trend_data(session: Session, end: datetime) -> list[tuple[str, dict[str, Any]]]:
    """Per symbol, the data of the scanner's newest reading before `end`, by symbol."""
    newest = (
        select(TrendData.symbol, func.max(TrendData.ts).label("ts"))
        .where(TrendData.ts < end)
        .group_by(TrendData.symbol)
        .subquery()
    )
    rows = session.execute(
        select(TrendData.symbol, TrendData.data)
        .join(newest, (TrendData.symbol == newest.c.symbol) & (TrendData.ts == newest.c.ts))
        .order_by(TrendData.symbol, TrendData.id)
    )
    return [(symbol, data) for symbol, data in rows]


def sim_ratings(session: Session, start: datetime, end: datetime) -> Sequence[int | None]:
    """The rating of every simulation run started in [start, end) (None: not rated)."""
    return session.scalars(
        select(SimRun.rating).where(SimRun.started_at >= start, SimRun.started_at < end)
    ).all()


def replace_report(
    session: Session,
    kind: str,
    start: datetime,
    end: datetime,
    rows: Sequence[ReportRow],
    path: str | None,
) -> int:
    """Store `rows` as the `kind` report of [start, end), replacing any stored before for the
    same kind and period; returns the rows written."""
    session.execute(
        delete(PerformanceReport).where(
            PerformanceReport.kind == kind,
            PerformanceReport.period_start == start,
            PerformanceReport.period_end == end,
        )
    )
    session.add_all(
        PerformanceReport(
            kind=kind,
            strategy=row.strategy,
            mode=row.mode,
            period_start=start,
            period_end=end,
            stats=row.stats,
            path=path,
        )
        for row in rows
    )
    session.flush()
    return len(rows)

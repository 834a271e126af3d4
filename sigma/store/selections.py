"""What strategy selection (`sigma.research.select`) reads and keeps: where the window of
recent bars it selects on starts, and its ``selection`` reports in `performance_reports`, one
per symbol and bar window."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sigma.store.models import BarRecord, PerformanceReport

__all__ = ["lookback_start", "replace_selection"]

KIND = "selection"


def lookback_start(
    session: Session, symbol: str, timeframe: str, lookback: int, until: datetime
) -> datetime | None:
    """The time of the `lookback`-th newest bar of `symbol` before `until` (None when there
    are fewer bars)."""
    return session.scalar(
        select(BarRecord.ts)
        .where(BarRecord.symbol == symbol, BarRecord.timeframe == timeframe, BarRecord.ts < until)
        .order_by(BarRecord.ts.desc())
        .offset(lookback - 1)
        .limit(1)
    )


def replace_selection(
    session: Session,
    symbol: str,
    start: datetime,
    end: datetime,
    strategy: str | None,
    details: dict[str, Any],
) -> None:
    """Keep `details` as the selection report of `symbol` on the bars from `start` to `end`
    (`strategy`: the one selected, None when none was); an earlier report of that symbol and
    window is replaced."""
    # The symbol sits in the JSON stats, filtered here rather than with dialect-specific SQL:
    # a window holds one row per symbol.
    rows = session.scalars(
        select(PerformanceReport).where(
            PerformanceReport.kind == KIND,
            PerformanceReport.period_start == start,
            PerformanceReport.period_end == end,
        )
    )
    for row in rows:
        if row.stats.get("symbol") == symbol:
            session.delete(row)
    session.add(
        PerformanceReport(
            kind=KIND,
            strategy=strategy,
            period_start=start,
            period_end=end,
            stats={"symbol": symbol, **details},
        )
    )
    session.flush()

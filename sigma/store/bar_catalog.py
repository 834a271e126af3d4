"""What the `bars` table holds: one summary per symbol and bar size, the newest bar of a series
and a series' timestamps (for gap finding). Writing bars is :func:`sigma.store.bars.upsert_bars`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sigma.domain.money import utc
from sigma.store.models import BarRecord


@dataclass(frozen=True)
class StoredSeries:
    """The bars stored for one symbol and bar size: the first and last bar's time and how many
    there are."""

    symbol: str
    timeframe: str
    first: datetime
    last: datetime
    count: int


def stored_series(
    session: Session, symbol: str | None = None, timeframe: str | None = None
) -> list[StoredSeries]:
    """One :class:`StoredSeries` per (symbol, timeframe) in the `bars` table, sorted by both;
    ``symbol``/``timeframe`` narrow the answer. One aggregate query: the primary key index
    answers min/max/count without reading the prices."""
    query = select(
        BarRecord.symbol,
        BarRecord.timeframe,
        func.min(BarRecord.ts),
        func.max(BarRecord.ts),
        func.count(),
    ).group_by(BarRecord.symbol, BarRecord.timeframe)
    if symbol is not None:
        query = query.where(BarRecord.symbol == symbol)
    if timeframe is not None:
        query = query.where(BarRecord.timeframe == timeframe)
    rows = session.execute(query.order_by(BarRecord.symbol, BarRecord.timeframe)).all()
    # min()/max() bypass the column type on SQLite (naive text comes back), so re-attach UTC.
    return [
        StoredSeries(sym, tf, _aware(first), _aware(last), int(count))
        for sym, tf, first, last, count in rows
    ]


def _aware(value: datetime | str) -> datetime:
    stamp = datetime.fromisoformat(value) if isinstance(value, str) else value
    return utc(stamp)


def last_bar_time(session: Session, symbol: str, timeframe: str) -> datetime | None:
    """The time of the newest stored bar of a series, or None when nothing is stored."""
    found = stored_series(session, symbol, timeframe)
    return found[0].last if found else None


def bar_times(
    session: Session,
    symbol: str,
    timeframe: str,
    start: datetime | None = None,
    end: datetime | None = None,
) -> pd.DatetimeIndex:
    """The stored bar times of a series for ``start <= ts < end``, oldest first (UTC)."""
    query = select(BarRecord.ts).where(BarRecord.symbol == symbol, BarRecord.timeframe == timeframe)
    if start is not None:
        query = query.where(BarRecord.ts >= utc(start))
    if end is not None:
        query = query.where(BarRecord.ts < utc(end))
    stamps = session.scalars(query.order_by(BarRecord.ts)).all()
    return pd.DatetimeIndex(list(stamps), name="ts", tz="UTC").as_unit("ns")

"""`trend_data`: the regime and trend strength of a symbol at a bar, as the trend scanner
(`sigma.regime.trend`) read them, one row per (symbol, timeframe, bar)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from sigma.store.models import TrendData

__all__ = ["Trend", "put_trends"]


class Trend(NamedTuple):
    """One reading: `trend` is the regime's name, `data` its JSON explanation."""

    symbol: str
    ts: datetime
    trend: str
    strength: float
    data: dict[str, Any]


def put_trends(session: Session, trends: Sequence[Trend], timeframe: str) -> int:
    """Insert or update the row of each reading's (symbol, `timeframe`, bar); returns the rows
    written."""
    for trend in trends:
        row = session.scalar(
            select(TrendData).where(
                TrendData.symbol == trend.symbol,
                TrendData.timeframe == timeframe,
                TrendData.ts == trend.ts,
            )
        )
        if row is None:
            row = TrendData(symbol=trend.symbol, timeframe=timeframe, ts=trend.ts)
            session.add(row)
        row.trend = trend.trend
        row.strength = trend.strength
        row.data = trend.data
    session.flush()
    return len(trends)

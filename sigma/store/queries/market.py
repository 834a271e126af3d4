"""Stored bars, trend readings and the fills to mark on a chart."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sigma.store.models import BarRecord, FillRecord, OrderRecord, TrendData
from sigma.store.queries.window import within


def latest_bars(
    session: Session,
    symbol: str,
    timeframe: str,
    limit: int,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[BarRecord]:
    """The latest `limit` stored bars of `symbol` in [`since`, `until`), oldest first."""
    query = within(
        select(BarRecord).where(BarRecord.symbol == symbol, BarRecord.timeframe == timeframe),
        BarRecord.ts,
        since,
        until,
    )
    rows = session.scalars(query.order_by(BarRecord.ts.desc()).limit(limit)).all()
    return list(reversed(rows))


def trends(
    session: Session,
    symbol: str,
    *,
    timeframe: str | None = None,
    since: datetime | None = None,
    limit: int = 500,
) -> Sequence[TrendData]:
    """The readings of one symbol, newest first."""
    query = select(TrendData).where(TrendData.symbol == symbol)
    if timeframe is not None:
        query = query.where(TrendData.timeframe == timeframe)
    query = (
        within(query, TrendData.ts, since, None)
        .order_by(TrendData.ts.desc(), TrendData.id.desc())
        .limit(limit)
    )
    return session.scalars(query).all()


def latest_trends(session: Session, timeframe: str | None = None) -> Sequence[TrendData]:
    """The newest reading of every symbol (per timeframe), in no particular order."""
    newest = select(
        TrendData.symbol, TrendData.timeframe, func.max(TrendData.ts).label("ts")
    ).group_by(TrendData.symbol, TrendData.timeframe)
    if timeframe is not None:
        newest = newest.where(TrendData.timeframe == timeframe)
    latest = newest.subquery()
    return session.scalars(
        select(TrendData).join(
            latest,
            (TrendData.symbol == latest.c.symbol)
            & (TrendData.timeframe == latest.c.timeframe)
            & (TrendData.ts == latest.c.ts),
        )
    ).all()


def fill_marks(
    session: Session,
    symbol: str,
    mode: str,
    since: datetime,
    limit: int,
    strategy: str | None = None,
) -> list[tuple[FillRecord, str, str]]:
    """The newest `limit` fills of `symbol` in `mode` from `since` on (of `strategy` only when
    given), oldest first, each with its order's side and strategy."""
    query = (
        select(FillRecord, OrderRecord.side, OrderRecord.strategy)
        .join(OrderRecord, FillRecord.client_order_id == OrderRecord.client_order_id)
        .where(OrderRecord.symbol == symbol, OrderRecord.mode == mode, FillRecord.ts >= since)
        .order_by(FillRecord.ts.desc(), FillRecord.id.desc())
        .limit(limit)
    )
    if strategy:
        query = query.where(OrderRecord.strategy == strategy)
    return [(fill, side, owner) for fill, side, owner in session.execute(query)][::-1]

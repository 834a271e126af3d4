"""Market data for charts: stored bars (candles) and the trend/regime readings per symbol."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from sigma.api.context import Db, Instant, Viewer
from sigma.api.numbers import ASCII_DIGITS
from sigma.api.serialize import dec
from sigma.api.ws import Hub
from sigma.store.models import BarRecord, TrendData
from sigma.store.queries import market

router = APIRouter(prefix="/api", tags=["market"])


class BarOut(BaseModel):
    """One OHLCV bar."""

    ts: datetime
    open: str
    high: str
    low: str
    close: str
    volume: str


class TrendOut(BaseModel):
    """A regime/trend reading of a symbol at a bar, with the CommentaryModule's note on it
    (null for readings stored without one)."""

    symbol: str
    timeframe: str
    ts: datetime
    trend: str
    strength: float | None
    commentary: str | None
    data: dict[str, Any]


def bar_out(bar: BarRecord) -> BarOut:
    """A stored bar as sent."""
    return BarOut(
        ts=bar.ts,
        open=dec(bar.open),
        high=dec(bar.high),
        low=dec(bar.low),
        close=dec(bar.close),
        volume=dec(bar.volume),
    )


@router.get("/bars", response_model=list[BarOut])
def bars(
    session: Db,
    _: Viewer,
    symbol: str,
    timeframe: str = "1m",
    since: Instant | None = None,
    until: Instant | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000), ASCII_DIGITS] = 500,
) -> list[BarOut]:
    """The latest `limit` stored bars of `symbol` in the window, oldest first (chart order)."""
    return [bar_out(b) for b in market.latest_bars(session, symbol, timeframe, limit, since, until)]


def _trend(row: TrendData) -> TrendOut:
    note = row.data.get("commentary")
    return TrendOut(
        symbol=row.symbol,
        timeframe=row.timeframe,
        ts=row.ts,
        trend=row.trend,
        strength=row.strength,
        commentary=note if isinstance(note, str) else None,
        data=dict(row.data),
    )


@router.get("/trends", response_model=list[TrendOut])
def trends(
    session: Db,
    _: Viewer,
    symbol: str,
    timeframe: str | None = None,
    since: Instant | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000), ASCII_DIGITS] = 500,
) -> list[TrendOut]:
    """The readings of one symbol, newest first (regime history)."""
    found = market.trends(session, symbol, timeframe=timeframe, since=since, limit=limit)
    return [_trend(r) for r in found]


@router.get("/trends/latest", response_model=list[TrendOut])
def latest_trends(session: Db, _: Viewer, timeframe: str | None = None) -> list[TrendOut]:
    """The newest reading of every symbol (per timeframe), strongest trend first."""
    return sorted(
        (_trend(r) for r in market.latest_trends(session, timeframe)),
        key=lambda t: (-abs(t.strength or 0.0), t.symbol, t.timeframe),
    )


@router.get("/prices")
async def prices(request: Request, _: Viewer) -> list[dict[str, Any]]:
    """The latest `price_update` message of every symbol seen on the bus since the API
    started, by symbol (async: the relay updates them on the event loop)."""
    hub: Hub = request.app.state.hub
    return [hub.last_prices[symbol] for symbol in sorted(hub.last_prices)]

"""A trading chart of one symbol: its stored bars, a strategy's indicator lines over them
(computed by the strategy from its active parameters) and the fills to mark on it."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Query
from pydantic import BaseModel

from sigma.api.context import Ctx, Db, Viewer
from sigma.api.errors import error_responses
from sigma.api.numbers import ASCII_DIGITS
from sigma.api.routers.market import BarOut, bar_out
from sigma.api.routers.strategies import strategy_class
from sigma.api.serialize import dec
from sigma.engine.chart import indicator_lines
from sigma.store.bars import COLUMNS
from sigma.store.jsonsafe import to_jsonable
from sigma.store.models import BarRecord
from sigma.store.params import get_active_params
from sigma.store.queries import market
from sigma.strategies import Strategy

router = APIRouter(prefix="/api", tags=["market"])
MAX_WARMUP = 2000
"""Bars read before the first shown one so the indicators are warm there (at most)."""
MAX_MARKERS = 1000


class LineOut(BaseModel):
    """An indicator line, one value per bar (null while it warms up)."""

    name: str
    values: list[float | None]


class MarkerOut(BaseModel):
    """A fill to mark on the chart."""

    ts: datetime
    side: str
    qty: str
    price: str
    strategy: str
    client_order_id: str


class ChartOut(BaseModel):
    """Bars oldest first, the strategy's lines aligned with them, and the fills since the
    first bar."""

    symbol: str
    timeframe: str
    strategy: str | None
    params: dict[str, Any]
    bars: list[BarOut]
    lines: list[LineOut]
    markers: list[MarkerOut]


def _strategy(ctx: Ctx, session: Db, name: str, symbol: str) -> Strategy:
    """`name` with its active parameters on `symbol` (its defaults when those no longer
    fit the strategy)."""
    cls = strategy_class(ctx.deps.strategies, name)
    try:
        return cls(**(get_active_params(session, name, symbol) or {}))
    except ValueError:
        return cls()


def _warmup(strategy: Strategy) -> int:
    # The longest look-back a strategy has is one of its whole-number parameters (periods).
    periods = [
        v for v in strategy.params.values() if isinstance(v, int) and not isinstance(v, bool)
    ]
    return min(max(periods, default=0), MAX_WARMUP)


def _frame(rows: list[BarRecord]) -> pd.DataFrame:
    index = pd.DatetimeIndex([r.ts for r in rows], name="ts")
    values = [[float(getattr(r, c)) for c in COLUMNS] for r in rows]
    return pd.DataFrame(values, index=index, columns=list(COLUMNS), dtype="float64")


def _value(v: float) -> float | None:
    return v if math.isfinite(v) else None


@router.get("/chart", response_model=ChartOut, responses=error_responses(404))
def chart(
    ctx: Ctx,
    session: Db,
    _: Viewer,
    symbol: str,
    timeframe: str = "1m",
    strategy: str | None = None,
    mode: Literal["live", "paper"] | None = None,
    limit: Annotated[int, Query(ge=1, le=5000), ASCII_DIGITS] = 300,
) -> ChartOut:
    """The latest `limit` stored bars of `symbol`, `strategy`'s indicator lines over them and
    its fills on `symbol` in `mode` (the traded mode by default); without `strategy`, no lines
    and every strategy's fills."""
    chosen = _strategy(ctx, session, strategy, symbol) if strategy else None
    extra = _warmup(chosen) if chosen else 0
    rows = market.latest_bars(session, symbol, timeframe, limit + extra)
    shown = rows[-limit:]
    lines: list[LineOut] = []
    if chosen is not None and rows:
        lines = [
            LineOut(name=name, values=[_value(v) for v in values[-len(shown) :].tolist()])
            for name, values in indicator_lines(chosen, symbol, _frame(rows))
        ]
    markers: list[MarkerOut] = []
    if shown:
        marks = market.fill_marks(
            session,
            symbol,
            mode or ctx.deps.settings.trading.mode,
            shown[0].ts,
            MAX_MARKERS,
            strategy,
        )
        markers = [
            MarkerOut(
                ts=fill.ts,
                side=side,
                qty=dec(fill.qty),
                price=dec(fill.price),
                strategy=owner,
                client_order_id=fill.client_order_id,
            )
            for fill, side, owner in marks
        ]
    return ChartOut(
        symbol=symbol,
        timeframe=timeframe,
        strategy=strategy,
        params=to_jsonable(chosen.params) if chosen else {},
        bars=[bar_out(b) for b in shown],
        lines=lines,
        markers=markers,
    )

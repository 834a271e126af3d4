"""Orders, fills, positions, the settlement ledger and realised PnL (read-only).

These are the routes a dashboard polls, so they take the short path: the query service
(`sigma.store.queries.trading`, through the async `Reader`) gives plain dicts with exactly
the response model's fields, rendered by orjson (`JsonBytes`) without validating them again.
`GroupBy`, `Totals` and `ledger_totals` are re-exported for callers that know them from here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from sigma.api.context import Ctx, Instant, Viewer
from sigma.api.numbers import ASCII_DIGITS
from sigma.api.serialize import JsonBytes, dec
from sigma.store.queries import trading
from sigma.store.queries.trading import GroupBy as GroupBy
from sigma.store.queries.trading import Totals as Totals
from sigma.store.queries.trading import ledger_totals

router = APIRouter(prefix="/api", tags=["trading"])
Mode = Literal["live", "paper"]
OrderStatus = Literal["new", "partially_filled", "filled", "cancelled", "rejected"]
Limit = Annotated[int, Query(ge=1, le=1000), ASCII_DIGITS]
# Bounded: a database integer (SQLite, PostgreSQL bigint) cannot take an arbitrary one.
Offset = Annotated[int, Query(ge=0, le=1_000_000_000), ASCII_DIGITS]


class OrderOut(BaseModel):
    """An order and how much of it filled."""

    id: int
    client_order_id: str
    exchange_order_id: str | None
    mode: str
    symbol: str
    strategy: str
    side: str
    type: str
    qty: str
    limit_price: str | None
    stop_price: str | None
    status: str
    filled_qty: str
    avg_fill_price: str | None
    created_at: datetime
    """When the order was recorded (wall clock, UTC); lists are newest first by it."""
    decided_at: datetime | None
    """The market time of the bar the strategy decided on (UTC; None for older rows)."""
    updated_at: datetime


class FillOut(BaseModel):
    """One execution, with its order's identity."""

    id: int
    client_order_id: str
    symbol: str
    strategy: str
    mode: str
    side: str
    qty: str
    price: str
    fee: str
    ts: datetime


class PositionOut(BaseModel):
    """Net holding per symbol, strategy and mode."""

    symbol: str
    strategy: str
    mode: str
    qty: str
    avg_price: str
    realized_pnl: str
    updated_at: datetime


class LedgerSummary(BaseModel):
    """Totals of one mode's ledger."""

    cash: str
    fees: str
    realized_pnl: str
    entries: int


class PnlRow(BaseModel):
    """Realised PnL and fees of one group."""

    key: str
    realized_pnl: str
    fees: str
    entries: int


@router.get("/orders", response_model=list[OrderOut])
async def orders(
    ctx: Ctx,
    _: Viewer,
    status: OrderStatus | None = None,
    symbol: str | None = None,
    strategy: str | None = None,
    mode: Mode | None = None,
    since: Instant | None = None,
    until: Instant | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> JsonBytes:
    """Orders, newest first, filtered by any of the query fields."""
    return JsonBytes(
        await trading.orders(
            ctx.reader,
            status=status,
            symbol=symbol,
            strategy=strategy,
            mode=mode,
            since=since,
            until=until,
            limit=limit,
            offset=offset,
        )
    )


@router.get("/fills", response_model=list[FillOut])
async def fills(
    ctx: Ctx,
    _: Viewer,
    symbol: str | None = None,
    strategy: str | None = None,
    mode: Mode | None = None,
    since: Instant | None = None,
    until: Instant | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> JsonBytes:
    """Fills, newest first."""
    return JsonBytes(
        await trading.fills(
            ctx.reader,
            symbol=symbol,
            strategy=strategy,
            mode=mode,
            since=since,
            until=until,
            limit=limit,
            offset=offset,
        )
    )


@router.get("/positions", response_model=list[PositionOut])
async def positions(ctx: Ctx, _: Viewer, mode: Mode | None = None) -> JsonBytes:
    """Positions by symbol and strategy."""
    return JsonBytes(await trading.positions(ctx.reader, mode))


@router.get("/ledger/summary", response_model=dict[str, LedgerSummary])
async def ledger_summary(ctx: Ctx, _: Viewer) -> JsonBytes:
    """Per mode: net cash movement, fees, realised PnL and the number of entries."""
    totals = await ledger_totals(ctx.reader, "mode")
    return JsonBytes(
        {
            mode: {"cash": dec(cash), "fees": dec(fee), "realized_pnl": dec(pnl), "entries": n}
            for mode, (cash, fee, pnl, n) in sorted(totals.items())
        }
    )


@router.get("/pnl", response_model=list[PnlRow])
async def pnl(
    ctx: Ctx,
    _: Viewer,
    by: Literal["day", "strategy", "symbol"] = "day",
    mode: Mode | None = None,
    since: Instant | None = None,
    until: Instant | None = None,
) -> JsonBytes:
    """Realised PnL and fees from the ledger, grouped by UTC day, strategy or symbol."""
    totals = await ledger_totals(ctx.reader, by, mode, since, until)
    return JsonBytes(
        [
            {"key": key, "realized_pnl": dec(pnl), "fees": dec(fee), "entries": n}
            for key, (_cash, fee, pnl, n) in sorted(totals.items())
        ]
    )

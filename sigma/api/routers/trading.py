"""Orders, fills, positions, the settlement ledger and realised PnL (read-only)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import Select, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from sigma.api.context import Db, Viewer
from sigma.api.serialize import dec, opt_dec
from sigma.store.models import FillRecord, LedgerEntry, OrderRecord, PositionRecord

router = APIRouter(prefix="/api", tags=["trading"])
Mode = Literal["live", "paper"]
OrderStatus = Literal["new", "partially_filled", "filled", "cancelled", "rejected"]
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0)]


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


def _filtered(
    query: Select[Any],
    equal: list[tuple[InstrumentedAttribute[Any], object]],
    ts: InstrumentedAttribute[Any],
    since: datetime | None,
    until: datetime | None,
) -> Select[Any]:
    """`query` narrowed to the given column values (None: any) and to since <= ts < until."""
    for column, value in equal:
        if value is not None:
            query = query.where(column == value)
    if since is not None:
        query = query.where(ts >= since)
    if until is not None:
        query = query.where(ts < until)
    return query


@router.get("/orders", response_model=list[OrderOut])
def orders(
    session: Db,
    _: Viewer,
    status: OrderStatus | None = None,
    symbol: str | None = None,
    strategy: str | None = None,
    mode: Mode | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[OrderOut]:
    """Orders, newest first, filtered by any of the query fields."""
    # Plain rows, not ORM objects: a read-only listing does not need identity tracking, and
    # skipping it roughly halves the time per row.
    query = select(OrderRecord.__table__).order_by(
        OrderRecord.created_at.desc(), OrderRecord.id.desc()
    )
    query = _filtered(
        query,
        [
            (OrderRecord.status, status),
            (OrderRecord.symbol, symbol),
            (OrderRecord.strategy, strategy),
            (OrderRecord.mode, mode),
        ],
        OrderRecord.created_at,
        since,
        until,
    )
    return [
        OrderOut(
            id=o.id,
            client_order_id=o.client_order_id,
            exchange_order_id=o.exchange_order_id,
            mode=o.mode,
            symbol=o.symbol,
            strategy=o.strategy,
            side=o.side,
            type=o.type,
            qty=dec(o.qty),
            limit_price=opt_dec(o.limit_price),
            stop_price=opt_dec(o.stop_price),
            status=o.status,
            filled_qty=dec(o.filled_qty),
            avg_fill_price=opt_dec(o.avg_fill_price),
            created_at=o.created_at,
            updated_at=o.updated_at,
        )
        for o in session.execute(query.limit(limit).offset(offset))
    ]


@router.get("/fills", response_model=list[FillOut])
def fills(
    session: Db,
    _: Viewer,
    symbol: str | None = None,
    strategy: str | None = None,
    mode: Mode | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[FillOut]:
    """Fills, newest first."""
    query = (
        select(
            FillRecord.__table__,
            OrderRecord.symbol,
            OrderRecord.strategy,
            OrderRecord.mode,
            OrderRecord.side,
        )
        .join(OrderRecord, FillRecord.client_order_id == OrderRecord.client_order_id)
        .order_by(FillRecord.ts.desc(), FillRecord.id.desc())
    )
    query = _filtered(
        query,
        [
            (OrderRecord.symbol, symbol),
            (OrderRecord.strategy, strategy),
            (OrderRecord.mode, mode),
        ],
        FillRecord.ts,
        since,
        until,
    )
    return [
        FillOut(
            id=f.id,
            client_order_id=f.client_order_id,
            symbol=f.symbol,
            strategy=f.strategy,
            mode=f.mode,
            side=f.side,
            qty=dec(f.qty),
            price=dec(f.price),
            fee=dec(f.fee),
            ts=f.ts,
        )
        for f in session.execute(query.limit(limit).offset(offset))
    ]


@router.get("/positions", response_model=list[PositionOut])
def positions(session: Db, _: Viewer, mode: Mode | None = None) -> list[PositionOut]:
    """Positions by symbol and strategy."""
    query = select(PositionRecord).order_by(PositionRecord.symbol, PositionRecord.strategy)
    if mode is not None:
        query = query.where(PositionRecord.mode == mode)
    return [
        PositionOut(
            symbol=p.symbol,
            strategy=p.strategy,
            mode=p.mode,
            qty=dec(p.qty),
            avg_price=dec(p.avg_price),
            realized_pnl=dec(p.realized_pnl),
            updated_at=p.updated_at,
        )
        for p in session.scalars(query)
    ]


Totals = tuple[Decimal, Decimal, Decimal, int]
"""cash moved, fees, realised PnL, number of entries."""
GroupBy = Literal["mode", "day", "strategy", "symbol"]


def _window(
    query: Select[Any], mode: Mode | None, since: datetime | None, until: datetime | None
) -> Select[Any]:
    return _filtered(query, [(LedgerEntry.mode, mode)], LedgerEntry.ts, since, until)


def _ledger_totals(
    session: Session,
    by: GroupBy,
    mode: Mode | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, Totals]:
    """Ledger totals per group (day = UTC date)."""
    if session.get_bind().dialect.name == "postgresql":
        # NUMERIC sums are exact: let the database do the work (the ledger grows without end).
        key = {
            "mode": LedgerEntry.mode,
            "day": func.to_char(func.timezone("UTC", LedgerEntry.ts), "YYYY-MM-DD"),
            "strategy": LedgerEntry.strategy,
            "symbol": func.coalesce(LedgerEntry.symbol, ""),
        }[by]
        query = select(
            key,
            func.sum(LedgerEntry.cash_delta),
            func.sum(LedgerEntry.fee),
            func.sum(LedgerEntry.realized_pnl),
            func.count(),
        ).group_by(key)
        rows = session.execute(_window(query, mode, since, until))
        return {str(k): (cash, fee, pnl, n) for k, cash, fee, pnl, n in rows}
    # SQLite stores the amounts as text and its SUM would be a float: add them up exactly here.
    totals: dict[str, Totals] = {}
    for entry in session.scalars(_window(select(LedgerEntry), mode, since, until)):
        if by == "day":
            group = entry.ts.date().isoformat()
        elif by == "symbol":
            group = entry.symbol or ""
        else:
            group = entry.mode if by == "mode" else entry.strategy
        cash, fee, pnl, n = totals.get(group, (Decimal(0), Decimal(0), Decimal(0), 0))
        totals[group] = (
            cash + entry.cash_delta,
            fee + entry.fee,
            pnl + entry.realized_pnl,
            n + 1,
        )
    return totals


@router.get("/ledger/summary", response_model=dict[str, LedgerSummary])
def ledger_summary(session: Db, _: Viewer) -> dict[str, LedgerSummary]:
    """Per mode: net cash movement, fees, realised PnL and the number of entries."""
    return {
        mode: LedgerSummary(cash=dec(cash), fees=dec(fee), realized_pnl=dec(pnl), entries=n)
        for mode, (cash, fee, pnl, n) in sorted(_ledger_totals(session, "mode").items())
    }


@router.get("/pnl", response_model=list[PnlRow])
def pnl(
    session: Db,
    _: Viewer,
    by: Literal["day", "strategy", "symbol"] = "day",
    mode: Mode | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[PnlRow]:
    """Realised PnL and fees from the ledger, grouped by UTC day, strategy or symbol."""
    totals = _ledger_totals(session, by, mode, since, until)
    return [
        PnlRow(key=key, realized_pnl=dec(pnl), fees=dec(fee), entries=n)
        for key, (_cash, fee, pnl, n) in sorted(totals.items())
    ]

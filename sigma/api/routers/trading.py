"""Orders, fills, positions, the settlement ledger and realised PnL (read-only).

These are the routes a dashboard polls, so they take the short path: Core queries through the
async `Reader` (no ORM objects, no thread pool on PostgreSQL), rows built as plain dicts with
exactly the response model's fields and rendered by orjson (`JsonBytes`). Ledger totals on
PostgreSQL come from `ledger_daily` for whole UTC days and from the ledger itself only for the
partial days at the ends of a `since`/`until` window.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import (
    Date,
    Executable,
    Integer,
    Select,
    String,
    bindparam,
    cast,
    func,
    select,
)
from sqlalchemy.orm import InstrumentedAttribute

from sigma.api.context import Ctx, Viewer
from sigma.api.reader import Reader
from sigma.api.serialize import JsonBytes, dec, dec_text
from sigma.domain.money import utc
from sigma.store.models import FillRecord, LedgerDaily, LedgerEntry, OrderRecord, PositionRecord

router = APIRouter(prefix="/api", tags=["trading"])
Mode = Literal["live", "paper"]
OrderStatus = Literal["new", "partially_filled", "filled", "cancelled", "rejected"]
Limit = Annotated[int, Query(ge=1, le=1000)]
# Bounded: a database integer (SQLite, PostgreSQL bigint) cannot take an arbitrary one.
Offset = Annotated[int, Query(ge=0, le=1_000_000_000)]


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


SelectT = TypeVar("SelectT", bound=Select[*tuple[Any, ...]])


class _Prepared:
    """One statement per combination of filters, built at its first use and kept, so the
    `Reader` compiles each once. `build(present)` gets the names of the filters in use."""

    def __init__(self, build: Callable[[frozenset[str]], Executable]) -> None:
        self._build = build
        self._made: dict[frozenset[str], Executable] = {}

    def __call__(self, params: dict[str, Any]) -> Executable:
        present = frozenset(params)
        statement = self._made.get(present)
        if statement is None:
            statement = self._made[present] = self._build(present)
        return statement


def _text(column: InstrumentedAttribute[Decimal] | InstrumentedAttribute[Decimal | None]) -> Any:
    """An amount column as the database's own fixed-point text (`dec_text` trims it): no
    Decimal is made per value. Both databases write it exactly (PostgreSQL's NUMERIC output,
    SQLite's stored text), never in exponent notation."""
    return cast(column, String).label(column.key)


# Rows are unpacked by position below: attribute access on a Row costs about a microsecond a
# field, and on PostgreSQL the `Reader` returns plain tuples anyway.
_ORDERS_BASE = select(
    OrderRecord.id,
    OrderRecord.client_order_id,
    OrderRecord.exchange_order_id,
    OrderRecord.mode,
    OrderRecord.symbol,
    OrderRecord.strategy,
    OrderRecord.side,
    OrderRecord.type,
    _text(OrderRecord.qty),
    _text(OrderRecord.limit_price),
    _text(OrderRecord.stop_price),
    OrderRecord.status,
    _text(OrderRecord.filled_qty),
    _text(OrderRecord.avg_fill_price),
    OrderRecord.created_at,
    OrderRecord.updated_at,
).order_by(OrderRecord.created_at.desc(), OrderRecord.id.desc())
_ORDER_FILTERS = [OrderRecord.status, OrderRecord.symbol, OrderRecord.strategy, OrderRecord.mode]


def _page(query: Select[*tuple[Any, ...]]) -> Select[*tuple[Any, ...]]:
    return query.limit(bindparam("limit", type_=Integer)).offset(bindparam("offset", type_=Integer))


def _orders_query(present: frozenset[str]) -> Executable:
    query = _ORDERS_BASE
    for column in _ORDER_FILTERS:
        if column.key in present:
            query = query.where(column == bindparam(column.key))
    return _page(_window_of(query, OrderRecord.created_at, present))


def _window_of(query: SelectT, ts: InstrumentedAttribute[Any], present: frozenset[str]) -> SelectT:
    if "since" in present:
        query = query.where(ts >= bindparam("since"))
    if "until" in present:
        query = query.where(ts < bindparam("until"))
    return query


_ORDERS = _Prepared(_orders_query)


def _given(**values: object) -> dict[str, Any]:
    """The filter values that were given (not None)."""
    return {k: v for k, v in values.items() if v is not None}


@router.get("/orders", response_model=list[OrderOut])
async def orders(
    ctx: Ctx,
    _: Viewer,
    status: OrderStatus | None = None,
    symbol: str | None = None,
    strategy: str | None = None,
    mode: Mode | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> JsonBytes:
    """Orders, newest first, filtered by any of the query fields."""
    params = _given(
        status=status, symbol=symbol, strategy=strategy, mode=mode, since=since, until=until
    )
    rows = await ctx.reader.rows(_ORDERS(params), {**params, "limit": limit, "offset": offset})
    return JsonBytes(
        [
            {
                "id": id_,
                "client_order_id": coid,
                "exchange_order_id": exchange_id,
                "mode": mode_,
                "symbol": symbol_,
                "strategy": strategy_,
                "side": side,
                "type": type_,
                "qty": dec_text(qty),
                "limit_price": dec_text(limit_price),
                "stop_price": dec_text(stop_price),
                "status": status_,
                "filled_qty": dec_text(filled_qty),
                "avg_fill_price": dec_text(avg_fill_price),
                "created_at": created_at,
                "updated_at": updated_at,
            }
            for (
                id_,
                coid,
                exchange_id,
                mode_,
                symbol_,
                strategy_,
                side,
                type_,
                qty,
                limit_price,
                stop_price,
                status_,
                filled_qty,
                avg_fill_price,
                created_at,
                updated_at,
            ) in rows
        ]
    )


_FILLS_BASE = (
    select(
        FillRecord.id,
        FillRecord.client_order_id,
        _text(FillRecord.qty),
        _text(FillRecord.price),
        _text(FillRecord.fee),
        FillRecord.ts,
        OrderRecord.symbol,
        OrderRecord.strategy,
        OrderRecord.mode,
        OrderRecord.side,
    )
    .join(OrderRecord, FillRecord.client_order_id == OrderRecord.client_order_id)
    .order_by(FillRecord.ts.desc(), FillRecord.id.desc())
)
_FILL_FILTERS = [OrderRecord.symbol, OrderRecord.strategy, OrderRecord.mode]


def _fills_query(present: frozenset[str]) -> Executable:
    query = _FILLS_BASE
    for column in _FILL_FILTERS:
        if column.key in present:
            query = query.where(column == bindparam(column.key))
    return _page(_window_of(query, FillRecord.ts, present))


_FILLS = _Prepared(_fills_query)


@router.get("/fills", response_model=list[FillOut])
async def fills(
    ctx: Ctx,
    _: Viewer,
    symbol: str | None = None,
    strategy: str | None = None,
    mode: Mode | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> JsonBytes:
    """Fills, newest first."""
    params = _given(symbol=symbol, strategy=strategy, mode=mode, since=since, until=until)
    rows = await ctx.reader.rows(_FILLS(params), {**params, "limit": limit, "offset": offset})
    return JsonBytes(
        [
            {
                "id": id_,
                "client_order_id": coid,
                "symbol": symbol_,
                "strategy": strategy_,
                "mode": mode_,
                "side": side,
                "qty": dec_text(qty),
                "price": dec_text(price),
                "fee": dec_text(fee),
                "ts": ts,
            }
            for id_, coid, qty, price, fee, ts, symbol_, strategy_, mode_, side in rows
        ]
    )


_POSITIONS_BASE = select(
    PositionRecord.symbol,
    PositionRecord.strategy,
    PositionRecord.mode,
    _text(PositionRecord.qty),
    _text(PositionRecord.avg_price),
    _text(PositionRecord.realized_pnl),
    PositionRecord.updated_at,
).order_by(PositionRecord.symbol, PositionRecord.strategy, PositionRecord.mode)
_POSITIONS = _Prepared(
    lambda present: (
        _POSITIONS_BASE.where(PositionRecord.mode == bindparam("mode"))
        if "mode" in present
        else _POSITIONS_BASE
    )
)


@router.get("/positions", response_model=list[PositionOut])
async def positions(ctx: Ctx, _: Viewer, mode: Mode | None = None) -> JsonBytes:
    """Positions by symbol and strategy."""
    params = _given(mode=mode)
    return JsonBytes(
        [
            {
                "symbol": symbol,
                "strategy": strategy,
                "mode": mode_,
                "qty": dec_text(qty),
                "avg_price": dec_text(avg_price),
                "realized_pnl": dec_text(realized_pnl),
                "updated_at": updated_at,
            }
            for symbol, strategy, mode_, qty, avg_price, realized_pnl, updated_at in (
                await ctx.reader.rows(_POSITIONS(params), params)
            )
        ]
    )


Totals = tuple[Decimal, Decimal, Decimal, int]
"""cash moved, fees, realised PnL, number of entries."""
GroupBy = Literal["mode", "day", "strategy", "symbol"]
_ZERO: Totals = (Decimal(0), Decimal(0), Decimal(0), 0)


def _add(totals: dict[str, Totals], key: str, more: Totals) -> None:
    cash, fee, pnl, n = totals.get(key, _ZERO)
    totals[key] = (cash + more[0], fee + more[1], pnl + more[2], n + more[3])


def _group(value: object) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)


def _midnight(ts: datetime) -> datetime:
    """The UTC midnight at or before `ts` (aware UTC)."""
    return ts.replace(hour=0, minute=0, second=0, microsecond=0)


def _entries_sql_query(by: GroupBy, present: frozenset[str]) -> Executable:
    key = {
        "mode": LedgerEntry.mode,
        "day": cast(func.timezone("UTC", LedgerEntry.ts), Date),
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
    if "mode" in present:
        query = query.where(LedgerEntry.mode == bindparam("mode"))
    return _window_of(query, LedgerEntry.ts, present)


def _days_sql_query(by: GroupBy, present: frozenset[str]) -> Executable:
    key = {
        "mode": LedgerDaily.mode,
        "day": LedgerDaily.day,
        "strategy": LedgerDaily.strategy,
        "symbol": LedgerDaily.symbol,
    }[by]
    query = select(
        key,
        func.sum(LedgerDaily.cash),
        func.sum(LedgerDaily.fees),
        func.sum(LedgerDaily.realized_pnl),
        func.sum(LedgerDaily.entries),
    ).group_by(key)
    if "mode" in present:
        query = query.where(LedgerDaily.mode == bindparam("mode"))
    if "first" in present:
        query = query.where(LedgerDaily.day >= bindparam("first", type_=Date))
    if "end" in present:
        query = query.where(LedgerDaily.day < bindparam("end", type_=Date))
    return query


def _entries_python_query(present: frozenset[str]) -> Executable:
    query = select(
        LedgerEntry.ts,
        LedgerEntry.mode,
        LedgerEntry.strategy,
        LedgerEntry.symbol,
        LedgerEntry.cash_delta,
        LedgerEntry.fee,
        LedgerEntry.realized_pnl,
    )
    if "mode" in present:
        query = query.where(LedgerEntry.mode == bindparam("mode"))
    return _window_of(query, LedgerEntry.ts, present)


_BY: tuple[GroupBy, ...] = ("mode", "day", "strategy", "symbol")
_ENTRIES_SQL = {by: _Prepared(partial(_entries_sql_query, by)) for by in _BY}
_DAYS_SQL = {by: _Prepared(partial(_days_sql_query, by)) for by in _BY}
_ENTRIES_PYTHON = _Prepared(_entries_python_query)


async def _entries_sql(
    reader: Reader,
    totals: dict[str, Totals],
    by: GroupBy,
    mode: Mode | None,
    since: datetime | None,
    until: datetime | None,
) -> None:
    """Add the ledger entries with since <= ts < until, summed by PostgreSQL (exact NUMERIC)."""
    params = _given(mode=mode, since=since, until=until)
    for group, cash, fee, pnl, n in await reader.rows(_ENTRIES_SQL[by](params), params):
        _add(totals, _group(group), (cash, fee, pnl, n))


async def _days_sql(
    reader: Reader,
    totals: dict[str, Totals],
    by: GroupBy,
    mode: Mode | None,
    first: date | None,
    end: date | None,
) -> None:
    """Add the whole UTC days first <= day < end from `ledger_daily`."""
    params = _given(mode=mode, first=first, end=end)
    for group, cash, fee, pnl, n in await reader.rows(_DAYS_SQL[by](params), params):
        _add(totals, _group(group), (cash, fee, pnl, int(n)))


async def _entries_python(
    reader: Reader,
    totals: dict[str, Totals],
    by: GroupBy,
    mode: Mode | None,
    since: datetime | None,
    until: datetime | None,
) -> None:
    """Add the entries summed here: SQLite stores the amounts as text and its SUM would be a
    float."""
    params = _given(mode=mode, since=since, until=until)
    for ts, mode_, strategy, symbol, cash, fee, pnl in await reader.rows(
        _ENTRIES_PYTHON(params), params
    ):
        if by == "day":
            group = ts.date().isoformat()
        elif by == "symbol":
            group = symbol or ""
        else:
            group = mode_ if by == "mode" else strategy
        _add(totals, group, (cash, fee, pnl, 1))


async def ledger_totals(
    reader: Reader,
    by: GroupBy,
    mode: Mode | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, Totals]:
    """Ledger totals per group (day = UTC date) of the entries with since <= ts < until."""
    totals: dict[str, Totals] = {}
    if not reader.is_async:
        await _entries_python(reader, totals, by, mode, since, until)
        return totals
    lo = None if since is None else utc(since)
    hi = None if until is None else utc(until)
    # Whole days [first, end) from the daily sums; the partial days around them entry by entry.
    first = None if lo is None else _midnight(lo + timedelta(days=1) - timedelta.resolution)
    end = None if hi is None else _midnight(hi)
    if first is not None and end is not None and first >= end:
        await _entries_sql(reader, totals, by, mode, lo, hi)
        return totals
    await _days_sql(
        reader,
        totals,
        by,
        mode,
        None if first is None else first.date(),
        None if end is None else end.date(),
    )
    if lo is not None and first is not None and lo < first:
        await _entries_sql(reader, totals, by, mode, lo, first)
    if hi is not None and end is not None and end < hi:
        await _entries_sql(reader, totals, by, mode, end, hi)
    return totals


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
    since: datetime | None = None,
    until: datetime | None = None,
) -> JsonBytes:
    """Realised PnL and fees from the ledger, grouped by UTC day, strategy or symbol."""
    totals = await ledger_totals(ctx.reader, by, mode, since, until)
    return JsonBytes(
        [
            {"key": key, "realized_pnl": dec(pnl), "fees": dec(fee), "entries": n}
            for key, (_cash, fee, pnl, n) in sorted(totals.items())
        ]
    )

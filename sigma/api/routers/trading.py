"""Orders, fills, positions, the settlement ledger and realised PnL (read-only).

These are the routes a dashboard polls, so they take the short path: Core queries through the
async `Reader` (no ORM objects, no thread pool on PostgreSQL), rows built as plain dicts with
exactly the response model's fields and rendered by orjson (`JsonBytes`). Ledger totals on
PostgreSQL come from `ledger_daily` for whole UTC days and from the ledger itself only for the
partial days at the ends of a `since`/`until` window.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cached_property, partial
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import (
    Date,
    Executable,
    Integer,
    Select,
    String,
    Text,
    bindparam,
    cast,
    func,
    select,
)

from sigma.api.context import Ctx, Viewer
from sigma.api.reader import Reader, Rows
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


SelectT = TypeVar("SelectT", bound=Select[*tuple[Any, ...]])


class _Prepared:
    """One statement per combination of filters (and database), built at its first use and
    kept, so the `Reader` compiles each once. `build(present, on_pg)` gets the names of the
    filters in use and whether the statement is for PostgreSQL."""

    def __init__(self, build: Callable[[frozenset[str], bool], Executable]) -> None:
        self._build = build
        self._made: dict[tuple[frozenset[str], bool], Executable] = {}

    def __call__(self, params: dict[str, Any], on_pg: bool = False) -> Executable:
        key = (frozenset(params), on_pg)
        statement = self._made.get(key)
        if statement is None:
            statement = self._made[key] = self._build(*key)
        return statement


def _window_of(query: SelectT, ts: Any, present: frozenset[str]) -> SelectT:
    if "since" in present:
        query = query.where(ts >= bindparam("since"))
    if "until" in present:
        query = query.where(ts < bindparam("until"))
    return query


def _given(**values: object) -> dict[str, Any]:
    """The filter values that were given (not None)."""
    return {k: v for k, v in values.items() if v is not None}


def _amount_text(column: Any, on_pg: bool) -> Any:
    """An amount column as exact fixed-point text, so no Decimal is made per value: on
    PostgreSQL already trimmed (`trim_scale`: `0.5000000000` -> `0.5`), on SQLite the stored
    text, which `dec_text` trims. Neither database writes NUMERIC in exponent notation."""
    return cast(func.trim_scale(column), Text) if on_pg else cast(column, String)


@dataclass(frozen=True)
class _Listing:
    """A newest-first page of rows, answered as the JSON array of its response model: the
    rows become dicts of exactly the model's fields and orjson writes them (`JsonBytes`)."""

    fields: tuple[tuple[str, Any, bool], ...]  # (name, column, is an amount)
    source: Any  # table or join
    order: tuple[Any, ...]  # newest first
    filters: tuple[Any, ...]  # columns compared with a bound parameter named after them
    ts: Any  # the column of `since`/`until`

    def statement(self, present: frozenset[str], on_pg: bool) -> Executable:
        """The page's query for the filters in `present`."""
        query = select(
            *(_amount_text(c, on_pg) if amount else c for _, c, amount in self.fields)
        ).select_from(self.source)
        for column in self.filters:
            if column.key in present:
                query = query.where(column == bindparam(column.key))
        query = _window_of(query, self.ts, present).order_by(*self.order)
        return query.limit(bindparam("limit", type_=Integer)).offset(
            bindparam("offset", type_=Integer)
        )

    @cached_property
    def prepared(self) -> _Prepared:
        """The statements of this listing, one per filter combination and database."""
        return _Prepared(self.statement)

    async def respond(
        self, reader: Reader, params: dict[str, Any], page: dict[str, int]
    ) -> JsonBytes:
        """The page (filters in `params`, `limit`/`offset` in `page`) as the response."""
        rows = await reader.rows(self.prepared(params, reader.is_async), {**params, **page})
        # Each row has exactly the fields (the query selects them); a strict zip costs half as
        # much again.
        names = [name for name, _, _ in self.fields]
        if reader.is_async:  # amounts trimmed by PostgreSQL already
            return JsonBytes([dict(zip(names, row, strict=False)) for row in rows])
        amounts = [i for i, (_, _, amount) in enumerate(self.fields) if amount]
        out = []
        for row in rows:
            values = list(row)
            for i in amounts:
                values[i] = dec_text(values[i])
            out.append(dict(zip(names, values, strict=False)))
        return JsonBytes(out)


_ORDER_LISTING = _Listing(
    fields=(
        ("id", OrderRecord.id, False),
        ("client_order_id", OrderRecord.client_order_id, False),
        ("exchange_order_id", OrderRecord.exchange_order_id, False),
        ("mode", OrderRecord.mode, False),
        ("symbol", OrderRecord.symbol, False),
        ("strategy", OrderRecord.strategy, False),
        ("side", OrderRecord.side, False),
        ("type", OrderRecord.type, False),
        ("qty", OrderRecord.qty, True),
        ("limit_price", OrderRecord.limit_price, True),
        ("stop_price", OrderRecord.stop_price, True),
        ("status", OrderRecord.status, False),
        ("filled_qty", OrderRecord.filled_qty, True),
        ("avg_fill_price", OrderRecord.avg_fill_price, True),
        ("created_at", OrderRecord.created_at, False),
        ("decided_at", OrderRecord.decided_at, False),
        ("updated_at", OrderRecord.updated_at, False),
    ),
    source=OrderRecord.__table__,
    order=(OrderRecord.created_at.desc(), OrderRecord.id.desc()),
    filters=(OrderRecord.status, OrderRecord.symbol, OrderRecord.strategy, OrderRecord.mode),
    ts=OrderRecord.created_at,
)


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
    page = {"limit": limit, "offset": offset}
    return await _ORDER_LISTING.respond(ctx.reader, params, page)


_FILL_LISTING = _Listing(
    fields=(
        ("id", FillRecord.id, False),
        ("client_order_id", FillRecord.client_order_id, False),
        ("symbol", OrderRecord.symbol, False),
        ("strategy", OrderRecord.strategy, False),
        ("mode", OrderRecord.mode, False),
        ("side", OrderRecord.side, False),
        ("qty", FillRecord.qty, True),
        ("price", FillRecord.price, True),
        ("fee", FillRecord.fee, True),
        ("ts", FillRecord.ts, False),
    ),
    source=FillRecord.__table__.join(
        OrderRecord.__table__, FillRecord.client_order_id == OrderRecord.client_order_id
    ),
    order=(FillRecord.ts.desc(), FillRecord.id.desc()),
    filters=(OrderRecord.symbol, OrderRecord.strategy, OrderRecord.mode),
    ts=FillRecord.ts,
)


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
    page = {"limit": limit, "offset": offset}
    return await _FILL_LISTING.respond(ctx.reader, params, page)


_POSITIONS_BASE = select(
    PositionRecord.symbol,
    PositionRecord.strategy,
    PositionRecord.mode,
    _amount_text(PositionRecord.qty, False),
    _amount_text(PositionRecord.avg_price, False),
    _amount_text(PositionRecord.realized_pnl, False),
    PositionRecord.updated_at,
).order_by(PositionRecord.symbol, PositionRecord.strategy, PositionRecord.mode)
_POSITIONS = _Prepared(
    lambda present, _on_pg: (
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


def _entries_sql_query(by: GroupBy, present: frozenset[str], _on_pg: bool) -> Executable:
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


def _days_sql_query(by: GroupBy, present: frozenset[str], _on_pg: bool) -> Executable:
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


def _entries_python_query(present: frozenset[str], _on_pg: bool) -> Executable:
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

    def add_up(rows: Rows) -> None:
        for ts, mode_, strategy, symbol, cash, fee, pnl in rows:
            if by == "day":
                group = ts.date().isoformat()
            elif by == "symbol":
                group = symbol or ""
            else:
                group = mode_ if by == "mode" else strategy
            _add(totals, group, (cash, fee, pnl, 1))

    # In the reading thread: thousands of Decimal sums would hold up the event loop.
    await reader.fold(_ENTRIES_PYTHON(params), params, add_up)


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

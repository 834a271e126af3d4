"""Orders, fills, positions and ledger totals, as the API answers them.

These are the reads a dashboard polls, so they take the short path: Core statements built
once per combination of filters, run through the async `Reader` (no ORM objects, no thread
pool on PostgreSQL), rows returned as plain dicts with the amounts as exact decimal text.
Ledger totals are summed by the database, exactly: on PostgreSQL as NUMERIC, from
`ledger_daily` for whole UTC days and from the ledger itself only for the partial days at
the ends of a `since`/`until` window; on SQLite, where amounts are fixed-point text, as
integers (the whole parts and the decimals apart), never as floats, and without a row coming
into Python. `held` and `order_owner` are the bot controls' lookups, in a session.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cached_property, partial
from typing import Any, Literal, TypeVar

from sqlalchemy import (
    Date,
    Executable,
    Integer,
    Select,
    String,
    Text,
    bindparam,
    case,
    cast,
    func,
    select,
)
from sqlalchemy.orm import Session

from sigma.domain.money import utc
from sigma.store.amounts import dec_text
from sigma.store.models import FillRecord, LedgerDaily, LedgerEntry, OrderRecord, PositionRecord
from sigma.store.reader import Reader
from sigma.store.types import SCALE

Row = dict[str, Any]
Totals = tuple[Decimal, Decimal, Decimal, int]
"""cash moved, fees, realised PnL, number of entries."""
GroupBy = Literal["mode", "day", "strategy", "symbol"]
_ZERO: Totals = (Decimal(0), Decimal(0), Decimal(0), 0)
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
    """A newest-first page of rows as dicts of exactly the listed fields."""

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

    async def page(
        self, reader: Reader, params: dict[str, Any], limit: int, offset: int
    ) -> list[Row]:
        """The page of rows matching the filters in `params`."""
        rows = await reader.rows(
            self.prepared(params, reader.is_async), {**params, "limit": limit, "offset": offset}
        )
        # Each row has exactly the fields (the query selects them); a strict zip costs half as
        # much again.
        names = [name for name, _, _ in self.fields]
        if reader.is_async:  # amounts trimmed by PostgreSQL already
            return [dict(zip(names, row, strict=False)) for row in rows]
        amounts = [i for i, (_, _, amount) in enumerate(self.fields) if amount]
        out = []
        for row in rows:
            values = list(row)
            for i in amounts:
                values[i] = dec_text(values[i])
            out.append(dict(zip(names, values, strict=False)))
        return out


_ORDERS = _Listing(
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


async def orders(
    reader: Reader,
    *,
    status: str | None = None,
    symbol: str | None = None,
    strategy: str | None = None,
    mode: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Row]:
    """Orders (every column of the API's order), newest first, filtered by what is given."""
    params = _given(
        status=status, symbol=symbol, strategy=strategy, mode=mode, since=since, until=until
    )
    return await _ORDERS.page(reader, params, limit, offset)


_FILLS = _Listing(
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


async def fills(
    reader: Reader,
    *,
    symbol: str | None = None,
    strategy: str | None = None,
    mode: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Row]:
    """Fills with their order's symbol, strategy, mode and side, newest first."""
    params = _given(symbol=symbol, strategy=strategy, mode=mode, since=since, until=until)
    return await _FILLS.page(reader, params, limit, offset)


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


async def positions(reader: Reader, mode: str | None = None) -> list[Row]:
    """Positions by symbol, strategy and mode (of `mode` only when given)."""
    params = _given(mode=mode)
    return [
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
            await reader.rows(_POSITIONS(params), params)
        )
    ]


def held(session: Session, mode: str) -> dict[tuple[str, str], Decimal]:
    """The quantity held per (strategy, symbol) in `mode`."""
    query = select(PositionRecord).where(PositionRecord.mode == mode)
    return {(p.strategy, p.symbol): p.qty for p in session.scalars(query)}


def order_owner(session: Session, client_order_id: str) -> tuple[str, str, str] | None:
    """(strategy, symbol, status) of the order `client_order_id`, or None."""
    row = session.execute(
        select(OrderRecord.strategy, OrderRecord.symbol, OrderRecord.status).where(
            OrderRecord.client_order_id == client_order_id
        )
    ).first()
    return None if row is None else (row[0], row[1], row[2])


def _add(totals: dict[str, Totals], key: str, more: Totals) -> None:
    cash, fee, pnl, n = totals.get(key, _ZERO)
    totals[key] = (cash + more[0], fee + more[1], pnl + more[2], n + more[3])


def _group(value: object) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)


def _midnight(ts: datetime) -> datetime:
    """The UTC midnight at or before `ts` (aware UTC)."""
    return ts.replace(hour=0, minute=0, second=0, microsecond=0)


def _text_sums(column: Any) -> tuple[Any, Any]:
    """SUM of a SQLite amount as two exact integers: of the whole parts and of the decimals
    in units of 10^-SCALE (both signed). The store writes every amount as fixed-point text
    with exactly SCALE decimals (`ExactDecimal`: `-12.5000000000`), so `CAST(... AS INTEGER)`
    is the whole part (towards zero) and the last SCALE characters are the decimals, signed
    as the text is. SQLite's SUM of the text itself would be a float."""
    decimals = cast(func.substr(column, -SCALE), Integer)
    negative = func.substr(column, 1, 1) == "-"
    return func.sum(cast(column, Integer)), func.sum(case((negative, -decimals), else_=decimals))


def _exact(whole: int, decimals: int) -> Decimal:
    """The Decimal of `_text_sums`' two integers."""
    return Decimal(whole) + Decimal(decimals).scaleb(-SCALE)


def _entries_query(by: GroupBy, present: frozenset[str], on_pg: bool) -> Executable:
    """The ledger entries with since <= ts < until summed per group: NUMERIC sums on
    PostgreSQL (key, cash, fee, pnl, n), integer pairs on SQLite (key, cash whole, cash
    decimals, fee..., pnl..., n)."""
    # SQLite keeps UTC times as `YYYY-MM-DD HH:MM:SS.ffffff` text: the day is its first ten
    # characters (cheaper than date(), which parses the whole text).
    day = (
        cast(func.timezone("UTC", LedgerEntry.ts), Date)
        if on_pg
        else func.substr(LedgerEntry.ts, 1, 10)
    )
    key = {
        "mode": LedgerEntry.mode,
        "day": day,
        "strategy": LedgerEntry.strategy,
        "symbol": func.coalesce(LedgerEntry.symbol, ""),
    }[by]
    amounts = (LedgerEntry.cash_delta, LedgerEntry.fee, LedgerEntry.realized_pnl)
    sums = [func.sum(c) for c in amounts] if on_pg else [s for c in amounts for s in _text_sums(c)]
    query = select(key, *sums, func.count()).group_by(key)
    if "mode" in present:
        query = query.where(LedgerEntry.mode == bindparam("mode"))
    return _window_of(query, LedgerEntry.ts, present)


def _days_query(by: GroupBy, present: frozenset[str], _on_pg: bool) -> Executable:
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


_BY: tuple[GroupBy, ...] = ("mode", "day", "strategy", "symbol")
_ENTRIES = {by: _Prepared(partial(_entries_query, by)) for by in _BY}
_DAYS = {by: _Prepared(partial(_days_query, by)) for by in _BY}


def _add_entry_sums(totals: dict[str, Totals], row: Sequence[Any], on_pg: bool) -> None:
    if on_pg:
        group, cash, fee, pnl, n = row
        _add(totals, _group(group), (cash, fee, pnl, n))
        return
    group, cash_w, cash_d, fee_w, fee_d, pnl_w, pnl_d, n = row
    sums = (_exact(cash_w, cash_d), _exact(fee_w, fee_d), _exact(pnl_w, pnl_d), n)
    _add(totals, _group(group), sums)


async def _entries(
    reader: Reader,
    totals: dict[str, Totals],
    by: GroupBy,
    mode: str | None,
    since: datetime | None,
    until: datetime | None,
) -> None:
    """Add the ledger entries with since <= ts < until, summed by the database."""
    params = _given(mode=mode, since=since, until=until)
    on_pg = reader.is_async
    for row in await reader.rows(_ENTRIES[by](params, on_pg), params):
        _add_entry_sums(totals, row, on_pg)


async def _days(
    reader: Reader,
    totals: dict[str, Totals],
    by: GroupBy,
    mode: str | None,
    first: date | None,
    end: date | None,
) -> None:
    """Add the whole UTC days first <= day < end from `ledger_daily` (PostgreSQL)."""
    params = _given(mode=mode, first=first, end=end)
    for group, cash, fee, pnl, n in await reader.rows(_DAYS[by](params), params):
        _add(totals, _group(group), (cash, fee, pnl, int(n)))


async def ledger_totals(
    reader: Reader,
    by: GroupBy,
    mode: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, Totals]:
    """Ledger totals per group (day = UTC date) of the entries with since <= ts < until."""
    totals: dict[str, Totals] = {}
    if not reader.is_async:  # SQLite keeps no daily sums
        await _entries(reader, totals, by, mode, since, until)
        return totals
    lo = None if since is None else utc(since)
    hi = None if until is None else utc(until)
    # Whole days [first, end) from the daily sums; the partial days around them entry by entry.
    first = None if lo is None else _midnight(lo + timedelta(days=1) - timedelta.resolution)
    end = None if hi is None else _midnight(hi)
    if first is not None and end is not None and first >= end:
        await _entries(reader, totals, by, mode, lo, hi)
        return totals
    await _days(
        reader,
        totals,
        by,
        mode,
        None if first is None else first.date(),
        None if end is None else end.date(),
    )
    if lo is not None and first is not None and lo < first:
        await _entries(reader, totals, by, mode, lo, first)
    if hi is not None and end is not None and end < hi:
        await _entries(reader, totals, by, mode, end, hi)
    return totals

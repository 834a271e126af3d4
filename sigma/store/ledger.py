"""Booking writes: orders, fills, positions and the settlement ledger, as a few Core statements.

The order worker (`sigma.execution.booking`) books every order of the live pipeline, so these
run on its hot path: SQLAlchemy Core (no ORM unit of work), statements built once at import
and executed with parameters (building a statement costs more than running it), and `INSERT
… ON CONFLICT DO NOTHING RETURNING` makes each idempotency check part of an insert instead of
a separate read. PostgreSQL and SQLite (3.35+) both support that form.

Two ways in: functions named by a verb run their statement on a connection now (one booking
in a transaction of its own); those named by a noun return the `Batch` of a plan's round trip
(`sigma.store.pipeline`), which books many orders in two round trips, or one on PostgreSQL
when the caller knows the positions the batch touches (`position_swaps`).

Rows are dicts of column values; a position is given by its key and its amounts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Protocol, TypeAlias

from psycopg import errors as pg_errors
from sqlalchemy import (
    Connection,
    Insert,
    Row,
    Table,
    bindparam,
    func,
    literal,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from sigma.store.models import FillRecord, LedgerEntry, OrderRecord, PositionRecord
from sigma.store.pipeline import Batch
from sigma.store.types import utcnow

PositionKey = tuple[str, str, str]
"""(symbol, strategy, mode)."""

AnyRow: TypeAlias = Row[*tuple[Any, ...]]
"""A row read, its columns by name."""


STALE_BOOKING: tuple[type[Exception], ...] = (
    pg_errors.UniqueViolation,
    pg_errors.SerializationFailure,
)
"""What a one-round-trip booking (`order_inserts` with `position_swaps`) fails with when what
it assumed no longer holds: a client order id on record, a position changed since it was
known. Nothing of it is written."""


class Amounts(Protocol):
    """A position's amounts (the settlement's `Holding`)."""

    @property
    def qty(self) -> Decimal: ...
    @property
    def avg_price(self) -> Decimal: ...
    @property
    def realized_pnl(self) -> Decimal: ...


_orders: Table = OrderRecord.__table__  # type: ignore[assignment]
_fills: Table = FillRecord.__table__  # type: ignore[assignment]
_positions: Table = PositionRecord.__table__  # type: ignore[assignment]
_ledger: Table = LedgerEntry.__table__  # type: ignore[assignment]


def _insert_new(table: Table, returning: Any) -> dict[str, Insert]:
    """`INSERT … ON CONFLICT DO NOTHING RETURNING` per dialect."""
    return {
        "postgresql": postgresql.insert(table).on_conflict_do_nothing().returning(returning),
        "sqlite": sqlite.insert(table).on_conflict_do_nothing().returning(returning),
    }


_INSERT_ORDER = _insert_new(_orders, _orders.c.status)
_INSERT_NEW_ORDER = _insert_new(_orders, _orders.c.client_order_id)
_ORDER_STATUS = select(_orders.c.status).where(_orders.c.client_order_id == bindparam("coid"))
_LOCK_ORDER = (
    select(
        _orders.c.client_order_id,
        _orders.c.symbol,
        _orders.c.side,
        _orders.c.type,
        _orders.c.strategy,
        _orders.c.mode,
        _orders.c.qty,
        _orders.c.filled_qty,
        _orders.c.avg_fill_price,
        _orders.c.exchange_order_id,
    )
    .where(_orders.c.client_order_id == bindparam("coid"))
    .with_for_update()
)
_UPDATE_ORDER = update(_orders).where(_orders.c.client_order_id == bindparam("coid"))
_REPLACE_UNFILLED_STATUS = update(_orders).where(
    _orders.c.client_order_id == bindparam("coid"),
    _orders.c.status == bindparam("expected"),
    _orders.c.filled_qty == 0,
)
_INSERT_FILL = _insert_new(_fills, _fills.c.id)
_POSITION_KEY = (
    _positions.c.symbol == bindparam("key_symbol"),
    _positions.c.strategy == bindparam("key_strategy"),
    _positions.c.mode == bindparam("key_mode"),
)
_LOCK_POSITION = (
    select(
        _positions.c.symbol,
        _positions.c.strategy,
        _positions.c.mode,
        _positions.c.qty,
        _positions.c.avg_price,
        _positions.c.realized_pnl,
    )
    .where(*_POSITION_KEY)
    .with_for_update()
)
_UPDATE_POSITION = update(_positions).where(*_POSITION_KEY)
_SWAPPED_POSITIONS = (
    update(_positions)
    .where(
        *_POSITION_KEY,
        _positions.c.qty == bindparam("old_qty"),
        _positions.c.avg_price == bindparam("old_avg_price"),
        _positions.c.realized_pnl == bindparam("old_realized_pnl"),
    )
    .values(
        qty=bindparam("qty"),
        avg_price=bindparam("avg_price"),
        realized_pnl=bindparam("realized_pnl"),
        updated_at=bindparam("updated_at"),
    )
    .returning(_positions.c.id)
    .cte("swapped")
)
# The position as the caller knew it, replaced in the same statement; anything else fails
# the transaction (the function is migration 0008's).
_SWAP_POSITION = select(
    func.sigma_expect_rows(
        select(func.count()).select_from(_SWAPPED_POSITIONS).scalar_subquery(),
        1,
        func.concat(
            literal("position "),
            bindparam("key_symbol"),
            literal("/"),
            bindparam("key_strategy"),
            literal("/"),
            bindparam("key_mode"),
            literal(" changed since this worker booked it"),
        ),
    )
)
_INSERT_ORDER_ONCE = _orders.insert()  # a known client order id fails the transaction
_INSERT_NEW_FILL = _fills.insert()
_INSERT_POSITION = _positions.insert()
_INSERT_LEDGER = _ledger.insert()


# --- one booking, on a connection in its transaction ------------------------------------------
def insert_order(conn: Connection, row: Mapping[str, Any]) -> str:
    """Insert the order `row` unless its client order id is known; the order's status
    afterwards (the row's own when it was inserted)."""
    inserted = conn.execute(_INSERT_ORDER[conn.dialect.name], row).scalar_one_or_none()
    if inserted is not None:
        return str(inserted)
    return str(conn.execute(_ORDER_STATUS, {"coid": row["client_order_id"]}).scalar_one())


def lock_order(conn: Connection, client_order_id: str) -> AnyRow | None:
    """The order's booking columns (client and exchange order ids, symbol, side, type,
    strategy, mode, qty, filled_qty, avg_fill_price), its row locked until the transaction
    ends; None for an unknown id."""
    return conn.execute(_LOCK_ORDER, {"coid": client_order_id}).one_or_none()


def update_order(
    conn: Connection,
    client_order_id: str,
    *,
    status: str,
    filled_qty: Decimal,
    avg_fill_price: Decimal | None,
    exchange_order_id: str | None,
) -> None:
    """Record what the order's fills so far add up to."""
    conn.execute(
        _UPDATE_ORDER,
        {
            "coid": client_order_id,
            "status": status,
            "filled_qty": filled_qty,
            "avg_fill_price": avg_fill_price,
            "exchange_order_id": exchange_order_id,
        },
    )


def replace_unfilled_status(
    conn: Connection, client_order_id: str, *, expected: str, status: str
) -> bool:
    """Set the order's status to `status` if it is still `expected` with nothing filled;
    whether it was."""
    done = conn.execute(
        _REPLACE_UNFILLED_STATUS,
        {"coid": client_order_id, "expected": expected, "status": status, "updated_at": utcnow()},
    )
    return bool(done.rowcount)


def insert_fill(conn: Connection, row: Mapping[str, Any]) -> bool:
    """Store the fill `row`; False when its broker fill id was booked before."""
    inserted = conn.execute(_INSERT_FILL[conn.dialect.name], row).scalar_one_or_none()
    return inserted is not None


def lock_position(conn: Connection, key: PositionKey) -> AnyRow | None:
    """The position's amounts (qty, avg_price, realized_pnl), its row locked until the
    transaction ends; None when there is none."""
    return conn.execute(_LOCK_POSITION, _key_params(key)).one_or_none()


def insert_position(conn: Connection, key: PositionKey, amounts: Amounts) -> None:
    """Store a new position."""
    conn.execute(_INSERT_POSITION, _position_row(key, amounts))


def update_position(conn: Connection, key: PositionKey, amounts: Amounts) -> None:
    """Replace the amounts of a stored position."""
    conn.execute(_UPDATE_POSITION, {**_key_params(key), **_amounts(amounts)})


def insert_ledger(conn: Connection, entries: list[dict[str, Any]]) -> None:
    """Store ledger entries (at least one)."""
    conn.execute(_INSERT_LEDGER, entries)


# --- a plan's round trips: the batches, run by `sigma.store.pipeline` -------------------------
def new_orders(dialect: str, rows: Sequence[Mapping[str, Any]]) -> Batch:
    """Insert the order rows whose client order ids are not known; returns the ids of those
    inserted."""
    return Batch(_INSERT_NEW_ORDER[dialect], rows, returning=True)


def position_locks(keys: Iterable[PositionKey]) -> Batch:
    """Lock the stored positions of `keys` (lock them in key order, as every writer does);
    returns (symbol, strategy, mode, qty, avg_price, realized_pnl) of each."""
    return Batch(_LOCK_POSITION, [_key_params(key) for key in keys], returning=True)


def order_inserts(rows: Sequence[Mapping[str, Any]]) -> Batch:
    """Insert the order rows; a client order id on record fails the transaction."""
    return Batch(_INSERT_ORDER_ONCE, rows)


def fill_inserts(rows: Sequence[Mapping[str, Any]]) -> Batch:
    """Insert the fill rows (new ones: no idempotency check)."""
    return Batch(_INSERT_NEW_FILL, rows)


def position_inserts(positions: Iterable[tuple[PositionKey, Amounts]]) -> Batch:
    """Store new positions."""
    return Batch(_INSERT_POSITION, [_position_row(key, amounts) for key, amounts in positions])


def position_updates(positions: Iterable[tuple[PositionKey, Amounts]]) -> Batch:
    """Replace the amounts of stored positions."""
    return Batch(
        _UPDATE_POSITION,
        [{**_key_params(key), **_amounts(amounts)} for key, amounts in positions],
    )


def position_swaps(changes: Iterable[tuple[PositionKey, Amounts, Amounts]]) -> Batch:
    """Replace each position's amounts (key, as known, new) only if it still holds those
    known: any other fails the transaction with a serialization failure (PostgreSQL only,
    the function is migration 0008's)."""
    now = utcnow()
    return Batch(
        _SWAP_POSITION,
        [
            {
                **_key_params(key),
                **{f"old_{k}": v for k, v in _amounts(before).items()},
                **_amounts(after),
                "updated_at": now,
            }
            for key, before, after in changes
        ],
    )


def ledger_inserts(entries: Sequence[Mapping[str, Any]]) -> Batch:
    """Store ledger entries."""
    return Batch(_INSERT_LEDGER, entries)


def _key_params(key: PositionKey) -> dict[str, str]:
    symbol, strategy, mode = key
    return {"key_symbol": symbol, "key_strategy": strategy, "key_mode": mode}


def _amounts(amounts: Amounts) -> dict[str, Decimal]:
    return {
        "qty": amounts.qty,
        "avg_price": amounts.avg_price,
        "realized_pnl": amounts.realized_pnl,
    }


def _position_row(key: PositionKey, amounts: Amounts) -> dict[str, Any]:
    symbol, strategy, mode = key
    return {"symbol": symbol, "strategy": strategy, "mode": mode, **_amounts(amounts)}

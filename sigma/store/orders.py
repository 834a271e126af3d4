"""Orders on record as the order worker and its follower read them: the open ones of a mode,
one by its client order id (in a session of their own), or some of its values (inside a
booking's transaction); and the mark of an open order whose event was dead-lettered."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import Connection, Select, Table, bindparam, select, update
from sqlalchemy.orm import Session

from sigma.store.ledger import AnyRow
from sigma.store.models import OrderRecord
from sigma.store.restart import OPEN_STATUSES
from sigma.store.types import utcnow

_orders: Table = OrderRecord.__table__  # type: ignore[assignment]
_MARK_DEAD_LETTERED = update(_orders).where(
    _orders.c.client_order_id == bindparam("coid"),
    _orders.c.status.in_(OPEN_STATUSES),
    _orders.c.dead_lettered_at.is_(None),
)


def open_order_rows(session: Session, mode: str) -> list[OrderRecord]:
    """The stored orders of `mode` that can still fill (or be cancelled)."""
    query = select(OrderRecord).where(
        OrderRecord.status.in_(OPEN_STATUSES), OrderRecord.mode == mode
    )
    return list(session.scalars(query))


def find_order(session: Session, client_order_id: str) -> OrderRecord | None:
    """The order `client_order_id`, or None."""
    query = select(OrderRecord).where(OrderRecord.client_order_id == client_order_id)
    return session.scalars(query).one_or_none()


def order_values(conn: Connection, client_order_id: str, columns: Sequence[str]) -> AnyRow | None:
    """The order's values of `columns`, in that order; None for an unknown id."""
    return conn.execute(_order_columns(tuple(columns)), {"coid": client_order_id}).one_or_none()


@cache
def _order_columns(columns: tuple[str, ...]) -> Select[Any]:
    """The statement reading `columns` of one order (built once per set of columns)."""
    return select(*(_orders.c[name] for name in columns)).where(
        _orders.c.client_order_id == bindparam("coid")
    )


def mark_dead_lettered(conn: Connection, *, client_order_id: str) -> None:
    """Mark the open order `client_order_id` as one whose event was dead-lettered (no
    delivery of it remains); its first mark is kept."""
    conn.execute(_MARK_DEAD_LETTERED, {"coid": client_order_id, "dead_lettered_at": utcnow()})

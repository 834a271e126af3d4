"""Looking up an order on record by its client order id: the whole order (the order worker's
and its follower's reads, in a session of their own) or some of its values (inside a
booking's transaction)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import Connection, Select, Table, bindparam, select
from sqlalchemy.orm import Session

from sigma.store.ledger import AnyRow
from sigma.store.models import OrderRecord

_orders: Table = OrderRecord.__table__  # type: ignore[assignment]


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

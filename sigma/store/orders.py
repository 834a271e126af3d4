"""Looking up an order on record by its client order id (the order worker's and its
follower's reads outside a booking)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from sigma.store.models import OrderRecord


def find_order(session: Session, client_order_id: str) -> OrderRecord | None:
    """The order `client_order_id`, or None."""
    query = select(OrderRecord).where(OrderRecord.client_order_id == client_order_id)
    return session.scalars(query).one_or_none()

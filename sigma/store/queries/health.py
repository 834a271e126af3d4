"""What the health checks read: whether the database answers, how fresh the recorded ticks
are, and how long orders have waited for the order worker."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Engine, func, select, text

from sigma.store.models import OrderRecord, TickRecord


def ping(engine: Engine) -> None:
    """One round trip to the database of `engine`; raises when it does not answer."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def dialect(engine: Engine) -> str:
    """The kind of database `engine` talks to ("postgresql", "sqlite")."""
    return engine.dialect.name


def newest_tick(engine: Engine) -> datetime | None:
    """The time of the newest recorded tick of any symbol, None without ticks."""
    with engine.connect() as conn:
        return conn.execute(select(func.max(TickRecord.ts))).scalar()


def newest_ticks(engine: Engine, symbols: Sequence[str]) -> dict[str, datetime | None]:
    """The time of the newest recorded tick of each of `symbols` (None: it has none).

    One step down the (symbol, ts) primary key per symbol: a maximum over all symbols would
    read every tick kept."""
    query = select(func.max(TickRecord.ts))
    with engine.connect() as conn:
        return {s: conn.execute(query.where(TickRecord.symbol == s)).scalar() for s in symbols}


def waiting_orders(engine: Engine) -> tuple[int, datetime | None]:
    """How many orders wait for the order worker to book them, and when the oldest was made."""
    with engine.connect() as conn:
        waiting, oldest = conn.execute(
            select(func.count(), func.min(OrderRecord.created_at)).where(
                OrderRecord.status == "new"
            )
        ).one()
    return int(waiting), oldest

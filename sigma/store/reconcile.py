"""The store's side of reconciliation with a venue (`sigma.execution.reconcile`): how far its
trades were compared, whether fills are booked, and the balances SIGMA books against those the
venue reports."""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sigma.store.models import (
    FillRecord,
    LedgerEntry,
    OrderRecord,
    PositionRecord,
    VenueBalance,
    VenueCursor,
)
from sigma.store.types import utcnow

log = logging.getLogger(__name__)


def lacks_fills(session: Session, fill_ids: Collection[str]) -> bool:
    """Whether some of `fill_ids` (broker fill ids) are not booked."""
    stored = session.scalar(
        select(func.count()).where(FillRecord.exchange_fill_id.in_(list(fill_ids)))
    )
    return (stored or 0) < len(set(fill_ids))


def trades_compared_until(session: Session, venue: str, symbol: str, mode: str) -> datetime:
    """Where the last comparison of `venue`'s trades on `symbol` stopped; the first looks
    back to SIGMA's first order on the symbol in `mode` (nothing before it can be SIGMA's),
    or starts now."""
    cursor = session.get(VenueCursor, (venue, symbol))
    if cursor is not None:
        return cursor.trades_until
    first = session.scalar(
        select(func.min(OrderRecord.created_at)).where(
            OrderRecord.symbol == symbol, OrderRecord.mode == mode
        )
    )
    return first or utcnow()


def set_trades_compared_until(session: Session, venue: str, symbol: str, until: datetime) -> None:
    """Record that `venue`'s trades on `symbol` were compared up to `until`."""
    cursor = session.get(VenueCursor, (venue, symbol))
    if cursor is None:
        session.add(VenueCursor(venue=venue, symbol=symbol, trades_until=until))
    else:
        cursor.trades_until = until


def booked_asset(
    session: Session, mode: str, base_of: Collection[str], quote_of: Collection[str]
) -> Decimal:
    """SIGMA's booked amount of an asset in `mode`: the positions of the symbols it is the
    base of and the cash of those it is the quote of."""
    held = _total(
        session,
        PositionRecord.qty,
        PositionRecord.mode == mode,
        PositionRecord.symbol.in_(base_of),
    )
    cash = _total(
        session,
        LedgerEntry.cash_delta,
        LedgerEntry.mode == mode,
        LedgerEntry.symbol.in_(quote_of),
    )
    return held + cash


def record_balance(
    session: Session, venue: str, asset: str, venue_total: Decimal, booked: Decimal
) -> Decimal:
    """Store the venue's and SIGMA's figures for `asset`; what the account holds outside
    SIGMA, recorded the first time as the venue's total less SIGMA's (funds the account had
    before SIGMA traded)."""
    row = session.get(VenueBalance, (venue, asset))
    if row is None:
        row = VenueBalance(venue=venue, asset=asset, outside=venue_total - booked)
        session.add(row)
        log.info("%s: %s held outside SIGMA: %s", venue, asset, row.outside)
    row.venue_total, row.booked, row.checked_at = venue_total, booked, utcnow()
    return row.outside


def _total(session: Session, column: Any, *where: Any) -> Decimal:
    """The exact sum of a money column: NUMERIC on PostgreSQL; SQLite keeps money as text,
    which its SUM would turn into floats, so the rows are summed here."""
    if session.get_bind().dialect.name == "postgresql":
        return Decimal(session.scalar(select(func.coalesce(func.sum(column), 0)).where(*where)))
    return sum(session.scalars(select(column).where(*where)), start=Decimal(0))

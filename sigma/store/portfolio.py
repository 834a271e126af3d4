"""What the profit summary reads: each strategy account's ledger entries and positions in a
mode, and the last stored price of a symbol."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from sigma.engine.profit import Booking
from sigma.store.models import LedgerEntry, PositionRecord
from sigma.store.restart import last_prices

Account = tuple[str, str]
"""(strategy, symbol): each trades its own account."""


@dataclass(slots=True)
class AccountBook:
    """An account's ledger entries (time order) and position as booked."""

    entries: list[Booking] = field(default_factory=list)
    qty: Decimal = Decimal(0)
    avg_price: Decimal = Decimal(0)


def account_books(session: Session, mode: str) -> dict[Account, AccountBook]:
    """Every account with a ledger entry or a position in `mode`."""
    out: dict[Account, AccountBook] = {}
    # Amounts read as Decimals and summed in Python: SQLite stores them as text.
    rows = session.execute(
        select(
            LedgerEntry.strategy,
            LedgerEntry.symbol,
            LedgerEntry.ts,
            LedgerEntry.cash_delta,
            LedgerEntry.fee,
            LedgerEntry.realized_pnl,
        )
        .where(LedgerEntry.mode == mode, LedgerEntry.symbol.is_not(None))
        .order_by(LedgerEntry.ts, LedgerEntry.id)
    )
    for strategy, symbol, ts, cash_delta, fee, realized in rows:
        account = out.setdefault((strategy, str(symbol)), AccountBook())
        account.entries.append(Booking(ts, cash_delta, fee, realized))
    positions = session.execute(
        select(
            PositionRecord.strategy,
            PositionRecord.symbol,
            PositionRecord.qty,
            PositionRecord.avg_price,
        ).where(PositionRecord.mode == mode)
    )
    for strategy, symbol, qty, avg_price in positions:
        account = out.setdefault((strategy, symbol), AccountBook())
        account.qty, account.avg_price = qty, avg_price
    return out


def last_stored_prices(
    session: Session, symbols: Iterable[str], timeframe: str
) -> dict[str, Decimal]:
    """The newest stored price of each of `symbols` that has one: the later of its newest
    tick and the close of its newest bar of `timeframe`."""
    return {
        symbol: stored.price for symbol, stored in last_prices(session, symbols, timeframe).items()
    }

"""What a restarting bot reads back: each strategy account as booked (positions and ledger),
its open orders (as domain orders), and how far the stored prices reach (its bars are read with
`sigma.store.bars.read_bars`); and what a running bot reads to catch up with what it missed on
the bus: its orders as booked, with their fills (`booked_orders`).

The order worker books every fill into `positions` and `ledger`; those rows, not the bot's
memory, are the account. A bot that starts flat while 97 units are booked trades as if it
held none, and its view and the booked one stay apart for the rest of the run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sigma.domain import Order, OrderStatus, OrderType, Side
from sigma.store.models import (
    BarRecord,
    FillRecord,
    LedgerEntry,
    OrderRecord,
    PositionRecord,
    TickRecord,
)

__all__ = [
    "OPEN_STATUSES",
    "BookedAccount",
    "BookedOrder",
    "StoredFill",
    "StoredPrice",
    "booked_accounts",
    "booked_orders",
    "last_prices",
    "latest_market_time",
    "open_orders",
    "order_fills",
]

OPEN_STATUSES = ("new", "partially_filled")
"""Order statuses that can still fill (or be cancelled)."""

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class BookedAccount:
    """One (strategy, symbol) account as the store holds it: the cash its fills moved (add
    the opening cash), the fees paid, and the position (realised PnL gross of fees, as the
    settlement books it)."""

    cash_moved: Decimal = _ZERO
    fees: Decimal = _ZERO
    qty: Decimal = _ZERO
    avg_price: Decimal = _ZERO
    realized_pnl: Decimal = _ZERO
    updated_at: datetime | None = None


def booked_accounts(session: Session, mode: str) -> dict[tuple[str, str], BookedAccount]:
    """Every account booked in `mode`, by (strategy, symbol)."""
    moved = session.execute(
        select(
            LedgerEntry.strategy,
            LedgerEntry.symbol,
            LedgerEntry.cash_delta,
            LedgerEntry.fee,
        ).where(LedgerEntry.mode == mode, LedgerEntry.symbol.is_not(None))
    )
    # Summed here, not in SQL: SQLite keeps these columns as text, and exact Decimals are
    # the point (one row per fill; a restart reads them once).
    sums: dict[tuple[str, str], tuple[Decimal, Decimal]] = {}
    for strategy, symbol, cash_delta, fee in moved:
        key = (strategy, str(symbol))
        cash, fees = sums.get(key, (_ZERO, _ZERO))
        sums[key] = (cash + cash_delta, fees + fee)
    positions = {
        (p.strategy, p.symbol): p
        for p in session.scalars(select(PositionRecord).where(PositionRecord.mode == mode))
    }
    out: dict[tuple[str, str], BookedAccount] = {}
    for key in sums.keys() | positions.keys():
        cash, fees = sums.get(key, (_ZERO, _ZERO))
        p = positions.get(key)
        out[key] = (
            BookedAccount(cash, fees, p.qty, p.avg_price, p.realized_pnl, p.updated_at)
            if p is not None
            else BookedAccount(cash, fees)
        )
    return out


def open_orders(session: Session, mode: str) -> list[Order]:
    """The orders of `mode` that are not final, oldest first."""
    query = select(OrderRecord).where(
        OrderRecord.mode == mode, OrderRecord.status.in_(OPEN_STATUSES)
    )
    rows = session.scalars(query.order_by(OrderRecord.created_at, OrderRecord.id))
    return [_order(row) for row in rows]


def _order(row: OrderRecord) -> Order:
    """The domain order of a stored one."""
    return Order(
        symbol=row.symbol,
        side=Side(row.side),
        type=OrderType(row.type),
        qty=row.qty,
        limit_price=row.limit_price,
        stop_price=row.stop_price,
        strategy=row.strategy,
        created_at=row.decided_at or row.created_at,
        client_order_id=row.client_order_id,
        status=OrderStatus(row.status),
        filled_qty=row.filled_qty,
    )


def order_fills(
    session: Session, mode: str, client_order_ids: Iterable[str]
) -> dict[str, tuple[Decimal, Decimal]]:
    """The quantity filled and its average price of each of `client_order_ids` in `mode`
    that filled at least in part."""
    wanted = list(client_order_ids)
    if not wanted:
        return {}
    rows = session.execute(
        select(
            OrderRecord.client_order_id, OrderRecord.filled_qty, OrderRecord.avg_fill_price
        ).where(OrderRecord.mode == mode, OrderRecord.client_order_id.in_(wanted))
    )
    return {coid: (qty, price) for coid, qty, price in rows if qty > 0 and price is not None}


@dataclass(frozen=True, slots=True)
class StoredFill:
    """One stored fill, as the broker reported it (`fee` in `fee_asset`)."""

    qty: Decimal
    price: Decimal
    fee: Decimal
    fee_asset: str
    ts: datetime
    fill_id: str | None = None
    """The broker's id of the execution (`exchange_fill_id`), when it gave one."""


@dataclass(frozen=True, slots=True)
class BookedOrder:
    """An order as booked, with its fills in the order they were stored."""

    client_order_id: str
    symbol: str
    side: Side
    strategy: str
    mode: str
    status: str
    fills: tuple[StoredFill, ...]


def booked_orders(session: Session, client_order_ids: Iterable[str]) -> list[BookedOrder]:
    """The stored orders among `client_order_ids`, each with its fills."""
    wanted = list(client_order_ids)
    if not wanted:
        return []
    rows = session.execute(
        select(
            OrderRecord.client_order_id,
            OrderRecord.symbol,
            OrderRecord.side,
            OrderRecord.strategy,
            OrderRecord.mode,
            OrderRecord.status,
        ).where(OrderRecord.client_order_id.in_(wanted))
    ).all()
    fills: dict[str, list[StoredFill]] = {}
    stored = session.execute(
        select(
            FillRecord.client_order_id,
            FillRecord.qty,
            FillRecord.price,
            FillRecord.fee,
            FillRecord.fee_asset,
            FillRecord.ts,
            FillRecord.exchange_fill_id,
        )
        .where(FillRecord.client_order_id.in_(wanted))
        .order_by(FillRecord.id)
    )
    for coid, qty, price, fee, fee_asset, ts, fill_id in stored:
        fills.setdefault(coid, []).append(StoredFill(qty, price, fee, fee_asset, ts, fill_id))
    return [
        BookedOrder(coid, symbol, Side(side), strategy, mode, status, tuple(fills.get(coid, ())))
        for coid, symbol, side, strategy, mode, status in rows
    ]


def latest_market_time(session: Session, symbols: Iterable[str], timeframe: str) -> datetime | None:
    """The latest time the store has prices for among `symbols`: the start of the newest bar
    of `timeframe` or the newest tick, whichever is later (None when it has neither)."""
    wanted = list(symbols)
    bar = session.scalar(
        select(func.max(BarRecord.ts)).where(
            BarRecord.symbol.in_(wanted), BarRecord.timeframe == timeframe
        )
    )
    tick = session.scalar(select(func.max(TickRecord.ts)).where(TickRecord.symbol.in_(wanted)))
    known = [t for t in (bar, tick) if t is not None]
    return max(known) if known else None


class StoredPrice(NamedTuple):
    """A symbol's last stored price and its time."""

    price: Decimal
    ts: datetime


def last_prices(session: Session, symbols: Iterable[str], timeframe: str) -> dict[str, StoredPrice]:
    """The last stored price of each of `symbols` that has one: its newest tick or the close
    of its newest bar of `timeframe` (at the bar's start), whichever is later. The price
    filter judges a feed's first tick after a start against it."""
    prices: dict[str, StoredPrice] = {}
    for symbol in symbols:
        tick = session.execute(
            select(TickRecord.ts, TickRecord.price)
            .where(TickRecord.symbol == symbol)
            .order_by(TickRecord.ts.desc(), TickRecord.seq.desc())
            .limit(1)
        ).first()
        bar = session.execute(
            select(BarRecord.ts, BarRecord.close)
            .where(BarRecord.symbol == symbol, BarRecord.timeframe == timeframe)
            .order_by(BarRecord.ts.desc())
            .limit(1)
        ).first()
        known = [row for row in (tick, bar) if row is not None]
        if known:
            ts, price = max(known, key=lambda row: row[0])
            prices[symbol] = StoredPrice(price, ts)
    return prices

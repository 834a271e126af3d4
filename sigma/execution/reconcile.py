"""Reconciliation with a venue: what the venue holds against what SIGMA booked.

Run by the order worker at start and every few minutes (`OrderWorker.reconcile`), after the
orders SIGMA holds open were looked up one by one. Every difference is booked or raised as an
alert, never dropped:

* open orders at the venue: one SIGMA does not know is an alert (someone trades the account
  by hand, or another system shares the keys);
* trades since the last run, grouped by order: fills of an order SIGMA knows and lacks are
  booked with the order's report; trades of an order SIGMA does not know are an alert;
* balances of the configured symbols' assets: the venue's total against SIGMA's (the
  positions for a base asset, the ledger's cash for a quote asset) plus what the account held
  outside SIGMA when they were first compared; any other figure is an alert with both.

The venue side is a broker with the `Capability.RECONCILE` capability (`Reconcilable`); the
paper broker has no account to compare and declares none.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from sigma.domain import Side
from sigma.execution.broker import BrokerReport
from sigma.store.handles import Session, SessionFactory
from sigma.store.orders import find_order
from sigma.store.reconcile import (
    booked_asset,
    lacks_fills,
    record_balance,
    set_trades_compared_until,
    trades_compared_until,
)
from sigma.store.types import utcnow

if TYPE_CHECKING:
    from sigma.execution.worker import OrderWorker

log = logging.getLogger(__name__)
T = TypeVar("T")

#: trades are asked for from this long before the last run: a trade stamped just before a run
#: may show only after it (booking is idempotent by fill id, alerts are sent once)
OVERLAP = timedelta(seconds=30)
#: balance differences below this are the rounding of fees shared out over trades
TOLERANCE = Decimal("1e-8")


@dataclass(frozen=True, slots=True)
class VenueOrder:
    """An order as the venue lists it: its report (the client order id as the venue has it,
    "" when it has none) and what was asked."""

    symbol: str
    side: Side
    qty: Decimal
    price: Decimal | None
    report: BrokerReport


@dataclass(frozen=True, slots=True)
class VenueAsset:
    """One asset of the venue account (free and locked) and the configured symbols that
    trade it as their base or quote currency."""

    asset: str
    total: Decimal
    base_of: tuple[str, ...] = ()
    quote_of: tuple[str, ...] = ()


class Reconcilable(Protocol):
    """The venue account as reconciliation reads it."""

    name: str
    symbols: Mapping[str, str]

    async def fetch_balances(self) -> list[VenueAsset]:
        """The assets of the configured symbols, with their totals at the venue."""
        ...

    async def open_orders(self, symbols: Iterable[str] | None = None) -> list[VenueOrder]:
        """Every open order at the venue on `symbols` (every configured symbol by default)."""
        ...

    async def trades_since(self, symbol: str, since: datetime) -> list[VenueOrder]:
        """The orders on `symbol` that traded since `since`, each with those trades."""
        ...


class VenueReconciler:
    """Compares the venue account behind `worker.broker` with the store; books what SIGMA
    lacks through the worker and raises the rest with the worker's `on_alert`."""

    def __init__(self, worker: OrderWorker, venue: Reconcilable) -> None:
        self.worker = worker
        self.venue = venue
        self._alerted: set[str] = set()
        """Unknown orders already raised (the overlap shows their trades twice)."""

    async def run(self, mode: str) -> dict[str, int]:
        """One reconciliation of `mode`'s bookings with the venue; counts of what was found
        (`unknown_open`, `fills_booked`, `unknown_trades`, `balances`, `balance_alerts`)."""
        counts = dict.fromkeys(
            ("unknown_open", "fills_booked", "unknown_trades", "balances", "balance_alerts"), 0
        )
        symbols = list(self.venue.symbols)
        await self._open_orders(symbols, counts)
        for symbol in symbols:
            started = utcnow()
            since = await self._db(trades_compared_until, self.venue.name, symbol, mode)
            for order in await self.venue.trades_since(symbol, since - OVERLAP):
                await self._traded(mode, order, counts)
            # Only once every trade was booked or raised: a run that fails asks again.
            await self._db(set_trades_compared_until, self.venue.name, symbol, started)
        await self._balances(mode, counts)
        found = counts["unknown_open"] + counts["unknown_trades"] + counts["balance_alerts"]
        log.log(
            logging.WARNING if found else logging.INFO,
            "reconciled %s with %s: %s",
            mode,
            self.venue.name,
            counts,
        )
        return counts

    async def _db(self, call: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(_in_session, self.worker.sessions, call, *args)

    async def _open_orders(self, symbols: list[str], counts: dict[str, int]) -> None:
        for order in await self.venue.open_orders(symbols):
            coid = order.report.client_order_id
            if coid and await self._db(find_order, coid) is not None:
                continue  # SIGMA's: the worker's lookup of its open orders follows it
            counts["unknown_open"] += 1
            self._alert_once(
                order,
                f"{self.venue.name}: open order {order.report.exchange_order_id} "
                f"({order.side.value} {order.qty} {order.symbol}) is not SIGMA's",
            )

    async def _traded(self, mode: str, order: VenueOrder, counts: dict[str, int]) -> None:
        coid = order.report.client_order_id
        row = await self._db(find_order, coid) if coid else None
        if row is None or row.mode != mode:
            counts["unknown_trades"] += len(order.report.fills)
            self._alert_once(
                order,
                f"{self.venue.name}: {len(order.report.fills)} trade(s) of order "
                f"{order.report.exchange_order_id} ({order.side.value} {order.symbol}) "
                "that SIGMA did not place",
            )
            return
        ids = [f.fill_id for f in order.report.fills]
        if not await self._db(lacks_fills, ids):
            return
        booked = await self.worker.book(
            row.symbol, Side(row.side), row.strategy, row.mode, order.report
        )
        counts["fills_booked"] += len(booked.fills)
        log.warning(
            "%s: booked %d fill(s) of order %s that reconciliation found at the venue",
            self.venue.name,
            len(booked.fills),
            coid,
        )

    async def _balances(self, mode: str, counts: dict[str, int]) -> None:
        for asset in await self.venue.fetch_balances():
            counts["balances"] += 1
            booked, outside = await self._db(_compare, self.venue.name, mode, asset)
            expected = outside + booked
            if abs(asset.total - expected) <= TOLERANCE:
                continue
            counts["balance_alerts"] += 1
            self.worker.on_alert(
                "warning",
                f"{self.venue.name}: {asset.asset} balance {asset.total} at the venue, "
                f"SIGMA expects {expected}",
                {
                    "venue": self.venue.name,
                    "asset": asset.asset,
                    "venue_total": str(asset.total),
                    "sigma_expects": str(expected),
                    "difference": str(asset.total - expected),
                    "booked": str(booked),
                    "outside": str(outside),
                },
            )

    def _alert_once(self, order: VenueOrder, message: str) -> None:
        key = order.report.exchange_order_id or order.report.client_order_id
        if key in self._alerted:
            return
        self._alerted.add(key)
        report = order.report
        self.worker.on_alert(
            "warning",
            message,
            {
                "venue": self.venue.name,
                "symbol": order.symbol,
                "side": order.side.value,
                "qty": str(order.qty),
                "price": None if order.price is None else str(order.price),
                "status": report.status.value,
                "exchange_order_id": report.exchange_order_id,
                "client_order_id": report.client_order_id,
                "fills": [[f.fill_id, str(f.qty), str(f.price)] for f in report.fills],
            },
        )


# --- the store's side (`sigma.store.reconcile`), each call in a session of its own, in a thread --
def _in_session(sessions: SessionFactory, call: Callable[..., T], *args: Any) -> T:
    with sessions.begin() as session:
        return call(session, *args)


def _compare(session: Session, venue: str, mode: str, asset: VenueAsset) -> tuple[Decimal, Decimal]:
    """SIGMA's booked amount of `asset` and what the account holds outside SIGMA."""
    booked = booked_asset(session, mode, asset.base_of, asset.quote_of)
    return booked, record_balance(session, venue, asset.asset, asset.total, booked)

"""OrderWorker: takes order events off the queue, executes them at the broker and books the
result: order, fills, positions and the settlement ledger in one transaction.

Exactly-once effect on top of at-least-once delivery: the client order id is the key.

1. The order row is written (status `new`) before the broker sees the order, so an accepted
   order is on record even if everything after fails.
2. The broker is asked with the same id; brokers return the earlier outcome for a known id.
3. Fills are stored under the broker's fill id (unique), so booking the same report twice
   adds nothing. A redelivered event for a finished order is acknowledged and ignored.

Several workers (processes) may consume the same queue: row locks on the order and position
(PostgreSQL) and the unique keys make concurrent attempts at the same order fail and retry
rather than double-book.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from sigma.bus.base import CHANNEL_FILLS, CHANNEL_ORDER_STATUS, Delivery, PermanentError, PubSub
from sigma.domain import OrderStatus, Side
from sigma.execution.broker import Broker, BrokerFill, BrokerReport, PaperBroker
from sigma.execution.events import FillEvent, OrderEvent, OrderStatusEvent
from sigma.execution.settlement import Holding, settle
from sigma.store.models import FillRecord, LedgerEntry, OrderRecord, PositionRecord

log = logging.getLogger(__name__)

_TERMINAL = {OrderStatus.FILLED.value, OrderStatus.CANCELLED.value, OrderStatus.REJECTED.value}
_OPEN = (OrderStatus.NEW.value, OrderStatus.PARTIALLY_FILLED.value)

AlertFn = Callable[[str, str, dict[str, Any]], None]


@dataclass(frozen=True, slots=True)
class Booked:
    """What one booking changed: the order's status and the fills that were new."""

    status: str
    fills: tuple[BrokerFill, ...]


def parse_order_event(delivery: Delivery) -> OrderEvent:
    """The order event in a delivery; a malformed one can never succeed (PermanentError)."""
    try:
        return OrderEvent.model_validate_json(delivery.body)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        raise PermanentError(f"malformed order event {delivery.message_id!r}: {problems}") from exc


class OrderWorker:
    """Executes order events from the `orders` queue against `broker`."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        broker: Broker,
        pubsub: PubSub | None = None,
        *,
        on_alert: AlertFn | None = None,
    ) -> None:
        self.sessions = sessions
        self.broker = broker
        self.pubsub = pubsub
        self.on_alert = on_alert or (lambda severity, message, details: None)
        self.processed = 0
        self.duplicates = 0
        # SQLite allows one writer; concurrent handlers would only meet "database is locked".
        self._db_lock = asyncio.Lock()

    # --- the queue handler ------------------------------------------------------------------
    async def handle(self, delivery: Delivery) -> None:
        """Process one delivery (raises to have it retried or dead-lettered)."""
        event = parse_order_event(delivery)
        try:
            await self.execute(event)
        except Exception as exc:
            log.warning(
                "order %s failed (attempt %d): %r", event.client_order_id, delivery.attempt, exc
            )
            raise

    async def execute(self, event: OrderEvent) -> Booked | None:
        """Record, send and book one order; None when it was already finished."""
        async with self._db_lock:
            status = await asyncio.to_thread(self._accept, event)
        if status in _TERMINAL:
            self.duplicates += 1
            log.info("order %s already %s; redelivery ignored", event.client_order_id, status)
            return None
        report = await self.broker.place(event)
        return await self.book(event.symbol, event.side, event.strategy, event.mode, report)

    async def book(
        self, symbol: str, side: Side, strategy: str, mode: str, report: BrokerReport
    ) -> Booked:
        """Store a broker report and announce what changed."""
        async with self._db_lock:
            booked = await asyncio.to_thread(self._record, report)
        self.processed += 1
        if booked.status == OrderStatus.REJECTED.value:
            self.on_alert(
                "warning",
                f"order {report.client_order_id} rejected by {self.broker.name}: {report.reason}",
                {"symbol": symbol, "strategy": strategy},
            )
        await self._announce(symbol, side, strategy, mode, report, booked)
        return booked

    # --- database ---------------------------------------------------------------------------
    def _accept(self, event: OrderEvent) -> str:
        """Insert the order row if it is new; returns the order's current status."""
        for _ in range(2):
            with self.sessions() as session:
                row = _order(session, event.client_order_id)
                if row is not None:
                    return row.status
                session.add(
                    OrderRecord(
                        client_order_id=event.client_order_id,
                        mode=event.mode,
                        symbol=event.symbol,
                        side=event.side.value,
                        type=event.type.value,
                        qty=event.qty,
                        limit_price=event.limit_price,
                        stop_price=event.stop_price,
                        status=OrderStatus.NEW.value,
                        strategy=event.strategy,
                        created_at=event.created_at,
                    )
                )
                try:
                    session.commit()
                    return OrderStatus.NEW.value
                except IntegrityError:
                    session.rollback()  # another worker inserted it first: read theirs
        raise RuntimeError(f"order {event.client_order_id} could not be recorded")

    def _record(self, report: BrokerReport) -> Booked:
        """Book the report's new fills, the position, the ledger and the order, atomically."""
        with self.sessions.begin() as session:
            order = _order(session, report.client_order_id, lock=True)
            if order is None:
                raise RuntimeError(f"report for unknown order {report.client_order_id}")
            known = set(
                session.scalars(
                    select(FillRecord.exchange_fill_id).where(
                        FillRecord.client_order_id == order.client_order_id
                    )
                )
            )
            new = tuple(f for f in report.fills if f.fill_id not in known)
            side = Side(order.side)
            for fill in new:
                _book_fill(session, order, side, fill)
            filled = order.filled_qty + sum((f.qty for f in new), start=Decimal(0))
            if filled > order.qty:
                raise RuntimeError(
                    f"order {order.client_order_id}: fills {filled} exceed quantity {order.qty}"
                )
            if new:
                paid = (order.avg_fill_price or Decimal(0)) * order.filled_qty
                order.avg_fill_price = (
                    paid + sum((f.qty * f.price for f in new), start=Decimal(0))
                ) / filled
            order.filled_qty = filled
            if report.exchange_order_id:
                order.exchange_order_id = report.exchange_order_id
            order.status = _status(report.status, filled, order.qty)
            return Booked(order.status, new)

    async def _announce(
        self,
        symbol: str,
        side: Side,
        strategy: str,
        mode: str,
        report: BrokerReport,
        booked: Booked,
    ) -> None:
        """Tell the bot and dashboards; the database already holds the truth, so a bus
        failure here is logged, not retried (retrying would not trade twice, but would
        delay every other order)."""
        if self.pubsub is None:
            return
        now = datetime.now(UTC)
        messages = [
            (
                CHANNEL_FILLS,
                FillEvent(
                    client_order_id=report.client_order_id,
                    symbol=symbol,
                    side=side,
                    qty=f.qty,
                    price=f.price,
                    fee=f.fee,
                    ts=f.ts,
                    strategy=strategy,
                    mode="live" if mode == "live" else "paper",
                ).to_bytes(),
            )
            for f in booked.fills
        ]
        messages.append(
            (
                CHANNEL_ORDER_STATUS,
                OrderStatusEvent(
                    client_order_id=report.client_order_id,
                    symbol=symbol,
                    status=booked.status,
                    reason=report.reason,
                    ts=now,
                ).to_bytes(),
            )
        )
        try:
            for channel, body in messages:
                await self.pubsub.publish(channel, body)
        except Exception:
            log.warning("could not announce order %s", report.client_order_id, exc_info=True)

    # --- resting paper orders and restarts --------------------------------------------------
    async def on_price(self, symbol: str, price: Decimal) -> list[Booked]:
        """Let the paper broker fill resting orders at `price` and book them."""
        if not isinstance(self.broker, PaperBroker):
            return []
        out = []
        for report in self.broker.on_price(symbol, price):
            meta = await asyncio.to_thread(self._meta, report.client_order_id)
            out.append(await self.book(*meta, report))
        return out

    def _meta(self, client_order_id: str) -> tuple[str, Side, str, str]:
        with self.sessions() as session:
            order = _order(session, client_order_id)
            assert order is not None  # the broker only knows orders the worker recorded
            return order.symbol, Side(order.side), order.strategy, order.mode

    async def reconcile(self, mode: str) -> dict[str, int]:
        """Bring open orders of `mode` in line with the broker after a restart.

        Fills the broker has and the database lacks are booked. A resting paper order is
        handed back to the (fresh) paper broker. An order the broker never saw stays open:
        its event was not acknowledged, so the queue delivers it again.
        """
        with self.sessions() as session:
            rows = session.scalars(
                select(OrderRecord).where(OrderRecord.status.in_(_OPEN), OrderRecord.mode == mode)
            ).all()
        counts = {"open": len(rows), "booked": 0, "restored": 0, "awaiting_redelivery": 0}
        for row in rows:
            report = await self.broker.lookup(row.client_order_id, row.symbol)
            if report is not None:
                await self.book(row.symbol, Side(row.side), row.strategy, row.mode, report)
                counts["booked"] += 1
            elif isinstance(self.broker, PaperBroker) and row.type != "market":
                self.broker.restore(_event_from_row(row))
                counts["restored"] += 1
            else:
                counts["awaiting_redelivery"] += 1
        if rows:
            log.info("reconciled %s orders: %s", mode, counts)
        return counts


def _order(session: Session, client_order_id: str, *, lock: bool = False) -> OrderRecord | None:
    query = select(OrderRecord).where(OrderRecord.client_order_id == client_order_id)
    if lock:
        query = query.with_for_update()
    return session.scalars(query).one_or_none()


def _status(reported: OrderStatus, filled: Decimal, qty: Decimal) -> str:
    if filled == qty:
        return OrderStatus.FILLED.value
    if reported in (OrderStatus.CANCELLED, OrderStatus.REJECTED):
        return reported.value
    return (OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.NEW).value


def _book_fill(session: Session, order: OrderRecord, side: Side, fill: BrokerFill) -> None:
    position = session.scalars(
        select(PositionRecord)
        .where(
            PositionRecord.symbol == order.symbol,
            PositionRecord.strategy == order.strategy,
            PositionRecord.mode == order.mode,
        )
        .with_for_update()
    ).one_or_none()
    if position is None:
        position = PositionRecord(
            symbol=order.symbol,
            strategy=order.strategy,
            mode=order.mode,
            qty=Decimal(0),
            avg_price=Decimal(0),
            realized_pnl=Decimal(0),
        )
        session.add(position)
    result = settle(
        Holding(position.qty, position.avg_price, position.realized_pnl),
        side,
        fill.qty,
        fill.price,
        fill.fee,
    )
    position.qty = result.holding.qty
    position.avg_price = result.holding.avg_price
    position.realized_pnl = result.holding.realized_pnl
    session.add(
        FillRecord(
            client_order_id=order.client_order_id,
            exchange_fill_id=fill.fill_id,
            qty=fill.qty,
            price=fill.price,
            fee=fill.fee,
            ts=fill.ts,
        )
    )
    session.add(
        LedgerEntry(
            ts=fill.ts,
            mode=order.mode,
            symbol=order.symbol,
            strategy=order.strategy,
            cash_delta=result.cash_delta,
            fee=result.fee,
            realized_pnl=result.realized_pnl,
            reason="fill",
            client_order_id=order.client_order_id,
        )
    )


def _event_from_row(row: OrderRecord) -> OrderEvent:
    ref = row.limit_price if row.type == "limit" else row.stop_price
    assert ref is not None  # limit and stop orders carry their price
    return OrderEvent(
        client_order_id=row.client_order_id,
        symbol=row.symbol,
        side=Side(row.side),
        type=row.type,
        qty=row.qty,
        limit_price=row.limit_price,
        stop_price=row.stop_price,
        ref_price=ref,
        strategy=row.strategy,
        mode="live" if row.mode == "live" else "paper",
        created_at=row.created_at,
    )

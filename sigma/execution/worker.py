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
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from typing import Any, NoReturn, TypeGuard, cast

from pydantic import ValidationError

from sigma.bus.base import CHANNEL_FILLS, CHANNEL_ORDER_STATUS, Delivery, PermanentError, PubSub
from sigma.domain import OrderStatus, Side
from sigma.execution.booking import Booked, accept_order, book_new_orders, book_report
from sigma.execution.broker import Broker, BrokerReport, Capability, settling
from sigma.execution.events import (
    CancelEvent,
    Mode,
    OrderEvent,
    OrderStatusEvent,
    account_fill,
)
from sigma.execution.follower import FollowerSettings, OrderFollower
from sigma.execution.reconcile import Reconcilable, VenueReconciler
from sigma.execution.settlement import Holding
from sigma.store.group_commit import GroupCommit, Shared
from sigma.store.handles import Connection, SessionFactory
from sigma.store.ledger import STALE_BOOKING, PositionKey, replace_unfilled_status
from sigma.store.models import OrderRecord
from sigma.store.orders import find_order, mark_dead_lettered, open_order_rows, order_values
from sigma.store.outage import database_away, one_line, outage_message
from sigma.store.pipeline import Plan
from sigma.store.types import quantize

log = logging.getLogger(__name__)

_TERMINAL = {OrderStatus.FILLED.value, OrderStatus.CANCELLED.value, OrderStatus.REJECTED.value}

AlertFn = Callable[[str, str, dict[str, Any]], None]


class Refused(PermanentError):
    """The worker refused an order event that can never be executed as sent (wrong mode,
    unknown symbol, zero quantity, a reused client order id): dead-lettered once, with the
    reason, never retried."""


@dataclass(frozen=True, slots=True)
class _Conflict:
    """The client order id is on record with another payload (what a transaction returns
    instead of booking)."""

    reason: str


# What a stored order must share with an event for the event to be a redelivery of it.
_PAYLOAD = ("symbol", "side", "type", "qty", "limit_price", "stop_price", "strategy", "mode")


def _conflict(conn: Connection, event: OrderEvent) -> _Conflict | None:
    """How the stored order with the event's client order id differs from the event; None
    when there is none, or it is the same order (a harmless redelivery)."""
    row = order_values(conn, event.client_order_id, _PAYLOAD)
    if row is None:
        return None
    differs = [
        f"{name} {stored} != {sent}"
        for name, stored in zip(_PAYLOAD, row, strict=True)
        if not _same(stored, sent := getattr(event, name))
    ]
    if not differs:
        return None
    return _Conflict(
        f"client order id {event.client_order_id} reused with another order: " + ", ".join(differs)
    )


def _same(stored: object, sent: object) -> bool:
    """Compare as the store keeps it: Decimals at its precision, enums by value."""
    if isinstance(sent, Decimal):
        return stored is not None and quantize(sent) == stored
    return stored == (sent.value if hasattr(sent, "value") else sent)


def parse_order_events(delivery: Delivery) -> tuple[list[OrderEvent], PermanentError | None]:
    """The order events in a delivery (one event, or an `OrderBatch`), and the error to raise
    once they are booked when some orders of the batch are malformed. A body that is no
    order event or batch at all can never succeed (PermanentError); a malformed order in a
    batch does not hold back the others."""
    malformed = f"malformed order event {delivery.message_id!r}"
    try:
        body = json.loads(delivery.body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PermanentError(f"{malformed}: body: not JSON ({exc})") from exc
    batched = isinstance(body, dict) and body.keys() == {"orders"}
    items = body["orders"] if batched else [body]
    if not isinstance(items, list) or not items:
        raise PermanentError(f"{malformed}: orders: a batch needs a list of orders")
    events: list[OrderEvent] = []
    problems: list[str] = []
    for n, item in enumerate(items):
        try:
            events.append(OrderEvent.model_validate(item))
        except ValidationError as exc:
            where = f"orders.{n}." if batched else ""
            problems += [
                f"{where}{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
                for e in exc.errors()
            ]
    if not events:
        raise PermanentError(f"{malformed}: {'; '.join(problems)}")
    if not problems:
        return events, None
    other = f"its other {len(events)} order(s) were booked"
    return events, PermanentError(f"{malformed}: {'; '.join(problems)} ({other})")


class OrderWorker:
    """Executes order events from the `orders` queue against `broker`."""

    def __init__(
        self,
        sessions: SessionFactory,
        broker: Broker,
        pubsub: PubSub | None = None,
        *,
        on_alert: AlertFn | None = None,
        follow: FollowerSettings | None = None,
        mode: Mode | None = None,
        symbols: Iterable[str] | None = None,
    ) -> None:
        """`mode` is the only mode whose orders the worker books: by default "paper" for a
        broker that settles in this process and "live" for a venue. A paper broker can never
        book live orders, so asking for that is an error. `symbols` are the only symbols it
        trades (None: any, for tests and tools)."""
        in_process = Capability.IN_PROCESS in broker.capabilities
        if mode == "live" and in_process:
            raise ValueError(f"broker {broker.name} settles paper orders; it cannot trade live")
        self.mode: Mode = mode or ("paper" if in_process else "live")
        self.symbols = None if symbols is None else frozenset(symbols)
        self.refused = 0
        self.sessions = sessions
        self.db = GroupCommit.bound_to(sessions)
        """Where the worker's bookings run (one transaction per batch of waiting orders)."""
        self.broker = broker
        self.pubsub = pubsub
        self.on_alert = on_alert or (lambda severity, message, details: None)
        self.processed = 0
        self.duplicates = 0
        self.positions: dict[PositionKey, Holding] = {}
        """Positions as this worker's bookings left them: with these, PostgreSQL books a
        batch of paper orders in one round trip (see `book_new_orders`)."""
        self.rebooked = 0
        """Batches booked again because what `positions` assumed no longer held."""
        self._reconciler: VenueReconciler | None = None
        self.stopping = asyncio.Event()
        """Set when the process stops: deliveries waiting for the database are let go."""
        self.outage_pause = 0.1
        """Seconds before the first new try of a delivery that found the database away;
        doubled per try up to `outage_pause_max`."""
        self.outage_pause_max = 5.0
        self.follower = OrderFollower(self, follow)
        """Follows the orders this worker books open until they are final, and cancels."""

    async def close(self) -> None:
        """Release the worker's database connections (after the queue stopped)."""
        await self.db.close()

    # --- the queue handler ------------------------------------------------------------------
    async def handle(self, delivery: Delivery) -> None:
        """Process one delivery (raises to have it retried or dead-lettered).

        The orders of a batch run side by side, so those on one position share a
        transaction. If one fails, the delivery fails after the others finished: the queue
        delivers it again and the booked ones are recognised by their ids.

        A failure because the database is away (`database_away`) is not the order's: the
        queue's few retries would run out during an outage and dead-letter orders the paper
        broker or the venue may already have executed. The worker holds the delivery and
        tries it again, with a growing pause and a warning naming the database, until the
        database is back; asked to stop meanwhile (`stopping`), it leaves the delivery
        unacknowledged (CancelledError), so the queue hands it to the next worker."""
        tries = 0
        while True:
            try:
                await self._handle(delivery)
                return
            except Exception as exc:
                if not database_away(exc):
                    raise
                tries += 1
                pause = min(self.outage_pause_max, self.outage_pause * 2 ** (tries - 1))
                log.warning(
                    "order event %s waits (try %d, again in %.2fs): %s",
                    delivery.message_id,
                    tries,
                    pause,
                    outage_message(exc, self.db.engine.url),
                )
            try:
                await asyncio.wait_for(self.stopping.wait(), pause)
            except TimeoutError:
                continue
            raise asyncio.CancelledError(
                f"stopping while order event {delivery.message_id} waits for the database"
            )

    async def _handle(self, delivery: Delivery) -> None:
        """One try at `handle`'s work."""
        try:
            cancel = CancelEvent.parse(delivery.body)
        except ValidationError as exc:
            raise PermanentError(f"malformed cancel {delivery.message_id!r}: {exc}") from exc
        if cancel is not None:
            await self.cancel(cancel)
            return
        try:
            events, rejected = parse_order_events(delivery)
        except PermanentError as exc:
            self._alert_refused(str(exc), {"message_id": delivery.message_id})
            raise
        if rejected is not None:
            self._alert_refused(str(rejected), {"message_id": delivery.message_id})
        outcomes = await asyncio.gather(*map(self.execute, events), return_exceptions=True)
        failed: BaseException | None = None
        for event, outcome in zip(events, outcomes, strict=True):
            if (
                delivery.final
                and self._gives_up_on(outcome)
                and await self._give_up(event, outcome, delivery.attempt)
            ):
                continue
            if isinstance(outcome, BaseException):
                if not database_away(outcome):  # `handle` says what it waits for
                    log.warning(
                        "order %s failed (attempt %d): %r",
                        event.client_order_id,
                        delivery.attempt,
                        outcome,
                    )
                # A failure that may pass is raised before a refusal: the delivery is then
                # retried, and the refused orders are refused again (their rows are final).
                if failed is None or (
                    isinstance(failed, PermanentError) and not isinstance(outcome, PermanentError)
                ):
                    failed = outcome
        if failed is not None:
            raise failed
        if rejected is not None:
            raise rejected

    def _gives_up_on(self, outcome: object) -> TypeGuard[Exception]:
        """Whether a last try that ended in `outcome` leaves an order to settle: a failure
        of a venue order that may pass (not a refusal, whose row is final already; not the
        database away, which `handle` waits for). A paper order is on record only together
        with its fills, so none of its is left open."""
        return (
            isinstance(outcome, Exception)
            and not isinstance(outcome, PermanentError)
            and not database_away(outcome)
            and settling(self.broker) is None
        )

    async def _give_up(self, event: OrderEvent, error: Exception, attempts: int) -> bool:
        """Settle a venue order the queue is giving up on (its last try failed with `error`)
        rather than leave it open on record with nothing to finish it and the bot waiting.

        The venue is asked once more. An order it holds is booked: True, the delivery
        succeeded after all. Otherwise the order stays open on record, marked dead-lettered,
        and the follower looks it up until the venue answers: booked if the venue holds it,
        rejected once the venue says it does not after a placement sent before the give-up
        can no longer land (`OrderFollower.refresh`): a venue that does not hold the order
        now may still be processing the last placement, which failed with its outcome
        unknown. The bot is told and an alert says what happened and where; False: the
        delivery is dead-lettered."""
        coid, venue = event.client_order_id, self.broker.name
        reason = f"given up after {attempts} attempts at {venue}: {one_line(error)}"
        key = (event.symbol, event.strategy, event.mode)
        try:
            report = await self.broker.lookup(coid, event.symbol)
        except Exception as exc:
            report, unknown = None, f"whether {venue} holds it is unknown ({one_line(exc)})"
        else:
            unknown = f"{venue} does not hold it yet"
        if report is not None:
            await self.book(event.symbol, event.side, event.strategy, event.mode, report)
            log.warning("order %s found at %s on its last try; booked", coid, venue)
            return True
        await self.db.run(partial(mark_dead_lettered, client_order_id=coid), key=key)
        self.follower.dead_lettered(event)
        message = (
            f"order {coid} {reason}; {unknown}: it stays open on record and is looked up "
            f"until {venue} answers: booked if {venue} holds it, rejected once {venue} says it "
            "does not"
        )
        log.warning("%s", message)
        details = {"client_order_id": coid, "symbol": event.symbol, "venue": venue}
        self.on_alert("critical", message, details)
        await self._announce(coid, event.symbol, "dead_lettered", reason)
        return False

    async def reject_unplaced(self, client_order_id: str, key: PositionKey, reason: str) -> bool:
        """Record an open order the venue does not hold, and never will, as rejected with
        `reason`, alert and tell the bot (its reservation is released); False, and nothing
        done, when the order is no longer new and unfilled (booked meanwhile)."""
        rejected = partial(_reject_unplaced, client_order_id=client_order_id)
        if not await self.db.run(rejected, key=key):
            return False
        symbol = key[0]
        message = f"order {client_order_id} rejected: {reason}"
        log.warning("%s", message)
        details = {"client_order_id": client_order_id, "symbol": symbol, "venue": self.broker.name}
        self.on_alert("warning", message, details)
        await self._announce(client_order_id, symbol, OrderStatus.REJECTED.value, reason)
        return True

    async def _announce(self, client_order_id: str, symbol: str, status: str, reason: str) -> None:
        """Tell the bot and the dashboards an order's new status (best effort: the store
        holds the truth)."""
        if self.pubsub is None:
            return
        message = OrderStatusEvent(
            client_order_id=client_order_id,
            symbol=symbol,
            status=status,
            reason=reason,
            ts=datetime.now(UTC),
        )
        try:
            await self.pubsub.publish(CHANNEL_ORDER_STATUS, message.to_bytes())
        except Exception:
            log.warning("could not announce the %s order %s", status, client_order_id)

    async def execute(self, event: OrderEvent) -> Booked | None:
        """Record, send and book one order; None when it was already finished.

        The paper broker settles in this process, so its orders are recorded and booked in
        one transaction; an exchange sees an order only after it is on record.

        Raises `Refused` for an order it must not execute (see `refusal`), after recording it
        as rejected where it can have an order row and raising an alert."""
        key = (event.symbol, event.strategy, event.mode)  # bookings of a position stay in order
        reason = self.refusal(event)
        if reason is not None:
            await self._refuse(event, reason, key)
        settles = settling(self.broker)
        if settles is not None:
            # The paper broker returns its earlier outcome for an id it knows; an id it does
            # not know but the store does may be a reuse, whose placing is undone below.
            fresh = await self.broker.lookup(event.client_order_id, event.symbol) is None
            report = await self.broker.place(event)
            booked: Booked | _Conflict | None = await self._book_settled(event, report, key)
            if booked is None:
                self.positions.pop(key, None)  # booked without this worker's plan
                known = partial(self._book_known, event=event, report=report)
                booked = await self.db.run(known, key=key)
            if isinstance(booked, _Conflict):
                if fresh:
                    settles.forget(event.client_order_id)
                self._refused(event, booked.reason)
        elif isinstance(
            status := await self.db.run(partial(self._accept, event=event), key=key), _Conflict
        ):
            self._refused(event, status.reason)
        elif status in _TERMINAL:
            booked = None
        else:
            report = await self.broker.place(event)
            booked = await self.db.run(partial(self._record, report=report), key=key)
        if booked is None:
            self.duplicates += 1
            log.info("order %s already finished; redelivery ignored", event.client_order_id)
            return None
        await self._booked(event.symbol, event.side, event.strategy, event.mode, report, booked)
        self.follower.follow(event, booked.status, report.exchange_order_id)
        return booked

    def refusal(self, event: OrderEvent) -> str | None:
        """Why the worker must not execute `event` at all, or None.

        A mode its broker does not trade would book paper fills as live ones (or send paper
        orders to a venue); a symbol it does not trade was never risk-checked for it; a
        quantity or price that rounds to zero at the store's precision would be stored as 0
        and booked as a fill of nothing."""
        if event.mode != self.mode:
            return f"{event.mode} order on a {self.mode} worker ({self.broker.name})"
        if self.symbols is not None and event.symbol not in self.symbols:
            return f"symbol {event.symbol} is not traded here"
        for name in ("qty", "limit_price", "stop_price", "ref_price"):
            value: Decimal | None = getattr(event, name)
            if value is None:
                continue
            try:
                stored = quantize(value)
            except ValueError:
                return f"{name} {value} does not fit the store"
            if stored <= 0:
                return f"{name} {value} rounds to zero"
        return None

    async def _refuse(self, event: OrderEvent, reason: str, key: PositionKey) -> NoReturn:
        """Record a refused order as rejected (when its values fit an order row), tell the
        dashboards, alert and raise `Refused`."""
        try:
            for value in (event.qty, event.limit_price, event.stop_price):
                if value is not None:
                    quantize(value)
        except ValueError:
            pass  # no row can hold it: the dead-letter reason is the record
        else:
            status = await self.db.run(partial(self._reject, event=event), key=key)
            if not isinstance(status, _Conflict):
                rejected = OrderStatus.REJECTED.value
                await self._announce(event.client_order_id, event.symbol, rejected, reason)
        self._refused(event, reason)

    def _refused(self, event: OrderEvent, reason: str) -> NoReturn:
        """Count, alert and raise the refusal of `event`."""
        self.refused += 1
        details = {"client_order_id": event.client_order_id, "symbol": event.symbol}
        self._alert_refused(f"order {event.client_order_id} refused: {reason}", details)
        raise Refused(f"order {event.client_order_id} refused: {reason}")

    def _alert_refused(self, message: str, details: dict[str, Any]) -> None:
        log.warning("%s", message)
        self.on_alert("warning", message, details)

    async def cancel(self, event: CancelEvent) -> str:
        """Cancel an order at the broker and book the outcome; the order's status. Raises
        (to have the request delivered again) while the order is not on record yet: its own
        message may still be on its way."""
        status = await self.follower.cancel(event.client_order_id, event.symbol, event.reason)
        if status is None:
            raise LookupError(f"cancel of {event.client_order_id}: no such order on record yet")
        return status

    async def _book_settled(
        self, event: OrderEvent, report: BrokerReport, key: PositionKey
    ) -> Booked | None:
        """Book an order the broker settled; None when its id is already on record."""
        placed = Shared(self._book_placed, (event, report))
        booked: Booked | None
        try:
            booked = await self.db.run(placed, key=key)
        except STALE_BOOKING as exc:
            # A one-round-trip booking whose assumption failed (a redelivered id, a position
            # another writer changed): nothing of it was written. Without the position in
            # `positions`, the next plan reads the rows as they stand.
            self.rebooked += 1
            self.positions.pop(key, None)
            log.info("booking %s again from the stored rows: %s", event.client_order_id, exc)
            booked = await self.db.run(placed, key=key)
        except Exception:
            # The plan may have learned the position from a booking that never committed.
            self.positions.pop(key, None)
            raise
        return booked

    async def book(
        self, symbol: str, side: Side, strategy: str, mode: str, report: BrokerReport
    ) -> Booked:
        """Store a broker report and announce what changed."""
        self.positions.pop((symbol, strategy, mode), None)  # booked without this worker's plan
        booked = await self.db.run(
            partial(self._record, report=report), key=(symbol, strategy, mode)
        )
        await self._booked(symbol, side, strategy, mode, report, booked)
        self.follower.seen(report.client_order_id, booked.status, report.exchange_order_id)
        return booked

    async def _booked(
        self,
        symbol: str,
        side: Side,
        strategy: str,
        mode: str,
        report: BrokerReport,
        booked: Booked,
    ) -> None:
        """Count a booking, alert on a rejection and tell the bot and dashboards.

        The database already holds the truth, so a bus failure here is logged, not retried
        (retrying would not trade twice, but would delay every other order)."""
        self.processed += 1
        if booked.status == OrderStatus.REJECTED.value:
            self.on_alert(
                "warning",
                f"order {report.client_order_id} rejected by {self.broker.name}: {report.reason}",
                {"symbol": symbol, "strategy": strategy},
            )
        if self.pubsub is None:
            return
        now = datetime.now(UTC)
        order = (report.client_order_id, symbol, side, strategy, mode)
        currencies = (report.base_asset, report.quote_asset)
        messages = [
            (CHANNEL_FILLS, account_fill(*order, f, currencies).to_bytes()) for f in booked.fills
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
            await self.pubsub.publish_many(messages)
        except Exception:
            log.warning("could not announce order %s", report.client_order_id, exc_info=True)

    # --- database ---------------------------------------------------------------------------
    # Each runs inside a transaction of the group commit (see `sigma.store.group_commit`).
    @staticmethod
    def _accept(conn: Connection, *, event: OrderEvent) -> str | _Conflict:
        """Insert the order row if it is new; returns the order's current status, or the
        conflict when its client order id is on record with another payload."""
        return _conflict(conn, event) or accept_order(conn, event)

    @staticmethod
    def _reject(conn: Connection, *, event: OrderEvent) -> str | _Conflict:
        """Record a refused order as rejected; an order already on record under its id is
        left as it is (a redelivered refusal, or a reuse of another order's id)."""
        if (conflict := _conflict(conn, event)) is not None:
            return conflict
        status = accept_order(conn, event)
        if status == OrderStatus.NEW.value:
            replace_unfilled_status(
                conn, event.client_order_id, expected=status, status=OrderStatus.REJECTED.value
            )
            return OrderStatus.REJECTED.value
        return status

    def _book_placed(
        self, dialect: str, placed: list[tuple[OrderEvent, BrokerReport]]
    ) -> Plan[list[Booked | None]]:
        """Record and book orders the broker has settled, many per round trip; None for an
        order whose client order id is known (see `_book_known`)."""
        return book_new_orders(dialect, placed, self.positions)

    @staticmethod
    def _book_known(
        conn: Connection, *, event: OrderEvent, report: BrokerReport
    ) -> Booked | _Conflict | None:
        """Book the report of an order already on record (a redelivery, or a resting paper
        order); None when the order was already finished, the conflict when its id is on
        record with another payload (nothing is booked)."""
        if (conflict := _conflict(conn, event)) is not None:
            return conflict
        if accept_order(conn, event) in _TERMINAL:
            return None
        return book_report(conn, report)

    @staticmethod
    def _record(conn: Connection, *, report: BrokerReport) -> Booked:
        """Book the report's new fills, the position, the ledger and the order."""
        return book_report(conn, report)

    # --- resting paper orders and restarts --------------------------------------------------
    async def on_price(self, symbol: str, price: Decimal) -> list[Booked]:
        """Let the paper broker fill resting orders at `price` and book them."""
        broker = settling(self.broker)
        if broker is None:
            return []
        out = []
        for report in broker.on_price(symbol, price):
            meta = await asyncio.to_thread(self._meta, report.client_order_id)
            out.append(await self.book(*meta, report))
        return out

    def _meta(self, client_order_id: str) -> tuple[str, Side, str, str]:
        with self.sessions() as session:
            order = find_order(session, client_order_id)
            assert order is not None  # the broker only knows orders the worker recorded
            return order.symbol, Side(order.side), order.strategy, order.mode

    async def reconcile(self, mode: str) -> dict[str, int]:
        """Bring open orders of `mode` in line with the broker after a restart.

        Fills the broker has and the database lacks are booked. A resting paper order is
        handed back to the (fresh) paper broker. An order the broker never saw stays open:
        its event was not acknowledged, so the queue delivers it again; or it was
        dead-lettered, and the follower settles it. A broker with
        `Capability.RECONCILE` (a venue) is then compared as a whole: open orders, trades and
        balances (`sigma.execution.reconcile`); the counts of both are returned.
        """
        with self.sessions() as session:
            rows = open_order_rows(session, mode)
        counts = {
            "open": len(rows),
            "booked": 0,
            "restored": 0,
            "awaiting_redelivery": 0,
            "dead_lettered": 0,
        }
        resting = settling(self.broker)
        for row in rows:
            report = await self.broker.lookup(row.client_order_id, row.symbol)
            if report is not None:
                await self.book(row.symbol, Side(row.side), row.strategy, row.mode, report)
                counts["booked"] += 1
            elif resting is not None and row.type != "market":
                resting.restore(_event_from_row(row))
                counts["restored"] += 1
            elif row.dead_lettered_at is not None:
                counts["dead_lettered"] += 1  # the follower settles it (`_give_up`)
            else:
                counts["awaiting_redelivery"] += 1
        if rows:
            log.info("reconciled %s orders: %s", mode, counts)
        if Capability.RECONCILE in self.broker.capabilities:
            counts |= await self._venue_reconciler().run(mode)
        return counts

    def _venue_reconciler(self) -> VenueReconciler:
        """One per worker: it remembers which unknown orders it has raised already."""
        if self._reconciler is None:
            self._reconciler = VenueReconciler(self, cast(Reconcilable, self.broker))
        return self._reconciler

    async def reconcile_every(self, mode: str, seconds: float, stop: asyncio.Event) -> None:
        """Reconcile `mode` with the venue every `seconds` until `stop` is set (a broker
        without an account to compare, the paper broker, just waits). A run that fails is
        logged and alerted, and the next one tries again."""
        if Capability.RECONCILE not in self.broker.capabilities:
            await stop.wait()
            return
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), seconds)
            except TimeoutError:
                try:
                    await self.reconcile(mode)
                except Exception as exc:
                    log.exception("reconciliation of %s failed", mode)
                    self.on_alert("warning", f"reconciliation failed: {exc!r}", {"mode": mode})


def _reject_unplaced(conn: Connection, *, client_order_id: str) -> bool:
    """Record an order the venue never took as rejected (an order with fills keeps them);
    whether it was."""
    return replace_unfilled_status(
        conn, client_order_id, expected=OrderStatus.NEW.value, status=OrderStatus.REJECTED.value
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
        created_at=row.decided_at or row.created_at,
    )

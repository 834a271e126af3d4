"""OrderFollower: follows every open order until it is final, and cancels orders.

The worker places an order and books the venue's answer; an order that rests or fills in parts
is then the follower's. It knows the open orders (those of the `orders` table when it starts,
and each order the worker books that is not final) and books every change through the
worker's booking (`OrderWorker.book`), which adds a fill once however often it is reported, so
partial fills are booked as they happen, each with its fee and fee asset.

Two sources, one truth:

- the venue's user-data stream, where the broker has one (`Capability.USER_STREAM`): an event
  for one of our orders only says *which* order changed; the follower then asks the venue for
  the order (`lookup`) and books that. A lost, duplicated or reordered event cannot book a
  wrong state.
- polling with `lookup`, paced by a request budget: every `poll_seconds` while the stream is
  down or the broker has none, every `stream_poll_seconds` as a safety net while it is up. A
  stream that comes back is trusted only after `stream_settle_seconds` without error, and
  then every order is looked up once: what happened while it was down is caught up.

An order the venue acknowledged (it gave the order its id) and no longer knows when asked
`LOST_AFTER` times in a row (a venue restarted without its state) is booked cancelled with the
reason and raised as a critical alert: left open, nothing would ever finish it and the bot
would wait for it for good. So is, rejected, an order whose event was dead-lettered while
whether the venue took it was unknown (`dead_lettered`): no delivery of it remains, so a venue
that says `LOST_AFTER` times in a row that it does not hold it, `unplaced_after` seconds or
more after the give-up (when a placement sent before it can no longer land), never will;
while the venue cannot answer, it stays open.

It also cancels: one order (a `CancelEvent` from the strategy, or a resting limit order older
than `order_timeout`), and everything when the kill switch turns on (`cancel_all` at the
venue, the results booked, an alert with the count). Lookups and cancels of one order never
overlap, so an older answer can never be booked over a newer one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, cast

from sigma.domain import OrderStatus, OrderType, Side
from sigma.execution.broker import BrokerReport, Capability, OrderUpdate, StreamingBroker
from sigma.execution.events import OrderEvent
from sigma.store.control import KILL_SWITCH, get_flag
from sigma.store.models import OrderRecord
from sigma.store.orders import find_order, open_order_rows

if TYPE_CHECKING:
    from sigma.execution.worker import OrderWorker

log = logging.getLogger(__name__)

FINAL = frozenset(
    {OrderStatus.FILLED.value, OrderStatus.CANCELLED.value, OrderStatus.REJECTED.value}
)
#: the longest pause after failures (lookups, the stream), however many in a row
_MAX_PAUSE = 60.0
#: lookups in a row (`poll_seconds` apart) that must find an acknowledged order missing
#: before it is booked lost: one miss may be a venue's lag between its order books
LOST_AFTER = 2

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class FollowerSettings:
    """How the follower polls, and when it cancels by itself."""

    #: seconds between lookups of an open order while no stream tells of its changes
    poll_seconds: float = 1.0
    #: seconds between lookups of an open order while the user-data stream is up
    stream_poll_seconds: float = 30.0
    #: the follower's request budget: lookups and cancels per second, all orders together
    #: (Binance weighs a lookup 4 of 6,000 a minute, 25 with its trades; Upbit allows 30
    #: order requests a second)
    requests_per_second: float = 2.0
    #: a stream (re)connected this long without error is trusted (polling slows down)
    stream_settle_seconds: float = 1.0
    #: a resting limit order older than this (from its `created_at`) is cancelled; None: never
    order_timeout: float | None = None
    #: seconds between readings of the kill switch flag
    kill_switch_seconds: float = 1.0
    #: the pause after a failure (a lookup after its retries, the stream), doubled per
    #: failure in a row up to a minute
    retry_seconds: float = 1.0
    #: seconds after an order's event was dead-lettered before the venue's saying it does not
    #: hold the order settles it rejected: a placement sent before the give-up (timed out at
    #: a slow venue) may still reach its matching engine, until the venue refuses it as too
    #: old (Binance: past its recvWindow, 60 s at most)
    unplaced_after: float = 60.0

    def __post_init__(self) -> None:
        positive = (
            self.poll_seconds,
            self.stream_poll_seconds,
            self.requests_per_second,
            self.kill_switch_seconds,
            self.retry_seconds,
        )
        if min(positive) <= 0 or min(self.stream_settle_seconds, self.unplaced_after) < 0:
            raise ValueError(f"bad follower settings {self}")
        if self.order_timeout is not None and self.order_timeout <= 0:
            raise ValueError(f"order_timeout must be > 0, got {self.order_timeout}")


@dataclass
class _Open:
    """An open order the follower looks after."""

    client_order_id: str
    symbol: str
    side: Side
    strategy: str
    mode: str
    type: str
    created_at: datetime
    exchange_order_id: str = ""
    cancel_sent: bool = False
    #: monotonic time of its next lookup
    due: float = 0.0
    #: lookups in a row that did not find it at the venue
    missing: int = 0
    #: when its event was dead-lettered with the venue's answer unknown (no delivery will
    #: place it again; None: not dead-lettered)
    dead_lettered_at: datetime | None = None

    @classmethod
    def of(cls, row: OrderRecord) -> _Open:
        """The open order a stored row describes."""
        return cls(
            row.client_order_id,
            row.symbol,
            Side(row.side),
            row.strategy,
            row.mode,
            row.type,
            row.created_at,
            row.exchange_order_id or "",
            dead_lettered_at=row.dead_lettered_at,
        )

    @property
    def dead_lettered(self) -> bool:
        """Whether its event was dead-lettered with the venue's answer unknown."""
        return self.dead_lettered_at is not None

    @property
    def key(self) -> tuple[str, str, str]:
        """Its position's key: (symbol, strategy, mode)."""
        return self.symbol, self.strategy, self.mode


class _Budget:
    """Spaces requests at least ``1 / rate`` seconds apart (a reservation per caller, so
    concurrent callers queue instead of bursting)."""

    def __init__(self, rate: float, clock: Callable[[], float], sleep: Sleep) -> None:
        self.gap = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._next = clock()

    async def take(self) -> None:
        now = self._clock()
        start = max(now, self._next)
        self._next = start + self.gap
        if start > now:
            await self._sleep(start - now)


@dataclass
class FollowerCounts:
    """What the follower did (for logs, metrics and tests)."""

    lookups: int = 0
    stream_updates: int = 0
    booked: int = 0
    cancels: int = 0
    timeouts: int = 0
    errors: int = 0
    kill_switch_cancelled: int = 0


class OrderFollower:
    """Follows the open orders of `worker` at its broker (see the module docstring)."""

    def __init__(
        self,
        worker: OrderWorker,
        settings: FollowerSettings | None = None,
        *,
        symbols: Sequence[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.worker = worker
        self.settings = settings or FollowerSettings()
        self.symbols = None if symbols is None else list(symbols)
        """The symbols `cancel_all` covers (None: every symbol the broker trades)."""
        self.open: dict[str, _Open] = {}
        self.counts = FollowerCounts()
        self._clock = clock
        self._now = now
        self._sleep = sleep
        self._budget = _Budget(self.settings.requests_per_second, clock, sleep)
        self._locks: dict[str, asyncio.Lock] = {}
        self._by_exchange_id: dict[str, str] = {}
        self._cancel_wanted: dict[str, str] = {}
        self._stream_since: float | None = None
        self._was_up = False
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[object]] = set()

    @property
    def broker(self) -> StreamingBroker:
        """The worker's broker (typed with the stream, which only USER_STREAM brokers have)."""
        return cast(StreamingBroker, self.worker.broker)

    @property
    def stream_up(self) -> bool:
        """The user-data stream has been connected for `stream_settle_seconds` without error."""
        since = self._stream_since
        return since is not None and self._clock() - since >= self.settings.stream_settle_seconds

    # --- what is open -----------------------------------------------------------------------
    async def load(self, mode: str) -> int:
        """Follow the open orders of `mode` on record (at start, and before a cancel-all);
        how many there are."""
        rows = await asyncio.to_thread(self._open_rows, mode)
        for row in rows:
            if row.client_order_id not in self.open:
                self._add(_Open.of(row))
        return len(rows)

    def _open_rows(self, mode: str) -> list[OrderRecord]:
        with self.worker.sessions() as session:
            return open_order_rows(session, mode)

    def follow(self, event: OrderEvent, status: str, exchange_order_id: str | None) -> None:
        """The worker booked `event` with `status`: follow it while it is open. Its first
        lookup is soon, whatever the stream says: a change between the placement's answer and
        now may have been streamed before the follower knew the order."""
        if status in FINAL:
            self._forget(event.client_order_id)
            return
        self._following(event)
        self.seen(event.client_order_id, status, exchange_order_id)
        reason = self._cancel_wanted.pop(event.client_order_id, None)
        if reason is not None:  # its cancel came while it was being placed
            self._spawn(self.cancel(event.client_order_id, event.symbol, reason))
        self._wake.set()

    def dead_lettered(self, event: OrderEvent) -> None:
        """The worker gave up on `event` without learning whether the venue took it: follow
        it until the venue answers (see the module docstring)."""
        known = self._following(event)
        known.dead_lettered_at = known.dead_lettered_at or self._now()
        self._wake.set()

    def _following(self, event: OrderEvent) -> _Open:
        """The followed order of `event` (added if new), its next lookup soon."""
        known = self.open.get(event.client_order_id)
        if known is None:
            known = _Open(
                event.client_order_id,
                event.symbol,
                event.side,
                event.strategy,
                event.mode,
                event.type.value,
                # Its time-out counts from now (wall clock): the event carries the market time
                # it was decided at, which a replay's market holds behind the wall clock.
                self._now(),
            )
            self._add(known)
        known.due = self._clock() + self.settings.poll_seconds
        return known

    def seen(self, client_order_id: str, status: str, exchange_order_id: str | None) -> None:
        """A booking of the order left it `status` (called by the worker for every booking)."""
        if status in FINAL:
            self._forget(client_order_id)
            return
        known = self.open.get(client_order_id)
        if known is not None and exchange_order_id and not known.exchange_order_id:
            known.exchange_order_id = exchange_order_id
            self._by_exchange_id[exchange_order_id] = client_order_id

    def _add(self, order: _Open) -> None:
        self.open[order.client_order_id] = order
        if order.exchange_order_id:
            self._by_exchange_id[order.exchange_order_id] = order.client_order_id

    def _forget(self, client_order_id: str) -> None:
        order = self.open.pop(client_order_id, None)
        if order is not None:
            self._by_exchange_id.pop(order.exchange_order_id, None)
        self._locks.pop(client_order_id, None)

    def _lock(self, client_order_id: str) -> asyncio.Lock:
        return self._locks.setdefault(client_order_id, asyncio.Lock())

    # --- looking up -------------------------------------------------------------------------
    async def refresh(self, client_order_id: str) -> str | None:
        """Look the order up at the broker and book what changed; its status afterwards, or
        None when it is not followed (any more) or the broker does not know it."""
        async with self._lock(client_order_id):
            order = self.open.get(client_order_id)
            if order is None:
                return None
            order.due = self._clock() + self._interval()
            await self._budget.take()
            self.counts.lookups += 1
            report = await self.worker.broker.lookup(client_order_id, order.symbol)
            if report is None and (order.exchange_order_id or order.dead_lettered):
                return await self._missing(order)
            if report is None:
                # Recorded, never placed (the worker died in between): the queue delivers
                # its event again and the worker follows it once placed.
                log.warning("order %s is not at %s", client_order_id, self.worker.broker.name)
                self._forget(client_order_id)
                return None
            order.missing = 0
            return await self._book(order, report)

    async def _missing(self, order: _Open) -> str | None:
        """The venue does not know an order it acknowledged, or one whose event was
        dead-lettered: looked up again at the next poll, and once `LOST_AFTER` lookups in a
        row missed it, booked cancelled with a critical alert (acknowledged) or, once
        `unplaced_after` has passed since its give-up, rejected (never placed;
        `OrderWorker.reject_unplaced`); its status then, else None."""
        order.missing += 1
        venue, coid = self.worker.broker.name, order.client_order_id
        where = f"order {coid} ({order.exchange_order_id or 'no venue id'} at {venue})"
        if order.missing < LOST_AFTER:
            log.warning("%s not found at %s; asking again", where, venue)
            return None
        if not order.exchange_order_id:
            assert order.dead_lettered_at is not None  # `refresh` asks only then
            if self._now() - order.dead_lettered_at < timedelta(
                seconds=self.settings.unplaced_after
            ):
                log.warning("%s not found at %s; its placement may still land", where, venue)
                return None
            reason = (
                f"{venue} does not hold it (not found {order.missing} times in a row after "
                "its order event was dead-lettered): it was never placed"
            )
            rejected = await self.worker.reject_unplaced(coid, order.key, reason)
            self._forget(coid)
            return OrderStatus.REJECTED.value if rejected else None
        reason = (
            f"{venue} no longer knows order {order.exchange_order_id} (not found {order.missing} "
            "times in a row): a venue restarted without its state, or the order was purged"
        )
        message = f"{where} booked cancelled: {reason}"
        log.error("%s", message)
        self.worker.on_alert("critical", message, {"client_order_id": coid, "venue": venue})
        lost = BrokerReport(
            coid, OrderStatus.CANCELLED, exchange_order_id=order.exchange_order_id, reason=reason
        )
        return await self._book(order, lost)

    async def _book(self, order: _Open, report: BrokerReport) -> str:
        booked = await self.worker.book(
            order.symbol, order.side, order.strategy, order.mode, report
        )
        self.counts.booked += 1
        return booked.status

    def _interval(self) -> float:
        s = self.settings
        return s.stream_poll_seconds if self.stream_up else s.poll_seconds

    async def poll_once(self) -> int:
        """Cancel the orders that timed out and look up those that are due; how many were
        looked at. A broker that settles in this process is never polled."""
        now = self._clock()
        up = self.stream_up
        if up and not self._was_up:
            # Back on the stream: what it missed while it was down is looked up once now.
            for order in self.open.values():
                order.due = now
        self._was_up = up
        done = 0
        poll = Capability.IN_PROCESS not in self.worker.broker.capabilities
        for coid, order in list(self.open.items()):
            if self._timed_out(order):
                self.counts.timeouts += 1
                timeout = self.settings.order_timeout
                await self.cancel(coid, order.symbol, f"open longer than {timeout:g}s")
                done += 1
            elif poll and order.due <= now:
                await self.refresh(coid)
                done += 1
        return done

    def _timed_out(self, order: _Open) -> bool:
        timeout = self.settings.order_timeout
        if timeout is None or order.cancel_sent or order.type != OrderType.LIMIT.value:
            return False
        return (self._now() - order.created_at).total_seconds() >= timeout

    # --- cancelling -------------------------------------------------------------------------
    async def cancel(self, client_order_id: str, symbol: str, reason: str = "") -> str | None:
        """Cancel the order at the broker and book the outcome (cancelled with any fills
        made first, or how it finished when it finished first); its status afterwards.
        None when the order is not on record (yet)."""
        async with self._lock(client_order_id):
            row = await asyncio.to_thread(self._row, client_order_id)
            if row is None:
                return None
            if row.status in FINAL:
                self._forget(client_order_id)
                return row.status
            order = self.open.get(client_order_id) or _Open.of(row)
            self._add(order)
            await self._budget.take()
            self.counts.cancels += 1
            order.cancel_sent = True
            log.info("cancelling order %s: %s", client_order_id, reason or "requested")
            report = await self.worker.broker.cancel(client_order_id, symbol)
            if report is None:
                # On record, not at the broker: it is being placed now, or its event waits
                # to be delivered again. Cancel it as soon as the worker has placed it.
                self._cancel_wanted[client_order_id] = reason
                return row.status
            # Upbit cancels asynchronously: an order still open is looked up again soon.
            order.due = self._clock() + self.settings.poll_seconds
            return await self._book(order, report)

    def _row(self, client_order_id: str) -> OrderRecord | None:
        with self.worker.sessions() as session:
            return find_order(session, client_order_id)

    async def cancel_all(self, mode: str, reason: str) -> int:
        """Cancel every open order at the broker (on `symbols`), book the results and raise
        an alert with the count; how many the broker cancelled."""
        count = await self.worker.broker.cancel_all(self.symbols)
        self.counts.kill_switch_cancelled += count
        await self.load(mode)
        for coid in list(self.open):
            await self.refresh(coid)
        message = f"{reason}: cancelled {count} open orders at {self.worker.broker.name}"
        log.warning(message)
        self.worker.on_alert("critical", message, {"cancelled": count, "mode": mode})
        return count

    # --- running ----------------------------------------------------------------------------
    async def run(self, mode: str, stop: asyncio.Event) -> None:
        """Follow the open orders of `mode` until `stop`: polling, the user-data stream
        where the broker has one, and the kill switch."""
        await self.load(mode)
        loops = [self._poll_loop(stop), self._kill_switch_loop(mode, stop)]
        if Capability.USER_STREAM in self.worker.broker.capabilities:
            loops.append(self._stream_loop(stop))
        tasks = [asyncio.create_task(loop) for loop in loops]
        try:
            await stop.wait()
        finally:
            for task in (*tasks, *self._tasks):
                task.cancel()
            for task in (*tasks, *self._tasks):
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def _spawn(self, work: Awaitable[object]) -> None:
        async def guarded() -> object:
            try:
                return await work
            except Exception:
                self.counts.errors += 1
                log.exception("order follower: background work failed")
                return None

        task = asyncio.create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _pause(self, failures: int, stop: asyncio.Event) -> None:
        delay = min(_MAX_PAUSE, self.settings.retry_seconds * 2 ** (failures - 1))
        await self._wait_stop(stop, delay)

    async def _wait(self, stop: asyncio.Event, seconds: float) -> None:
        """Wait `seconds`, less when stopped or woken (a new order, the stream dropped)."""
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def _poll_loop(self, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            self._wake.clear()
            try:
                await self.poll_once()
                failures = 0
            except Exception:
                # The client already waited out rate limits (Retry-After) and retried; what
                # still fails pauses all polling, longer each time, so a venue that refuses
                # is not pressed further (Binance bans an address that keeps sending).
                failures += 1
                self.counts.errors += 1
                log.exception("order follower: polling failed (%d in a row)", failures)
                await self._pause(failures, stop)
                continue
            await self._wait(stop, self._next_due())

    def _next_due(self) -> float:
        """Seconds until the next lookup or time-out is due (at most a poll interval)."""
        now = self._clock()
        wait = self.settings.poll_seconds
        if self._stream_since is not None and not self.stream_up:
            # Settling: look again when the stream counts as up, to catch up at once.
            wait = min(wait, self._stream_since + self.settings.stream_settle_seconds - now)
        for order in self.open.values():
            wait = min(wait, order.due - now)
        return max(wait, 0.01)

    async def _stream_loop(self, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            if self._stream_since is None:
                self._stream_since = self._clock()
            try:
                updates = await self.broker.watch_updates()
            except Exception as exc:
                self._stream_since = None
                failures += 1
                self.counts.errors += 1
                log.warning("order follower: user stream dropped (%r); polling meanwhile", exc)
                self._wake.set()  # poll at the fast pace from now
                await self._pause(failures, stop)
                continue
            failures = 0
            await self._on_updates(updates)

    async def _on_updates(self, updates: list[OrderUpdate]) -> None:
        wanted: list[str] = []
        for update in updates:
            coid = update.client_order_id
            if coid not in self.open:
                coid = self._by_exchange_id.get(update.exchange_order_id, "")
            if coid and coid not in wanted:
                wanted.append(coid)
        self.counts.stream_updates += len(updates)
        for coid in wanted:
            try:
                await self.refresh(coid)
            except Exception:
                # Polling looks it up again; the stream must keep being read meanwhile.
                self.counts.errors += 1
                log.exception("order follower: lookup of %s after a stream event failed", coid)

    async def _kill_switch_loop(self, mode: str, stop: asyncio.Event) -> None:
        on = False
        while not stop.is_set():
            try:
                now_on = await asyncio.to_thread(self._kill_switch)
                if now_on and not on:
                    # Also when it is on at start: a cancel-all of nothing costs little, an
                    # order left open after a halt may cost a lot.
                    await self.cancel_all(mode, "kill switch on")
                on = now_on
            except Exception:
                self.counts.errors += 1
                log.exception("order follower: the kill switch could not be acted on")
            await self._wait_stop(stop, self.settings.kill_switch_seconds)

    async def _wait_stop(self, stop: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)

    def _kill_switch(self) -> bool:
        with self.worker.sessions() as session:
            return get_flag(session, KILL_SWITCH).enabled

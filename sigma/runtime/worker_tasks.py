"""What runs beside the OrderWorker in its process: the order queue consumed once the worker
has reconciled with its broker, each order event handled with a beat in the metrics, the
heartbeat (metrics, `worker_heartbeats`, the order queue's depth), and the prices that let the
paper broker fill resting orders."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from sigma.bus.base import CHANNEL_PRICE_UPDATE, QUEUE_ORDERS, PubSub, WorkQueue
from sigma.execution.broker import address, settling
from sigma.execution.worker import OrderWorker
from sigma.ops.metrics import Metrics
from sigma.runtime.supervisor import Backoff
from sigma.runtime.tasks import consume_until, decode_or_none
from sigma.store import heartbeats
from sigma.store.handles import Session, SessionFactory
from sigma.store.outage import database_away, one_line, outage_message

log = logging.getLogger(__name__)


class WorkerTasks:
    """The side tasks of `worker` (its heartbeat row is `name`)."""

    def __init__(
        self,
        worker: OrderWorker,
        queue: WorkQueue,
        pubsub: PubSub,
        metrics: Metrics,
        sessions: SessionFactory,
        name: str,
    ) -> None:
        self.worker = worker
        self.queue = queue
        self.pubsub = pubsub
        self.metrics = metrics
        self.sessions = sessions
        self.name = name
        # Set once the resting-order prices are subscribed (a paper broker only).
        self.resting_subscribed = asyncio.Event()
        # Set once the start-up reconciliation is done and the order queue is consumed.
        self.reconciled = asyncio.Event()
        self.backoff = Backoff()
        """Pauses between the start-up reconciliation's tries."""

    async def consume(self, mode: str, prefetch: int, stop: asyncio.Event) -> None:
        """Reconcile `mode` with the broker once (`reconcile_at_start`), then consume the
        order queue until it is stopped."""
        if not self.reconciled.is_set():
            if not await self.reconcile_at_start(mode, stop):
                return
            self.reconciled.set()
        await self.queue.consume(QUEUE_ORDERS, self.handle, prefetch=prefetch)

    async def reconcile_at_start(self, mode: str, stop: asyncio.Event) -> bool:
        """Reconcile `mode` with the broker before any order is taken; False when `stop` came
        first.

        A worker runs unattended, so a venue (or database) that cannot be reached at start is
        waited for, as RabbitMQ is: each failed try is one line naming the venue's URL and
        what to check, the first one an alert, and the next try comes after a growing pause.
        The orders wait in the queue meanwhile rather than fail against a venue that is
        away."""
        tries = 0
        while True:
            try:
                await self.worker.reconcile(mode)
            except Exception as exc:
                tries += 1
                pause = self.backoff.pause(tries)
                message = self._unreachable(exc, pause)
                log.warning("%s", message)
                log.debug("the start-up reconciliation failed", exc_info=True)
                if tries == 1:
                    self.worker.on_alert("critical", message, {"mode": mode})
            else:
                if tries:
                    log.info("reconciled with %s after %d failed tries", self._where, tries)
                return True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)
            if stop.is_set():
                return False

    @property
    def _where(self) -> str:
        return address(self.worker.broker)

    def _unreachable(self, exc: Exception, pause: float) -> str:
        """One line: what the start-up reconciliation could not reach, and what to do."""
        if database_away(exc):
            cause = outage_message(exc, self.worker.db.engine.url)
            check = "check that the database is up"
        else:
            cause = f"{self._where} failed: {one_line(exc)}"
            check = "check that the venue is up and that SIGMA_EXCHANGE_CONFIG points at it"
        return (
            f"the order worker cannot reconcile before taking orders ({cause}); the orders "
            f"wait in the queue; {check}; trying again in {pause:.0f}s"
        )

    async def handle(self, delivery: Any) -> None:
        """Handle one order event (a beat in the metrics first: a busy worker is alive)."""
        self.metrics.heartbeat("order_worker")
        await self.worker.handle(delivery)

    async def heartbeat(self, stop: asyncio.Event, every: float = 15.0) -> None:
        """Beat (in the metrics and in `worker_heartbeats`) and sample the order queue's depth
        while the worker runs: an idle worker is alive, and the backlog alert needs the depth
        even when no order is handled. The row goes when the worker stops in order."""
        while not stop.is_set():
            self.metrics.heartbeat("order_worker")
            await self._in_database(partial(heartbeats.beat, name=self.name), "record a heartbeat")
            try:
                depth = await self.queue.depth(QUEUE_ORDERS)
            except Exception:  # the broker is away; the queue reconnects by itself
                log.warning("could not read the depth of %s", QUEUE_ORDERS, exc_info=True)
            else:
                self.metrics.queue_depth.labels(queue=QUEUE_ORDERS).set(depth)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
        await self._in_database(partial(heartbeats.forget, name=self.name), "remove the heartbeat")

    async def _in_database(self, work: Callable[[Session], None], what: str) -> None:
        """Run `work` in a transaction in a thread; a database that is away is logged (the
        next beat tries again)."""

        def run() -> None:
            with self.sessions.begin() as session:
                work(session)

        try:
            await asyncio.to_thread(run)
        except Exception:
            log.warning("could not %s", what, exc_info=True)

    async def resting_orders(self, stop: asyncio.Event) -> None:
        """Feed prices to the paper broker so resting limit and stop orders can fill."""
        worker = self.worker
        broker = settling(worker.broker)
        if broker is None:
            # A venue keeps its own resting orders; ending here would read as a dead component.
            await stop.wait()
            return

        async def on_price(raw: bytes) -> None:
            # Most of the time nothing rests: the tick need not even be decoded.
            if broker.resting and (tick := decode_or_none(raw)) is not None:
                await worker.on_price(tick.symbol, tick.price)

        await consume_until(
            self.pubsub,
            {CHANNEL_PRICE_UPDATE: on_price},
            stop,
            subscribed=self.resting_subscribed,
        )

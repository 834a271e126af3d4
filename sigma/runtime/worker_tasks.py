"""What runs beside the OrderWorker in its process: each order event handled with a beat in
the metrics, the heartbeat (metrics, `worker_heartbeats`, the order queue's depth), and the
prices that let the paper broker fill resting orders."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from sigma.bus.base import CHANNEL_PRICE_UPDATE, QUEUE_ORDERS, PubSub, WorkQueue
from sigma.execution.broker import settling
from sigma.execution.worker import OrderWorker
from sigma.ops.metrics import Metrics
from sigma.runtime.tasks import consume_until, decode_or_none
from sigma.store import heartbeats
from sigma.store.handles import Session, SessionFactory

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

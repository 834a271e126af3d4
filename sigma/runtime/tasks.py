"""Small asyncio helpers shared by the long-running services."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Collection, Coroutine, Mapping
from typing import Any

from sigma.bus.base import PubSub, Subscription
from sigma.domain import Tick
from sigma.feeds.ticks import TickError, decode_tick

log = logging.getLogger(__name__)

MessageHandler = Callable[[bytes], Awaitable[None]]
Resubscribed = Callable[[Collection[str]], Awaitable[None]]
"""`resubscribed(channels)`: `channels` listen (again); what was published on them before was
not received."""

# How often the subscriptions are looked at for a reconnection.
WATCH_SECONDS = 0.25


async def run_until(work: Coroutine[Any, Any, None], stop: asyncio.Event) -> None:
    """Run `work` until it ends or `stop` is set, then cancel it and wait for it to unwind.

    An exception raised by `work` propagates; cancellation on stop does not."""
    worker = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({worker, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        if not worker.done():
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
    if worker.done() and not worker.cancelled():
        worker.result()


async def consume_until(
    pubsub: PubSub,
    handlers: Mapping[str, MessageHandler],
    stop: asyncio.Event,
    *,
    subscribed: asyncio.Event | None = None,
    resubscribed: Resubscribed | None = None,
) -> None:
    """Subscribe to each channel of `handlers`, set `subscribed` once all listen, and hand
    every message to its channel's handler until `stop`; the subscriptions are closed at the
    end. An exception a handler raises ends the consumption and propagates.

    `resubscribed` is awaited with every channel once all listen, and then with the channels
    whose subscription reconnected after its connection dropped (`watch_reconnects`), beside
    the handlers."""
    subscriptions: dict[str, Subscription] = {}
    try:
        for channel in handlers:
            subscriptions[channel] = await pubsub.subscribe(channel)
        if subscribed is not None:
            subscribed.set()

        async def pump(subscription: Subscription, handle: MessageHandler) -> None:
            async for raw in subscription:
                await handle(raw)

        work = [pump(sub, handlers[name]) for name, sub in subscriptions.items()]
        if resubscribed is not None:
            work.append(watch_reconnects(subscriptions, resubscribed))
        await run_until(_gather(*work), stop)
    finally:
        for subscription in subscriptions.values():
            await subscription.close()


def reconnects(subscription: Subscription) -> int:
    """How often `subscription` reconnected (0 for a bus whose subscriptions never drop)."""
    return int(getattr(subscription, "reconnects", 0))


async def watch_reconnects(
    subscriptions: Mapping[str, Subscription], resubscribed: Resubscribed
) -> None:
    """Await `resubscribed` with every channel of `subscriptions` now, then, for as long as it
    runs, with the channels whose subscription reconnected since (looked at every
    `WATCH_SECONDS`; counted before each call, so a reconnection during it is seen after)."""
    seen = {name: reconnects(sub) for name, sub in subscriptions.items()}
    await resubscribed(list(subscriptions))
    while True:
        await asyncio.sleep(WATCH_SECONDS)
        now = {name: reconnects(sub) for name, sub in subscriptions.items()}
        changed = [name for name in now if now[name] != seen[name]]
        if changed:
            seen = now
            await resubscribed(changed)


async def _gather(*work: Coroutine[Any, Any, None]) -> None:
    await asyncio.gather(*work)


def decode_or_none(
    raw: bytes, rejected: Callable[[str], None] = lambda reason: None
) -> Tick | None:
    """A tick from the bus, or None (logged, and `rejected(reason)`) when it is not one."""
    try:
        return decode_tick(raw)
    except TickError as exc:
        log.warning("dropped a bad price_update message: %s", exc)
        rejected(exc.reason)
        return None

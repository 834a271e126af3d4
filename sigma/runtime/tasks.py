"""Small asyncio helpers shared by the long-running services."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

from sigma.bus.base import PubSub, Subscription
from sigma.domain import Tick
from sigma.feeds.ticks import TickError, decode_tick

log = logging.getLogger(__name__)

MessageHandler = Callable[[bytes], Awaitable[None]]


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
) -> None:
    """Subscribe to each channel of `handlers`, set `subscribed` once all listen, and hand
    every message to its channel's handler until `stop`; the subscriptions are closed at the
    end. An exception a handler raises ends the consumption and propagates."""
    subscriptions: dict[str, Subscription] = {}
    try:
        for channel in handlers:
            subscriptions[channel] = await pubsub.subscribe(channel)
        if subscribed is not None:
            subscribed.set()

        async def pump(subscription: Subscription, handle: MessageHandler) -> None:
            async for raw in subscription:
                await handle(raw)

        await run_until(
            _gather(*(pump(sub, handlers[name]) for name, sub in subscriptions.items())), stop
        )
    finally:
        for subscription in subscriptions.values():
            await subscription.close()


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

"""PriceClient: the live price feed reader (the seed's ``WebSocket.receive_prices``).

It connects to a market WebSocket (SIGMA's own :mod:`sigma.feeds.ws_server`, or anything that
speaks the :mod:`sigma.feeds.ticks` wire format), passes every frame through the
:class:`~sigma.feeds.cleaner.DataCleaner` and optionally an
:class:`~sigma.risk.anomaly.AnomalyDetector`, and hands accepted ticks to a callback and to the
``price_update`` channel of a :class:`~sigma.bus.PubSub`.

The reconnect/backoff and stale-feed machinery lives in :class:`ReconnectingFeed`, which the
venues' data clients (:mod:`sigma.venues.ccxt.data`) share.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypedDict, Unpack

from websockets.asyncio.client import connect

from sigma.bus.base import CHANNEL_PRICE_UPDATE, PubSub
from sigma.domain import Tick
from sigma.feeds.cleaner import DataCleaner
from sigma.feeds.ticks import encode_tick
from sigma.ops.repeats import RepeatFilter
from sigma.risk.anomaly import AnomalyDetector
from sigma.risk.feed_health import FeedHealth

__all__ = [
    "Backoff",
    "FeedOptions",
    "GapCallback",
    "PriceClient",
    "ReconnectingFeed",
    "StaleMonitor",
    "TickCallback",
]

log = logging.getLogger(__name__)
# A bus outage fails the delivery of every tick: one line (and traceback) a minute, counted.
log.addFilter(RepeatFilter())

TickCallback = Callable[[Tick], Awaitable[None]]
GapCallback = Callable[[float], Awaitable[None]]
"""Called with a duration in seconds (how long the feed has been, or was, silent)."""


class Backoff:
    """Exponential backoff with jitter: attempt ``k`` waits ``min(cap, base * factor**k)``
    scaled by a random factor in ``[1 - jitter, 1]``.

    The jitter spreads reconnects of many clients after a server restart so they do not all
    hit it in the same instant. Pass ``rng`` (a seeded ``random.Random``) for repeatable delays.
    """

    def __init__(
        self,
        base: float = 0.5,
        cap: float = 30.0,
        *,
        factor: float = 2.0,
        jitter: float = 0.5,
        rng: random.Random | None = None,
    ) -> None:
        if base <= 0 or cap < base or factor < 1 or not 0 <= jitter <= 1:
            raise ValueError("need 0 < base <= cap, factor >= 1 and 0 <= jitter <= 1")
        self.base, self.cap, self.factor, self.jitter = base, cap, factor, jitter
        self.rng = rng or random.Random()
        self.attempts = 0

    def next_delay(self) -> float:
        """The delay before the next attempt; each call counts one failed attempt."""
        # Capping the exponent keeps factor**attempts finite after days of failures.
        raw = min(self.cap, self.base * self.factor ** min(self.attempts, 64))
        self.attempts += 1
        return raw * (1.0 - self.jitter * self.rng.random())

    def reset(self) -> None:
        """Start again from ``base`` (after a connection delivered data)."""
        self.attempts = 0


async def _call(callback: GapCallback | None, seconds: float, what: str) -> None:
    """Run a user callback; its failure is logged, never allowed to stop the feed."""
    if callback is None:
        return
    try:
        await callback(seconds)
    except Exception:
        log.exception("%s callback failed", what)


class StaleMonitor:
    """Notices a silent feed: no :meth:`beat` for ``stale_after`` seconds calls
    ``on_stale(seconds)`` once, and the next beat calls ``on_recovered(seconds)`` with the
    length of the silence. ``episodes`` counts stale episodes."""

    def __init__(
        self,
        stale_after: float,
        on_stale: GapCallback | None = None,
        on_recovered: GapCallback | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if stale_after <= 0:
            raise ValueError(f"stale_after must be positive, got {stale_after}")
        self.stale_after = stale_after
        self.on_stale = on_stale
        self.on_recovered = on_recovered
        self.clock = clock
        self.stale = False
        self.episodes = 0
        self.last = clock()
        self._fresh = asyncio.Event()

    async def beat(self) -> None:
        """Record that data arrived now."""
        now = self.clock()
        gap, self.last = now - self.last, now
        if self.stale:
            self.stale = False
            self._fresh.set()
            await _call(self.on_recovered, gap, "on_recovered")

    async def watch(self) -> None:
        """Run until cancelled, firing ``on_stale`` when the feed goes quiet."""
        self.last = self.clock()
        while True:
            if self.stale:
                await self._fresh.wait()
                continue
            silent = self.clock() - self.last
            if silent < self.stale_after:
                await asyncio.sleep(self.stale_after - silent)
                continue
            self.stale = True
            self.episodes += 1
            self._fresh.clear()
            log.warning("feed stale: no tick for %.1fs", silent)
            await _call(self.on_stale, silent, "on_stale")


class FeedOptions(TypedDict, total=False):
    """Keyword options every live feed accepts (see :class:`ReconnectingFeed`)."""

    on_tick: TickCallback | None
    detector: AnomalyDetector | None
    health: FeedHealth | None
    pubsub: PubSub | None
    channel: str
    backoff: Backoff | None
    stale_after: float
    on_stale: GapCallback | None
    on_recovered: GapCallback | None


class ReconnectingFeed:
    """The loop shared by every live feed: run a session, and when it ends or fails wait a
    backoff delay and run another, until :meth:`stop`.

    A subclass implements :meth:`_session` (connect and pump data), feeding each received item
    to :meth:`_deliver`. The detector's verdicts go to ``health`` (the rejection-ratio alarm
    and the entry pause); only an accepted tick keeps the feed from going stale. Counters:
    ``received`` (frames), ``accepted``, ``rejected`` (dropped by the cleaner or flagged by
    the detector; ``anomalies`` counts the latter), ``reconnects`` and ``callback_errors``.
    """

    def __init__(
        self,
        *,
        on_tick: TickCallback | None = None,
        cleaner: DataCleaner | None = None,
        detector: AnomalyDetector | None = None,
        health: FeedHealth | None = None,
        pubsub: PubSub | None = None,
        channel: str = CHANNEL_PRICE_UPDATE,
        backoff: Backoff | None = None,
        stale_after: float = 30.0,
        on_stale: GapCallback | None = None,
        on_recovered: GapCallback | None = None,
    ) -> None:
        self.on_tick = on_tick
        self.cleaner = cleaner or DataCleaner()
        self.detector = detector
        self.health = health
        self.pubsub = pubsub
        self.channel = channel
        self.backoff = backoff or Backoff()
        self.monitor = StaleMonitor(stale_after, on_stale, on_recovered)
        self.received = 0
        self.accepted = 0
        self.rejected = 0
        self.anomalies = 0
        self.reconnects = 0
        self.callback_errors = 0
        self._stop = asyncio.Event()

    def counts(self) -> dict[str, int]:
        """The counters (for `Metrics.count_from`)."""
        return {
            "ticks_received": self.received,
            "ticks_accepted": self.accepted,
            "ticks_rejected": self.rejected,
            "ticks_anomalous": self.anomalies,
            "reconnects": self.reconnects,
            "callback_errors": self.callback_errors,
        }

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._stop.is_set()

    async def run(self) -> None:
        """Read the feed until :meth:`stop` is called (or the task is cancelled)."""
        self._stop.clear()
        watcher = asyncio.create_task(self.monitor.watch())
        try:
            while not self.stopping:
                await self._run_session()
                if self.stopping:
                    break
                self.reconnects += 1
                delay = self.backoff.next_delay()
                log.info("%s: reconnecting in %.2fs", self, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await self._teardown()

    async def stop(self) -> None:
        """Ask :meth:`run` to return: the current session is cancelled, no reconnect follows."""
        self._stop.set()

    async def _run_session(self) -> None:
        session = asyncio.create_task(self._session())
        stopper = asyncio.create_task(self._stop.wait())
        try:
            await asyncio.wait({session, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
            session.cancel()
            results = await asyncio.gather(session, stopper, return_exceptions=True)
        error = results[0]
        if isinstance(error, BaseException) and not isinstance(error, asyncio.CancelledError):
            log.warning("%s: session failed: %s: %s", self, type(error).__name__, error)

    async def _session(self) -> None:
        """Connect and feed items to :meth:`_deliver` until the source ends or fails."""
        raise NotImplementedError

    async def _teardown(self) -> None:
        """Release what outlives a session (an exchange client), when :meth:`run` ends."""

    async def _deliver(self, tick: Tick | None) -> None:
        """Pass a cleaned tick (None: the cleaner dropped the frame) on to the consumers."""
        if tick is None:
            self.rejected += 1
            return
        # Any valid tick proves the connection works; but only an accepted one proves the feed
        # is alive: a feed whose every tick the detector rejects leaves the bot on a frozen
        # price and must go stale and alert (issue 23).
        self.backoff.reset()
        if self.detector is not None:
            verdict = self.detector.check(tick)
            if self.health is not None:
                self.health.record(tick, verdict)
            if not verdict.ok:
                self.rejected += 1
                self.anomalies += 1
                log.warning(
                    "anomalous tick %s (%s, score %.2f)", tick, verdict.reason, verdict.score
                )
                return
        await self.monitor.beat()
        self.accepted += 1
        try:
            if self.on_tick is not None:
                await self.on_tick(tick)
            if self.pubsub is not None:
                await self.pubsub.publish(self.channel, encode_tick(tick))
        except Exception:
            # A consumer bug or a bus outage must not cut the feed for everyone else.
            self.callback_errors += 1
            log.exception("delivering %s failed", tick)


class PriceClient(ReconnectingFeed):
    """Reads ticks from a market WebSocket at ``url`` (see the module docstring).

    With ``symbols`` the client sends ``{"subscribe": symbols}`` on each connection and, unless
    a ``cleaner`` is given, only accepts those symbols. Published messages are the canonical
    :func:`~sigma.feeds.ticks.encode_tick` bytes of each accepted tick. Other keyword arguments
    are those of :class:`ReconnectingFeed`.
    """

    def __init__(
        self,
        url: str,
        *,
        symbols: Sequence[str] | None = None,
        cleaner: DataCleaner | None = None,
        open_timeout: float = 5.0,
        **options: Unpack[FeedOptions],
    ) -> None:
        self.url = url
        self.symbols = list(symbols) if symbols else None
        self.open_timeout = open_timeout
        if cleaner is None:
            cleaner = DataCleaner(self.symbols)
        super().__init__(cleaner=cleaner, **options)

    def __str__(self) -> str:
        return f"PriceClient({self.url})"

    async def _session(self) -> None:
        async with connect(self.url, open_timeout=self.open_timeout, max_size=2**16) as ws:
            log.info("connected to %s", self.url)
            if self.symbols:
                await ws.send(json.dumps({"subscribe": self.symbols}))
            async for frame in ws:
                self.received += 1
                await self._deliver(self.cleaner.clean(frame))

    receive_prices = ReconnectingFeed.run  # the seed's name

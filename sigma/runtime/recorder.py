"""The recorder component (`sigma recorder`, part of `sigma up`): listens to `price_update`
itself, in its own process on Redis as in-process, and hands each tick to a `MarketRecorder`.

It records what the price client or venue data client published, i.e. the ticks the cleaner
and the anomaly detector accepted, and builds the 1-minute bars plus the bot's bar length
(`SIGMA_BAR_SECONDS`) from them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta

from sigma.bus.base import CHANNEL_PRICE_UPDATE, PubSub
from sigma.config import Settings
from sigma.domain import Tick
from sigma.runtime.tasks import consume_until
from sigma.store.handles import Engine
from sigma.store.recorder import MarketRecorder
from sigma.store.timescale import Policy, apply_policies

log = logging.getLogger(__name__)

MINUTE = timedelta(minutes=1)


class RecorderService:
    """Runs a `MarketRecorder` on the ticks of `price_update` until stopped."""

    def __init__(self, recorder: MarketRecorder, decode: Callable[[bytes], Tick | None]) -> None:
        self.recorder = recorder
        self.decode = decode
        self.subscribed = asyncio.Event()
        """Set once the recorder listens: ticks published from then on are recorded."""

    async def on_raw_tick(self, raw: bytes) -> None:
        """Record one bus message (None from `decode`: it was not a tick, and is skipped)."""
        tick = self.decode(raw)
        if tick is not None:
            self.recorder.record(tick)

    async def run(self, pubsub: PubSub, stop: asyncio.Event) -> None:
        """Record until `stop`, then write everything still queued."""
        self.recorder.start()
        try:
            await consume_until(
                pubsub, {CHANNEL_PRICE_UPDATE: self.on_raw_tick}, stop, subscribed=self.subscribed
            )
        finally:
            lost = await asyncio.to_thread(self.recorder.close)
            log.info("recorder stopped: %s, %d rows not written", self.recorder.totals(), lost)


def policies(settings: Settings) -> dict[str, Policy]:
    """The TimescaleDB compression and retention of ticks and bars, from `settings`."""
    s = settings
    compress = timedelta(days=s.database.timescale_compress_after_days)
    bars = (
        None
        if s.retention.bar_retention_days is None
        else timedelta(days=s.retention.bar_retention_days)
    )
    return {
        "ticks": Policy(compress, timedelta(days=s.retention.tick_retention_days)),
        "bars": Policy(compress, bars),
    }


def build_recorder(
    db: Engine, settings: Settings, decode: Callable[[bytes], Tick | None]
) -> RecorderService:
    """The recorder writing to `db` as `settings` say; on TimescaleDB its policies are
    (re)applied first."""
    s = settings
    apply_policies(db, policies(s))
    recorder = MarketRecorder(
        db,
        (MINUTE, timedelta(seconds=s.trading.bar_seconds)),
        batch_rows=s.recorder.recorder_batch_rows,
        flush_interval=s.recorder.recorder_flush_ms / 1000,
        max_pending=s.recorder.recorder_max_pending,
    )
    return RecorderService(recorder, decode)

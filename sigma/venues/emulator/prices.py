"""The local exchange's price path: seeded synthetic bars or a replayed history file, served
as one-minute candle history and then played live, tick by tick, into the venues' markets.

Each market gets its own path (the synthetic market's seed plus the market's index). A
history file gives the shape of the path: its prices are scaled so the path starts at the
market's start price, so one BTC file can drive BTCUSDT and KRW-BTC alike. A path that runs out
goes on with a fresh segment from its last price, so a venue can run for days.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal

import pandas as pd

from sigma.domain import Tick
from sigma.feeds.ws_server import bar_ticks
from sigma.venues.emulator.klines import MINUTE_MS, Candle
from sigma.venues.emulator.model import MarketSpec, floor_to
from sigma.venues.emulator.venue import Venue

__all__ = ["MANUAL", "PriceDriver"]

log = logging.getLogger(__name__)

MANUAL = "manual"
_SEGMENT_BARS = 10_000
# The synthetic market's volume is about 1,000 a bar; a tick carries a quarter of it. Scaled so
# a tick trades about one book level of the market.
_TICK_VOLUME = Decimal(250)


@dataclass
class _Feed:
    venue: Venue
    spec: MarketSpec
    index: int


class PriceDriver:
    """Loads history into every market and plays the live path at ``speed`` (1 = the bars'
    own pace, 60 = a one-minute bar a second)."""

    def __init__(
        self,
        venues: Sequence[Venue],
        *,
        source: str = "synthetic",
        speed: float = 60.0,
        seed: int = 0,
        history_bars: int = 1440,
        database_url: str | None = None,
    ) -> None:
        self.source = source
        self.speed = speed
        self.seed = seed
        self.history_bars = history_bars
        self.database_url = database_url
        self.ticks = 0
        self._feeds = [
            _Feed(venue, spec, i)
            for i, (venue, spec) in enumerate(
                (venue, spec) for venue in venues for spec in venue.markets.values()
            )
        ]
        self._shape: pd.DataFrame | None = None

    def load_history(self, now_ms: int) -> None:
        """Serve ``history_bars`` one-minute candles ending at the minute before ``now_ms``."""
        if self.history_bars == 0:
            return
        first = now_ms - now_ms % MINUTE_MS - self.history_bars * MINUTE_MS
        for feed in self._feeds:
            frame = self._segment(feed, feed.spec.start_price, 0, self.history_bars)
            columns = ("open", "high", "low", "close", "volume")
            rows = frame[list(columns)].itertuples(index=False, name=None)
            candles = [_candle(first + i * MINUTE_MS, row, feed.spec) for i, row in enumerate(rows)]
            feed.venue.load_candles(feed.spec.symbol, candles)

    async def run(self) -> None:
        """Play the live path until cancelled."""
        if self.source == MANUAL:
            return
        loop = asyncio.get_running_loop()
        interval = 60.0 / self.speed / 4
        start = loop.time()
        for n, (feed, price, qty) in enumerate(self._live()):
            delay = start + n * interval / max(1, len(self._feeds)) - loop.time()
            # Behind time (a high speed), still yield: requests are served between ticks.
            await asyncio.sleep(max(0.0, delay))
            feed.venue.tick(feed.spec.symbol, price, qty)
            self.ticks += 1

    def _live(self) -> Iterator[tuple[_Feed, Decimal, Decimal]]:
        """Every market's ticks, interleaved in time, segment after segment."""
        segment = 0
        offset = self.history_bars
        while True:
            streams = []
            for feed in self._feeds:
                start_price = feed.venue.last_price(feed.spec.symbol)
                frame = self._segment(feed, start_price, segment + 1, _SEGMENT_BARS, offset)
                streams.append(_tagged(feed, frame))
            for tick, feed in heapq.merge(*streams, key=lambda item: item[0].ts):
                yield feed, _price(tick.price, feed.spec), _qty(tick.volume, feed.spec)
            segment += 1
            offset = 0

    def _segment(
        self, feed: _Feed, start_price: Decimal, segment: int, bars: int, skip: int = 0
    ) -> pd.DataFrame:
        """``bars`` one-minute bars of ``feed``'s path starting at ``start_price``."""
        if self.source in ("synthetic", MANUAL):
            from sigma.feeds.synthetic import generate_bars

            seed = self.seed + feed.index + 1000 * segment
            frame, _ = generate_bars(bars, seed=seed, start_price=float(start_price))
            return frame
        shape = self._history_shape()
        rows = shape.iloc[skip : skip + bars] if skip < len(shape) else shape.iloc[:bars]
        if rows.empty:
            rows = shape.iloc[:bars]
        scale = float(start_price) / float(rows["open"].iloc[0])
        scaled = rows.copy()
        for column in ("open", "high", "low", "close"):
            scaled[column] = rows[column] * scale
        return scaled

    def _history_shape(self) -> pd.DataFrame:
        if self._shape is None:
            from sigma.feeds.loaders import load_bars

            self._shape = load_bars(self.source, database_url=self.database_url)
        return self._shape


def _candle(open_ms: int, row: tuple[float, ...], spec: MarketSpec) -> Candle:
    o, h, lo, c = (_price(v, spec) for v in row[:4])
    qty = _qty(Decimal(repr(float(row[4]))), spec)
    return Candle(open_ms, o, h, lo, c, qty, c * qty, 4)


def _tagged(feed: _Feed, frame: pd.DataFrame) -> Iterator[tuple[Tick, _Feed]]:
    for tick in bar_ticks("X", frame):
        yield tick, feed


def _price(value: float | Decimal, spec: MarketSpec) -> Decimal:
    price = Decimal(repr(float(value))) if not isinstance(value, Decimal) else value
    tick = spec.tick_at(price)
    return max(spec.min_price, floor_to(price, tick))


def _qty(volume: Decimal, spec: MarketSpec) -> Decimal:
    return max(spec.step_size, floor_to(volume * spec.level_qty / _TICK_VOLUME, spec.step_size))

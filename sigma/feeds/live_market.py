"""The built-in market in wall-clock time: a seeded synthetic market that has a history up to
the current minute and then trades live, one tick every few seconds, stamped with the time it
is sent.

A restart continues it: the history fills the time since the last stored price (at most
`history_bars` minutes) from the last stored close, and the live part goes on from there, so
prices never jump and no timestamp is ever traded twice. The shape is deterministic: the bars
of a day are drawn from a seed made of the market seed, the symbol's place and the day's first
minute, starting at the close before them.

Each 1-minute bar is played as `ticks_per_bar` ticks spread evenly over the minute that visit
the open, the two extremes (in the order `bar_ticks` uses) and the close, in straight lines
between them rounded to the cent, so a bar built from the ticks is the generated bar.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal

import numpy as np
import pandas as pd

from sigma.domain import Tick
from sigma.feeds.frame import make_bar_frame
from sigma.feeds.synthetic import generate_bars

__all__ = ["MINUTE", "LiveMarket"]

MINUTE = timedelta(minutes=1)
# One generation draws a day of bars: long enough that the regimes (hundreds of bars) play out.
_CHUNK_BARS = 1440
_CENT = Decimal("0.01")
_VOLUME_STEP = Decimal("0.00000001")


def _seed(seed: int, index: int, minute: datetime) -> int:
    """A seed for the bars from `minute` of the `index`-th symbol."""
    words = [seed, index, int(minute.timestamp()) // 60]
    return int(np.random.SeedSequence(words).generate_state(1)[0])


@dataclass(frozen=True, slots=True)
class LastPrice:
    """Where a symbol's stored prices end: the newest bar or tick time and its close."""

    ts: datetime
    close: Decimal


class LiveMarket:
    """The built-in market's tick source (for `MarketServer`), at the pace of the wall clock.

    `last` holds, per symbol, where the store's prices end (None or missing: nothing stored,
    the market starts `history_bars` minutes before now at 100, 200, ... per symbol). `now`
    fixes the current time (tests); the ticks are then still paced by `MarketServer`.
    """

    speed = 1.0

    def __init__(
        self,
        symbols: Sequence[str],
        *,
        seed: int,
        history_bars: int,
        last: Mapping[str, LastPrice] | None = None,
        ticks_per_bar: int = 12,
        now: datetime | None = None,
    ) -> None:
        if history_bars < 0:
            raise ValueError(f"history_bars must be >= 0, got {history_bars}")
        if not 4 <= ticks_per_bar <= 600:
            raise ValueError(f"ticks_per_bar must be in [4, 600], got {ticks_per_bar}")
        self.symbols = list(symbols)
        self.seed = seed
        self.ticks_per_bar = ticks_per_bar
        self.now = now or datetime.now(UTC)
        self.live_from = pd.Timestamp(self.now).floor("1min").to_pydatetime()
        last = last or {}
        self._history: dict[str, pd.DataFrame] = {}
        self._open: dict[str, tuple[datetime, float]] = {}
        for index, symbol in enumerate(self.symbols):
            stored = last.get(symbol)
            oldest = self.live_from - history_bars * MINUTE
            if stored is None:
                begin, price = oldest, 100.0 * (index + 1)
            else:
                begin = max(oldest, pd.Timestamp(stored.ts).floor("1min").to_pydatetime() + MINUTE)
                price = float(stored.close)
            bars = self._bars(index, begin, self.live_from, price)
            self._history[symbol] = bars
            close = float(bars["close"].iloc[-1]) if len(bars) else price
            self._open[symbol] = (self.live_from, close)

    def history(self) -> dict[str, pd.DataFrame]:
        """The 1-minute bars each symbol traded before the current minute (possibly none)."""
        return dict(self._history)

    def ticks(self) -> Iterator[Tick]:
        """The live ticks of every symbol in time order, from the current time on, forever."""
        streams = [self._symbol_ticks(i, s) for i, s in enumerate(self.symbols)]
        return heapq.merge(*streams, key=lambda tick: tick.ts)

    def _symbol_ticks(self, index: int, symbol: str) -> Iterator[Tick]:
        begin, price = self._open[symbol]
        while True:
            end = begin + _CHUNK_BARS * MINUTE
            bars = self._bars(index, begin, end, price)
            for ts, row in zip(bars.index, bars.itertuples(index=False), strict=True):
                for tick in self._bar_ticks(symbol, ts.to_pydatetime(), row):
                    if tick.ts >= self.now:
                        yield tick
            begin, price = end, float(bars["close"].iloc[-1])

    def _bars(self, index: int, begin: datetime, end: datetime, price: float) -> pd.DataFrame:
        count = int((end - begin) / MINUTE)
        if count <= 0:
            empty = np.empty(0)
            return make_bar_frame(np.empty(0, dtype="datetime64[ns]"), *([empty] * 5))
        seed = _seed(self.seed, index, begin)
        return generate_bars(count, seed=seed, start=begin, freq="1min", start_price=price)[0]

    def _bar_ticks(self, symbol: str, start: datetime, row: tuple[float, ...]) -> Iterator[Tick]:
        o, h, lo, c, v = row[:5]
        anchors = (o, lo, h, c) if c > o else (o, h, lo, c)
        n = self.ticks_per_bar
        # The anchors sit at ticks 0, n/3, 2n/3 and n - 1; the others lie on the lines between.
        at = np.array([0, n // 3, (2 * n) // 3, n - 1], dtype=float)
        path = np.interp(np.arange(n, dtype=float), at, np.asarray(anchors, dtype=float))
        total = Decimal(repr(float(v)))
        # Equal shares cut to 8 decimals, the remainder on the last tick: the bar's volume
        # adds up exactly.
        share = (total / n).quantize(_VOLUME_STEP, rounding=ROUND_DOWN)
        step = MINUTE / n
        for k, price in enumerate(path):
            value = Decimal(repr(float(price))).quantize(_CENT)
            volume = share if k < n - 1 else total - share * (n - 1)
            yield Tick(symbol, start + k * step, value, volume)

"""Ticks into bars: a bar closes when the first tick of the next bucket arrives.

That tick is also the next bar's open, which is why live decisions made on a closed bar trade
at the same price a backtest uses (the next bar's open).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sigma.domain import Bar, Tick

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(slots=True)
class _Partial:
    start: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


class BarBuilder:
    """Aggregates one symbol's ticks into OHLCV bars of `timeframe`, aligned to the epoch."""

    def __init__(self, symbol: str, timeframe: timedelta) -> None:
        if timeframe <= timedelta(0):
            raise ValueError(f"timeframe must be positive, got {timeframe}")
        self.symbol = symbol
        self.timeframe = timeframe
        self._bar: _Partial | None = None

    @property
    def last_price(self) -> Decimal | None:
        """The latest tick's price (None before the first tick)."""
        return None if self._bar is None else self._bar.close

    def bucket_of(self, ts: datetime) -> datetime:
        """Start of the bar that contains `ts`."""
        return ts - (ts - _EPOCH) % self.timeframe

    def on_tick(self, tick: Tick) -> Bar | None:
        """Add a tick; returns the bar it completed, if any. A tick older than the bar being
        built is ignored (the cleaner drops out-of-order ticks before they get here)."""
        bucket = self.bucket_of(tick.ts)
        current = self._bar
        if current is not None and bucket == current.start:
            current.high = max(current.high, tick.price)
            current.low = min(current.low, tick.price)
            current.close = tick.price
            current.volume += tick.volume
            return None
        if current is not None and bucket < current.start:
            return None
        p = tick.price
        self._bar = _Partial(bucket, p, p, p, p, tick.volume)
        if current is None:
            return None
        return Bar(
            self.symbol,
            current.start,
            current.open,
            current.high,
            current.low,
            current.close,
            current.volume,
        )

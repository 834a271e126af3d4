"""One-minute candles per market, built from the tape; longer intervals are folded from them."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal

__all__ = ["MINUTE_MS", "Candle", "CandleSeries"]

MINUTE_MS = 60_000


@dataclass
class Candle:
    """One candle; ``open_ms`` is its start, ``trades`` the number of tape trades in it."""

    open_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal
    trades: int

    def add(self, price: Decimal, qty: Decimal) -> None:
        self.high = max(self.high, price)
        self.low = min(self.low, price)
        self.close = price
        self.volume += qty
        self.quote_volume += price * qty
        self.trades += 1


class CandleSeries:
    """A bounded history of one-minute candles, oldest first."""

    def __init__(self, keep: int = 100_000) -> None:
        self._candles: deque[Candle] = deque(maxlen=keep)

    def __len__(self) -> int:
        return len(self._candles)

    @property
    def last(self) -> Candle | None:
        return self._candles[-1] if self._candles else None

    def extend(self, candles: Iterable[Candle]) -> None:
        """Append history (must be in time order, after what is held)."""
        for candle in candles:
            last = self.last
            if last is not None and candle.open_ms <= last.open_ms:
                continue
            self._candles.append(candle)

    def add(self, time_ms: int, price: Decimal, qty: Decimal) -> Candle:
        """Book a tape trade into its minute; returns that minute's candle."""
        start = time_ms - time_ms % MINUTE_MS
        last = self.last
        if last is not None and start <= last.open_ms:
            last.add(price, qty)
            return last
        candle = Candle(start, price, price, price, price, qty, price * qty, 1)
        self._candles.append(candle)
        return candle

    def since(self, start_ms: int) -> list[Candle]:
        """The candles that start at or after ``start_ms``, oldest first, read from the newest
        end (a day's statistics should not walk months of history)."""
        recent: list[Candle] = []
        for candle in reversed(self._candles):
            if candle.open_ms < start_ms:
                break
            recent.append(candle)
        recent.reverse()
        return recent

    def folded(
        self,
        interval_ms: int,
        *,
        start_ms: int | None = None,
        end_ms: int | None = None,
        offset_ms: int = 0,
    ) -> Iterator[Candle]:
        """Candles of ``interval_ms`` (a multiple of a minute) whose start lies in
        [``start_ms``, ``end_ms``], oldest first. ``offset_ms`` shifts the interval grid (a
        week starting on Monday is offset from the epoch's Thursday)."""
        current: Candle | None = None
        for minute in self._candles:
            start = minute.open_ms - (minute.open_ms - offset_ms) % interval_ms
            if start_ms is not None and start < start_ms:
                continue
            if end_ms is not None and start > end_ms:
                break
            if current is not None and current.open_ms == start:
                current.high = max(current.high, minute.high)
                current.low = min(current.low, minute.low)
                current.close = minute.close
                current.volume += minute.volume
                current.quote_volume += minute.quote_volume
                current.trades += minute.trades
                continue
            if current is not None:
                yield current
            current = Candle(
                start,
                minute.open,
                minute.high,
                minute.low,
                minute.close,
                minute.volume,
                minute.quote_volume,
                minute.trades,
            )
        if current is not None:
            yield current

"""MarketRecorder: every accepted tick and every closed bar, kept in `ticks` and `bars`.

Bars are built with the engine's `BarBuilder`, the one the bot decides on, so a stored bar of
the bot's timeframe is the bar its strategies saw. On the caller's loop `record` only numbers
the tick, advances the builders and queues rows; a `BatchWriter` thread turns them into rows
and writes them in batches. Ticks carry market event time (`ts` as the venue stamped it).

Writes are idempotent, so a retried batch (or a tick published twice) stores nothing twice: a
tick already stored under (symbol, ts, seq) is left alone, a bar replaces the stored bar of the
same symbol, timeframe and start.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Insert

from sigma.config.settings import timeframe_label
from sigma.domain import Bar, Tick
from sigma.engine.bar_builder import BarBuilder
from sigma.store.bars import bar_upsert, dialect_insert
from sigma.store.batch_writer import BatchWriter
from sigma.store.models import TickRecord

__all__ = ["MarketRecorder"]


def _label(span: timedelta) -> str:
    seconds = span.total_seconds()
    if seconds <= 0 or seconds != int(seconds):
        raise ValueError(f"a bar length must be a positive whole number of seconds, got {span}")
    return timeframe_label(int(seconds))


@dataclass(frozen=True, slots=True)
class _TickRow:
    tick: Tick
    seq: int


@dataclass(frozen=True, slots=True)
class _BarRow:
    timeframe: str
    bar: Bar


@dataclass(slots=True)
class _Series:
    """Per symbol: its builders and the last tick time, to number ticks sharing a time."""

    builders: list[tuple[str, BarBuilder]]
    last_ts: datetime | None = None
    seq: int = 0


class MarketRecorder:
    """Records ticks and the bars of `timeframes` built from them into `engine`'s database."""

    def __init__(
        self,
        engine: Engine,
        timeframes: Iterable[timedelta],
        *,
        batch_rows: int = 1000,
        flush_interval: float = 0.5,
        max_pending: int = 200_000,
    ) -> None:
        self.engine = engine
        # Sorted and de-duplicated: 1m and SIGMA_BAR_SECONDS=60 are one series.
        self.timeframes = {_label(t): t for t in sorted(set(timeframes))}
        if not self.timeframes:
            raise ValueError("the recorder needs at least one bar length")
        dialect = engine.dialect.name
        tick_insert: Any = dialect_insert(dialect, TickRecord)
        self._tick_insert: Insert = tick_insert.on_conflict_do_nothing(
            index_elements=["symbol", "ts", "seq"]
        )
        self._bar_upsert = bar_upsert(dialect)
        self._series: dict[str, _Series] = {}
        self.ticks = 0
        """Ticks recorded (queued for writing)."""
        self.bars = 0
        """Bars closed (queued for writing)."""
        self.writer: BatchWriter[_TickRow | _BarRow] = BatchWriter(
            self._write,
            what="recorder",
            batch_rows=batch_rows,
            flush_interval=flush_interval,
            max_pending=max_pending,
        )

    def start(self) -> None:
        """Start writing (the writer thread)."""
        self.writer.start()

    def record(self, tick: Tick) -> None:
        """Queue `tick` and every bar it closes; returns at once (no database work)."""
        series = self._series.get(tick.symbol)
        if series is None:
            builders = [(label, BarBuilder(tick.symbol, t)) for label, t in self.timeframes.items()]
            series = self._series[tick.symbol] = _Series(builders)
        if tick.ts == series.last_ts:
            series.seq += 1
        else:
            series.last_ts, series.seq = tick.ts, 0
        self.ticks += 1
        self.writer.put(_TickRow(tick, series.seq))
        for label, builder in series.builders:
            bar = builder.on_tick(tick)
            if bar is not None:
                self.bars += 1
                self.writer.put(_BarRow(label, bar), keep=True)

    def close(self, timeout: float = 30.0) -> int:
        """Write everything queued and stop; returns the rows that could not be written."""
        return self.writer.close(timeout)

    def totals(self) -> dict[str, int]:
        """Running totals for metrics and logs: seen, written, dropped, failed attempts."""
        w = self.writer
        return {
            "ticks": self.ticks,
            "bars": self.bars,
            "rows_written": w.written,
            "rows_dropped": w.dropped,
            "write_failures": w.failures,
        }

    def _write(self, batch: Sequence[_TickRow | _BarRow]) -> None:
        """One transaction for the batch (on the writer thread)."""
        ticks: list[dict[str, Any]] = []
        bars: list[dict[str, Any]] = []
        for row in batch:
            if isinstance(row, _TickRow):
                t = row.tick
                ticks.append(
                    {
                        "symbol": t.symbol,
                        "ts": t.ts,
                        "seq": row.seq,
                        "price": t.price,
                        "volume": t.volume,
                        "bid": t.bid,
                        "ask": t.ask,
                        "flagged": False,
                        "flag_reason": None,
                    }
                )
            else:
                b = row.bar
                bars.append(
                    {
                        "symbol": b.symbol,
                        "timeframe": row.timeframe,
                        "ts": b.ts,
                        "open": b.open,
                        "high": b.high,
                        "low": b.low,
                        "close": b.close,
                        "volume": b.volume,
                    }
                )
        with self.engine.begin() as conn:
            if ticks:
                conn.execute(self._tick_insert, ticks)
            if bars:
                conn.execute(self._bar_upsert, bars)

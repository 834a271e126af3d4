"""The work behind `sigma data`: bars from a file or the store into the `bars` table, out of
it into a file, and the holes in what it holds (a venue's bars: `sigma.venues.history`).

Every write goes through :func:`sigma.store.bars.upsert_bars`, keyed by (symbol, timeframe, ts),
so running any of these twice stores each bar once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

from sigma.feeds.errors import DataError
from sigma.feeds.gaps import Gap, find_gaps, missing_bars, timeframe_step
from sigma.feeds.limits import InputLimits
from sigma.feeds.loaders import CSV_SUFFIXES, PARQUET_SUFFIXES, load_bars, source_symbols
from sigma.feeds.resample import resample_bars
from sigma.feeds.writers import write_csv, write_parquet
from sigma.store.bar_catalog import StoredSeries, bar_times, stored_series
from sigma.store.bars import read_bars, upsert_bars
from sigma.store.db import session_scope
from sigma.store.handles import SessionFactory

Sessions = SessionFactory
"""What opens the sessions these functions work in (the CLI's and `sigma.venues.history`'s
name for it)."""


@dataclass(frozen=True)
class Stored:
    """Bars written for one symbol and bar size (``first``/``last`` None when none were)."""

    symbol: str
    timeframe: str
    bars: int
    first: pd.Timestamp | None = None
    last: pd.Timestamp | None = None


# --- files ---------------------------------------------------------------------------------


def import_file(
    sessions: Sessions,
    source: str,
    *,
    symbol: str | None = None,
    timeframe: str | None = None,
    limits: InputLimits | None = None,
) -> list[Stored]:
    """Store the bars of a CSV or Parquet file, all or nothing.

    Every row is checked first, as the backtest loaders check them (the first bad row is a
    :class:`DataError` naming the file, line and column), and only then is anything written,
    in one transaction. A file with a ``symbol`` column is stored per symbol (only ``symbol``
    when given); without one, ``symbol`` names its instrument. ``timeframe`` is the bar size
    to store: finer bars are aggregated into it, and without it the file's own spacing is
    used. Bars already stored at the same time are replaced. A file over ``limits`` (default
    :class:`~sigma.feeds.limits.InputLimits`) is refused before or while it is read."""
    symbols = [symbol] if symbol is not None else source_symbols(source, limits=limits)
    if not symbols:
        raise DataError(source, "the file has no symbol column: pass the symbol it holds")
    frames = {}
    for name in symbols:
        frame = load_bars(source, symbol=name, limits=limits)
        size = timeframe or _spacing(frame, source)
        frames[name] = (size, _as_timeframe(frame, size, source))
    with session_scope(sessions) as session:
        return [
            Stored(name, size, upsert_bars(session, name, size, frame), *_span(frame))
            for name, (size, frame) in frames.items()
        ]


def _span(frame: pd.DataFrame) -> tuple[pd.Timestamp, pd.Timestamp]:
    return frame.index[0], frame.index[-1]


def _spacing(frame: pd.DataFrame, source: str) -> str:
    """The bar size a file's bars are on: the smallest distance between two of them."""
    if len(frame) < 2:
        raise DataError(source, "one bar tells no bar size: pass the timeframe")
    seconds = int(pd.Series(frame.index).diff().min().total_seconds())
    for unit, length in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds % length == 0:
            return f"{seconds // length}{unit}"
    return f"{seconds}s"


def _as_timeframe(frame: pd.DataFrame, timeframe: str, source: str) -> pd.DataFrame:
    """``frame`` as bars of ``timeframe``: aggregated when finer, refused when coarser or when
    a bar is off the timeframe's grid (a gap could no longer be told by the step)."""
    try:
        step = timeframe_step(timeframe)
    except ValueError as exc:
        raise DataError(source, str(exc)) from exc
    if len(frame) > 1:
        spacing = pd.Series(frame.index).diff().min()
        if spacing > step:
            raise DataError(
                source, f"bars are {spacing} apart, coarser than the timeframe {timeframe!r}"
            )
        if spacing < step:
            frame = resample_bars(frame, timeframe)
    off = pd.DatetimeIndex(frame.index).asi8 % step.value != 0
    if off.any():
        stamp = frame.index[int(off.argmax())]
        raise DataError(source, f"bar at {stamp} is not on the {timeframe} grid", column="ts")
    return frame


def export_file(
    sessions: Sessions,
    target: str | Path,
    symbol: str,
    timeframe: str,
    *,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
) -> Stored:
    """Write a stored series (``start <= ts < end``) to a CSV (``.csv``, ``.csv.gz``) or Parquet
    (``.parquet``, ``.pq``) file that :func:`import_file` and the backtest read back."""
    path = Path(target)
    name = path.name.lower()
    if not name.endswith((*CSV_SUFFIXES, *PARQUET_SUFFIXES)):
        known = ", ".join((*CSV_SUFFIXES, *PARQUET_SUFFIXES))
        raise DataError(str(path), f"unsupported file type: expected {known}")
    with session_scope(sessions) as session:
        frame = read_bars(session, symbol, timeframe, _py(start), _py(end))
        if frame.empty:
            held = stored_series(session, symbol)
    if frame.empty:
        raise DataError(str(path), _nothing_to_export(symbol, timeframe, held))
    frame.index = pd.DatetimeIndex(frame.index).as_unit("ns")
    if name.endswith(CSV_SUFFIXES):
        write_csv(frame, path)
    else:
        write_parquet(frame, path)
    return Stored(symbol, timeframe, len(frame), *_span(frame))


def _nothing_to_export(symbol: str, timeframe: str, held: list[StoredSeries]) -> str:
    """Why an export found no bars, with what the store holds of `symbol`: a newcomer who
    imported hourly bars and exports with the default bar size (1m) should not have to guess."""
    if not held:
        return f"no bars of {symbol} are stored (`sigma data list` shows what is)"
    series = ", ".join(f"{s.timeframe} from {s.first} to {s.last}" for s in held)
    return f"no {timeframe} bars of {symbol} stored in that window; stored: {series} (-t picks one)"


def _py(stamp: pd.Timestamp | None) -> datetime | None:
    return None if stamp is None else stamp.to_pydatetime()


# --- what is stored, and its holes ---------------------------------------------------------


@dataclass(frozen=True)
class SeriesReport:
    """One stored series and the bars it lacks between its first and last (``missing`` None
    for calendar bar sizes, whose bars are not evenly spaced); ``gaps`` only when asked for."""

    series: StoredSeries
    missing: int | None
    gaps: tuple[Gap, ...] = ()


def report_series(
    sessions: Sessions,
    *,
    symbol: str | None = None,
    timeframe: str | None = None,
    with_gaps: bool = False,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
) -> list[SeriesReport]:
    """What the store holds per symbol and bar size. The missing count comes from the summary
    alone; ``with_gaps`` also lists each hole (within ``start <= ts < end``), which reads the
    series' bar times."""
    out = []
    with session_scope(sessions) as session:
        for series in stored_series(session, symbol, timeframe):
            try:
                step = timeframe_step(series.timeframe)
            except ValueError:
                out.append(SeriesReport(series, None))
                continue
            first, last = pd.Timestamp(series.first), pd.Timestamp(series.last)
            missing = missing_bars(first, last, series.count, step)
            holes: tuple[Gap, ...] = ()
            if with_gaps and missing:
                times = bar_times(session, series.symbol, series.timeframe, _py(start), _py(end))
                holes = tuple(find_gaps(times, step))
            out.append(SeriesReport(series, missing, holes))
    return out

"""``load_bars``: one call that turns a CSV, Parquet file or PostgreSQL table into a checked bar
frame."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from sigma.feeds.csv_source import read_csv_raw
from sigma.feeds.errors import DataError, RowNumbers
from sigma.feeds.limits import InputLimits
from sigma.feeds.normalise import SYMBOL, resolve_columns, to_bar_frame
from sigma.feeds.pg_source import PREFIX, read_pg_raw
from sigma.feeds.resample import resample_bars
from sigma.feeds.timestamps import to_utc
from sigma.feeds.validation import validate_bars

TimeBound = str | datetime | pd.Timestamp | None
CSV_SUFFIXES = (".csv", ".csv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")


def load_bars(
    source: str,
    *,
    symbol: str | None = None,
    start: TimeBound = None,
    end: TimeBound = None,
    database_url: str | None = None,
    timeframe: str | None = None,
    limits: InputLimits | None = None,
) -> pd.DataFrame:
    """Load, check and optionally resample OHLCV bars.

    ``source`` is a path ending in ``.csv``, ``.csv.gz``, ``.parquet`` or ``.pq``, or
    ``pg:TABLE`` / ``pg:SCHEMA.TABLE`` read from ``database_url``. Column names are matched
    case-insensitively (``date``/``datetime``/``time``/``timestamp`` for ``ts``); timestamps are
    epoch numbers or ISO 8601, naive ones UTC; a ``symbol`` column is filtered by ``symbol``;
    a missing volume is 0.0. ``start``/``end`` (inclusive) limit the window, ``timeframe``
    (``"1h"``, ``"5m"``, ...) resamples the result. A file over ``limits`` (default
    :class:`~sigma.feeds.limits.InputLimits`) is refused before (or while) it is read.

    Returns a bar frame (see :mod:`sigma.feeds.frame`). Raises
    :class:`~sigma.feeds.errors.DataError` naming the source, line/row and column of the first
    problem, including when nothing is left after filtering.
    """
    lo = to_utc(start, "start") if start is not None else None
    hi = to_utc(end, "end") if end is not None else None
    raw, rows = _read(
        source, symbol=symbol, start=lo, end=hi, database_url=database_url, limits=limits
    )
    frame, rows = to_bar_frame(raw, source, rows, symbol=symbol)
    frame, rows = _window(frame, rows, lo, hi)
    if frame.empty:
        raise DataError(source, f"no rows {_describe(symbol, lo, hi)}".rstrip())
    validate_bars(frame, source, rows=rows)
    return resample_bars(frame, timeframe) if timeframe else frame


def source_symbols(
    source: str, *, database_url: str | None = None, limits: InputLimits | None = None
) -> list[str]:
    """The distinct values of ``source``'s symbol column, sorted; empty when it has none.

    A row without a symbol in a file that has the column is a DataError naming its line: it
    would otherwise be left out of every symbol's bars without a word."""
    raw, rows = _read(
        source, symbol=None, start=None, end=None, database_url=database_url, limits=limits
    )
    names = resolve_columns([str(c) for c in raw.columns], source)
    if SYMBOL not in names:
        return []
    values = raw[names[SYMBOL]].astype("string").str.strip().fillna("")
    blank = (values == "").to_numpy(dtype=bool)
    if blank.any():
        raise rows.error(source, int(np.argmax(blank)), "symbol is missing", column=SYMBOL)
    return sorted(str(v) for v in values.unique())


def _read(
    source: str,
    *,
    symbol: str | None,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
    database_url: str | None,
    limits: InputLimits | None,
) -> tuple[pd.DataFrame, RowNumbers]:
    if source.startswith(PREFIX):
        raw, rows = read_pg_raw(source, database_url, symbol=symbol, start=start, end=end)
        if raw.empty:
            raise DataError(source, f"no rows {_describe(symbol, start, end)}".rstrip())
        return raw, rows
    name = source.lower()
    if name.endswith(CSV_SUFFIXES):
        return read_csv_raw(Path(source), source, limits)
    if name.endswith(PARQUET_SUFFIXES):
        # Here, not at the top: pyarrow (~35 MB) loads only when a Parquet file is read.
        from sigma.feeds.parquet_source import read_parquet_raw

        return read_parquet_raw(Path(source), source, limits)
    known = ", ".join((*CSV_SUFFIXES, *PARQUET_SUFFIXES))
    if Path(source).is_dir():
        raise DataError(source, f"is a directory, not a file: name a {known} file in it")
    raise DataError(source, f"unsupported source: expected a {known} file or pg:TABLE")


def _window(
    frame: pd.DataFrame, rows: RowNumbers, lo: pd.Timestamp | None, hi: pd.Timestamp | None
) -> tuple[pd.DataFrame, RowNumbers]:
    """Rows with lo <= ts <= hi. A mask rather than slicing: the rows are not yet known to be
    sorted, and unsorted input must reach validation to be reported."""
    if lo is None and hi is None:
        return frame, rows
    stamps = pd.DatetimeIndex(frame.index).asi8
    keep = np.ones(len(frame), dtype=bool)
    if lo is not None:
        keep &= stamps >= lo.as_unit("ns").value
    if hi is not None:
        keep &= stamps <= hi.as_unit("ns").value
    if keep.all():
        return frame, rows
    return frame.loc[keep], rows.take(keep)


def _describe(symbol: str | None, lo: pd.Timestamp | None, hi: pd.Timestamp | None) -> str:
    parts = [f"for symbol {symbol!r}"] if symbol is not None else []
    if lo is not None:
        parts.append(f"from {lo}")
    if hi is not None:
        parts.append(f"up to {hi}")
    return " ".join(parts)

"""From a table as read (any column names, text or numbers) to a bar frame.

Shared by every loader so that CSV, Parquet and PostgreSQL follow the same naming rules.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sigma.feeds.errors import DataError, RowNumbers
from sigma.feeds.frame import BAR_COLUMNS, FUNDING, PRICE_COLUMNS, TS, make_bar_frame
from sigma.feeds.timestamps import parse_timestamps

SYMBOL = "symbol"
HAS_SYMBOLS = "sigma.has_symbols"
"""Key of a loaded frame's ``attrs``: whether its source had a symbol column to filter by
(without one, a ``symbol`` only names the bars)."""
# Accepted spellings, compared case-insensitively; earlier timestamp names win when a file
# has several (a "timestamp" column beats a "date" column). `open_time` is Binance's name for
# a kline's start.
TS_ALIASES: tuple[str, ...] = ("ts", "timestamp", "datetime", "date", "time", "open_time")
_SEPARATORS = {";": "';'", "\t": "tabs", "|": "'|'"}
_HEADER = "ts,open,high,low,close,volume"
_BINANCE_KLINE = "open_time,open,high,low,close,volume,close_time,..."
_WANTED: tuple[str, ...] = (*BAR_COLUMNS, FUNDING, SYMBOL)


def resolve_columns(columns: list[str], source: str) -> dict[str, str]:
    """Map canonical names (ts, open, ..., funding_rate, symbol) to the source's own column
    names.

    Unknown columns (``adj close``, ``trades``, ...) are ignored. Two columns that differ only in
    case are ambiguous and rejected rather than silently picking one.
    """
    by_key: dict[str, str] = {}
    for name in columns:
        key = str(name).strip().lower()
        if key in by_key:
            raise DataError(source, f"columns {by_key[key]!r} and {name!r} are ambiguous")
        by_key[key] = str(name)
    found = {want: by_key[want] for want in _WANTED if want in by_key}
    for alias in TS_ALIASES:
        if alias in by_key:
            found[TS] = by_key[alias]
            break
    missing = [c for c in (TS, *PRICE_COLUMNS) if c not in found]
    if missing:
        raise DataError(source, _header_problem(columns) or _missing(missing))
    return found


def _missing(missing: list[str]) -> str:
    hint = f" (accepted names for {TS}: {', '.join(TS_ALIASES)})" if TS in missing else ""
    return f"missing columns: {', '.join(missing)}{hint}"


def _header_problem(columns: list[str]) -> str | None:
    """Why a header lacks the bar columns when the file is not comma-separated CSV or has no
    header at all, with how to convert it; None for a header that only misses columns."""
    first = str(columns[0]) if columns else ""
    for separator, name in _SEPARATORS.items():
        if separator in first:
            return (
                f"the header {first!r} is one column, its fields separated by {name}: "
                "SIGMA reads comma-separated CSV with '.' as the decimal point "
                f"(header e.g. {_HEADER})"
            )
    if pd.to_numeric(pd.Series(columns, dtype=str), errors="coerce").notna().any():
        return (
            f"the first line holds data ({', '.join(map(str, columns[:3]))}, ...), not column "
            f"names: add a header line, e.g. {_HEADER} (Binance klines: {_BINANCE_KLINE})"
        )
    return None


def date_and_time(columns: list[str], names: dict[str, str]) -> tuple[str, str] | None:
    """The source's ``date`` and ``time`` columns when the timestamp is split over the two
    (common in broker exports), else None; `names` as `resolve_columns` gives them."""
    keys = {str(c).strip().lower(): str(c) for c in columns}
    if names[TS] == keys.get("date") and "time" in keys:
        return keys["date"], keys["time"]
    return None


def _timestamps_column(raw: pd.DataFrame, names: dict[str, str]) -> pd.Series:
    """The timestamp column, the ``date`` and ``time`` columns joined when it is split."""
    split = date_and_time([str(c) for c in raw.columns], names)
    if split is not None:
        date, time = (raw[column].astype("string") for column in split)
        return date.str.strip() + " " + time.str.strip()
    return raw[names[TS]]


def _numbers(values: pd.Series, name: str, source: str, rows: RowNumbers) -> np.ndarray:
    if pd.api.types.is_bool_dtype(values):
        # True/False would pass as prices 1/0: a mis-typed column, not data.
        raise DataError(source, f"{name} holds booleans, not numbers", column=name)
    if pd.api.types.is_numeric_dtype(values):
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    parsed = pd.to_numeric(values, errors="coerce")
    bad = (parsed.isna() & values.notna()).to_numpy()
    if bad.any():
        at = int(np.argmax(bad))
        raise rows.error(
            source, at, f"{name}: cannot parse number {values.iloc[at]!r}", column=name
        )
    return parsed.to_numpy(dtype=np.float64, na_value=np.nan)


def select_symbol(
    raw: pd.DataFrame, column: str | None, symbol: str | None, source: str
) -> np.ndarray | None:
    """The boolean mask of rows for ``symbol``, or None when every row is kept.

    Without a symbol column the file is taken to hold one instrument. With one, ``symbol=None``
    is only allowed when there is a single symbol, because mixing instruments would interleave
    their prices.
    """
    if column is None:
        return None
    values = raw[column].astype("string").str.strip()
    if symbol is None:
        distinct = values.dropna().unique()
        if len(distinct) > 1:
            shown = ", ".join(sorted(str(s) for s in distinct)[:5])
            raise DataError(source, f"holds several symbols ({shown}); pass symbol=")
        return None
    keep = (values == symbol).fillna(False).to_numpy(dtype=bool)
    if not keep.any():
        shown = ", ".join(sorted(str(s) for s in values.dropna().unique())[:5])
        raise DataError(source, f"no rows for symbol {symbol!r} (found: {shown or 'none'})")
    return keep


def to_bar_frame(
    raw: pd.DataFrame, source: str, rows: RowNumbers, *, symbol: str | None = None
) -> tuple[pd.DataFrame, RowNumbers]:
    """Rename, filter by symbol and parse ``raw`` into a bar frame (not yet validated).

    Returns the frame and the source row numbers of its rows. A missing volume column becomes
    0.0: plenty of price histories (FX, indices) have none. A ``funding_rate`` column is kept,
    a blank rate read as 0 (funding is paid every few hours, so most bars have none); text that
    is not a number is a DataError naming its row. ``frame.attrs[HAS_SYMBOLS]`` says whether the
    source had a symbol column.
    """
    if raw.empty:
        raise DataError(source, "no data rows")
    names = resolve_columns([str(c) for c in raw.columns], source)
    keep = select_symbol(raw, names.get(SYMBOL), symbol, source)
    if keep is not None:
        raw = raw.loc[keep]
        rows = rows.take(keep)
    ts = parse_timestamps(_timestamps_column(raw, names), source, rows)
    prices = [_numbers(raw[names[c]], c, source, rows) for c in PRICE_COLUMNS]
    if "volume" in names:
        volume = _numbers(raw[names["volume"]], "volume", source, rows)
    else:
        volume = np.zeros(len(raw), dtype=np.float64)
    open_, high, low, close = prices
    frame = make_bar_frame(ts, open_, high, low, close, volume)
    if FUNDING in names:
        rates = _numbers(raw[names[FUNDING]], FUNDING, source, rows)
        frame[FUNDING] = np.where(np.isnan(rates), 0.0, rates)
    frame.attrs[HAS_SYMBOLS] = SYMBOL in names
    return frame, rows

"""Turning a column of timestamps as found in files and tables into UTC instants."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import numpy as np
import pandas as pd

from sigma.domain.text import clip
from sigma.feeds.errors import DataError, RowNumbers
from sigma.feeds.frame import TS, utc_index

# Epoch numbers carry no unit, so it is read from the magnitude: each unit counts a date from
# 1973-03-03 to 2100 in its own band of numbers, and the bands do not overlap (seconds up to
# 4.1e9, milliseconds from 1e11). A number outside every band, or outside the band of the
# column's other numbers, is refused rather than read as a date in 1970 or in the year 5000.
_Unit = Literal["s", "ms", "us", "ns"]
_FIRST_S = 1e8  # 1973-03-03
_LAST_S = 4_102_444_800.0  # 2100-01-01
_EPOCH_UNITS: tuple[tuple[_Unit, float, str], ...] = (
    ("s", 1.0, "seconds"),
    ("ms", 1e3, "milliseconds"),
    ("us", 1e6, "microseconds"),
    ("ns", 1e9, "nanoseconds"),
)
FIRST_EPOCH_DATE = pd.Timestamp(int(_FIRST_S), unit="s", tz="UTC")
"""The first date an epoch number may be; a typed column of only earlier dates (from 1970)
holds epoch numbers of a too-fine unit."""
_BANDS = "seconds, milliseconds, microseconds or nanoseconds since 1970 of a date from 1973 to 2100"


def _epoch_unit(values: np.ndarray) -> tuple[_Unit, float, str] | None:
    """The unit whose band holds the biggest of `values`, or None when no band does."""
    biggest = float(np.nanmax(np.abs(values))) if values.size else 0.0
    for unit in _EPOCH_UNITS:
        if _FIRST_S * unit[1] <= biggest < _LAST_S * unit[1]:
            return unit
    return None


def _parse_epochs(
    numbers: pd.Series, raw: pd.Series, source: str, rows: RowNumbers
) -> pd.DatetimeIndex:
    floats = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
    present = ~np.isnan(floats)
    if not present.any():  # all missing: `_checked` names the first row
        return pd.DatetimeIndex(pd.to_datetime(numbers, unit="s", utc=True))
    unit = _epoch_unit(floats[present])
    if unit is None:
        at = int(np.argmax(np.where(present, np.abs(floats), -1.0)))
        reason = f"epoch {TS} {clip(str(raw.iloc[at]))} is out of range: expected {_BANDS}"
        raise rows.error(source, at, reason, column=TS)
    code, scale, name = unit
    outside = present & ((floats < _FIRST_S * scale) | (floats >= _LAST_S * scale))
    _refuse_first(
        outside,
        raw,
        source,
        rows,
        f"is not in {name} like the rest of the column: expected {_BANDS}, one unit per column",
    )
    return pd.DatetimeIndex(pd.to_datetime(numbers, unit=code, utc=True))


def _check_typed(parsed: pd.DatetimeIndex, source: str) -> None:
    """A typed timestamp column whose dates all fall in 1970-1973 holds epoch numbers of a
    bigger unit than its type says (seconds stored as milliseconds)."""
    present = parsed.dropna()
    if present.empty:
        return
    first = pd.Timestamp(0, tz="UTC")
    if present.min() >= first and present.max() < FIRST_EPOCH_DATE:
        raise DataError(
            source,
            f"{TS} values all fall between 1970 and 1973 ({present.min()} to {present.max()}): "
            "epoch numbers stored with a too-fine unit (seconds typed as milliseconds?)",
            column=TS,
        )


def _numeric_text(values: pd.Series, present: np.ndarray) -> bool:
    """Whether text timestamps may be epoch numbers: their first value reads as a number.
    Converting a million ISO dates to numbers only to find none was a third of reading a CSV."""
    if not present.any():
        return True
    first = values.iloc[[int(np.argmax(present))]]
    return bool(pd.to_numeric(first, errors="coerce").notna().all())


def parse_timestamps(values: pd.Series, source: str, rows: RowNumbers) -> pd.DatetimeIndex:
    """Parse epoch numbers (s, ms, us or ns, told apart by size) or ISO 8601 text to UTC.

    Epoch numbers must be dates from 1973 to 2100, all in one unit; others are refused with
    their row. A typed timestamp column whose dates all fall in 1970-1973 is refused too.

    Naive timestamps are UTC; ones with an offset are converted. Any value that is missing or
    cannot be parsed is a DataError naming its row.
    """
    if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(values):
        typed = pd.DatetimeIndex(values)
        _check_typed(typed if typed.tz is not None else typed.tz_localize("UTC"), source)
        return _checked(typed, values, source, rows)
    if pd.api.types.is_bool_dtype(values):
        raise DataError(source, f"{TS} holds booleans, not timestamps", column=TS)
    present = values.notna().to_numpy()
    typed_numbers = pd.api.types.is_numeric_dtype(values)
    if typed_numbers or _numeric_text(values, present):
        numbers = pd.to_numeric(values, errors="coerce")
        if typed_numbers or bool(np.all(numbers.notna().to_numpy()[present])):
            parsed = _parse_epochs(numbers, values, source, rows)
            return _checked(parsed, values, source, rows)
    # Text: ISO 8601 only. Guessing day/month order ("01/02/2024") would silently swap dates.
    parsed = pd.DatetimeIndex(pd.to_datetime(values, utc=True, format="ISO8601", errors="coerce"))
    return _checked(parsed, values, source, rows)


def _checked(
    parsed: pd.DatetimeIndex, raw: pd.Series, source: str, rows: RowNumbers
) -> pd.DatetimeIndex:
    bad = np.asarray(parsed.isna())
    if bad.any():
        at = int(np.argmax(bad))  # first bad row
        value = raw.iloc[at]
        if pd.isna(value) or (isinstance(value, str) and not value.strip()):
            raise rows.error(source, at, f"{TS} is missing", column=TS)
        raise rows.error(source, at, f"cannot parse timestamp {value!r}", column=TS)
    naive = parsed.tz_localize(None) if parsed.tz is not None else parsed
    # pandas reads text dates of any year at a coarser unit; bars are nanoseconds.
    outside = np.asarray((naive < pd.Timestamp.min) | (naive > pd.Timestamp.max))
    span = f"{pd.Timestamp.min:%Y-%m-%d} to {pd.Timestamp.max:%Y-%m-%d}"
    _refuse_first(outside, raw, source, rows, f"is out of range: {span}", what="timestamp")
    return utc_index(parsed)


def _refuse_first(
    refused: np.ndarray,
    raw: pd.Series,
    source: str,
    rows: RowNumbers,
    reason: str,
    what: str = f"epoch {TS}",
) -> None:
    """A DataError at the first row `refused` marks: `<what> <its value> <reason>`."""
    if refused.any():
        at = int(np.argmax(refused))
        raise rows.error(source, at, f"{what} {clip(str(raw.iloc[at]))} {reason}", column=TS)


def to_utc(value: str | datetime | pd.Timestamp, what: str) -> pd.Timestamp:
    """A start/end bound as a UTC Timestamp; naive values are UTC."""
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cannot parse {what} {value!r} as a timestamp") from exc
    if pd.isna(stamp):
        raise ValueError(f"{what} must not be empty/NaT")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def parse_iso(text: str) -> pd.Timestamp:
    """A time a person typed (`--start`, `--since`) as a UTC Timestamp: ISO 8601 only, naive
    is UTC. ValueError otherwise: `01/05/2024` is January or May depending on who wrote it,
    and `now` moves; both are refused rather than guessed, as in the data files."""
    return to_utc(datetime.fromisoformat(text.strip()), "time")

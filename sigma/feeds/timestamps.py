"""Turning a column of timestamps as found in files and tables into UTC instants."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import numpy as np
import pandas as pd

from sigma.feeds.errors import DataError, RowNumbers
from sigma.feeds.frame import TS, utc_index

# Epoch numbers carry no unit, so it is read from the magnitude: 1e11 seconds is the year 5138,
# while 1e11 milliseconds is 1973, and so on down the units. Real market data never sits in the
# overlaps.
_Unit = Literal["s", "ms", "us", "ns"]
_EPOCH_UNITS: tuple[tuple[float, _Unit], ...] = ((1e11, "s"), (1e14, "ms"), (1e17, "us"))


def _epoch_unit(values: np.ndarray) -> _Unit:
    biggest = float(np.nanmax(np.abs(values))) if values.size else 0.0
    for limit, unit in _EPOCH_UNITS:
        if biggest < limit:
            return unit
    return "ns"


def parse_timestamps(values: pd.Series, source: str, rows: RowNumbers) -> pd.DatetimeIndex:
    """Parse epoch numbers (s, ms, us or ns, told apart by size) or ISO 8601 text to UTC.

    Naive timestamps are UTC; ones with an offset are converted. Any value that is missing or
    cannot be parsed is a DataError naming its row.
    """
    if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(values):
        return _checked(pd.DatetimeIndex(values), values, source, rows)
    if pd.api.types.is_bool_dtype(values):
        raise DataError(source, f"{TS} holds booleans, not timestamps", column=TS)
    numbers = pd.to_numeric(values, errors="coerce")
    present = values.notna().to_numpy()
    if pd.api.types.is_numeric_dtype(values) or bool(np.all(numbers.notna().to_numpy()[present])):
        floats = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
        unit = _epoch_unit(floats[present])
        try:
            parsed = pd.DatetimeIndex(pd.to_datetime(numbers, unit=unit, utc=True))
        except (OverflowError, ValueError) as exc:
            raise DataError(source, f"epoch {TS} out of range: {exc}", column=TS) from exc
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
    return utc_index(parsed)


def to_utc(value: str | datetime | pd.Timestamp, what: str) -> pd.Timestamp:
    """A start/end bound as a UTC Timestamp; naive values are UTC."""
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cannot parse {what} {value!r} as a timestamp") from exc
    if pd.isna(stamp):
        raise ValueError(f"{what} must not be empty/NaT")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")

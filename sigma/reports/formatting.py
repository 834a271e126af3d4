"""Turning report values into display text and into JSON-safe data.

Statistics arrive as float, int, Decimal, str, None or timedelta (and sometimes numpy
scalars). Display rules: keys ending in ``_pct`` hold percentages already scaled to 100
(12.5 means 12.5 %), Decimal keeps its exact digits, and NaN shows as a dash rather than
"nan" because a missing figure is not a number a trader should read.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any

import numpy as np
import pandas as pd

MISSING = "—"


def _plain(value: Any) -> Any:
    """Unwrap numpy scalars so the isinstance checks below see Python types."""
    # datetime64/timedelta64 `.item()` can yield a bare int of nanoseconds; pandas keeps the type.
    if isinstance(value, np.datetime64):
        return pd.Timestamp(value)
    if isinstance(value, np.timedelta64):
        return pd.Timedelta(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def format_float(value: float, *, pct: bool = False) -> str:
    """Readable text for a float: grouped thousands, fewer decimals for big numbers."""
    if math.isnan(value):
        return MISSING
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    text = f"{value:,.2f}" if pct or abs(value) >= 100 else f"{value:,.4f}".rstrip("0").rstrip(".")
    if text in ("-0", "-0.00"):
        text = text[1:]
    return f"{text} %" if pct else text


def format_timedelta(value: timedelta) -> str:
    """``3d 04:05:06`` style, which reads better than ``3 days, 4:05:06``."""
    sign = "-" if value < timedelta(0) else ""
    total = abs(value)
    hours, rest = divmod(total.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{seconds:02d}"
    return f"{sign}{total.days}d {clock}" if total.days else f"{sign}{clock}"


def format_timestamp(value: datetime | pd.Timestamp | np.datetime64) -> str:
    """UTC timestamp to the second; the report states the zone once, not per cell."""
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.strftime("%Y-%m-%d %H:%M:%S")


def format_value(key: str, value: Any) -> str:
    """Display text for one statistic or parameter (not yet HTML-escaped)."""
    value = _plain(value)
    pct = key.endswith("_pct")
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal):
        if not value.is_finite():
            return MISSING if value.is_nan() else format_float(float(value), pct=pct)
        # Percentages are rounded for reading; money keeps its exact digits.
        return f"{value:,.2f} %" if pct else f"{value:,f}"
    if isinstance(value, int):
        return f"{value:,} %" if pct else f"{value:,}"
    if isinstance(value, float):
        return format_float(value, pct=pct)
    if isinstance(value, timedelta):
        return format_timedelta(value)
    if isinstance(value, datetime):
        return format_timestamp(value) + " UTC"
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)


def to_jsonable(value: Any) -> Any:
    """Convert to data ``json.dumps(..., allow_nan=False)`` accepts, losing no exactness.

    Decimal becomes its exact string, NaN/inf become null (JSON has neither), datetimes ISO
    8601 in UTC, timedeltas ISO 8601 durations; unknown objects fall back to ``str``.
    """
    value = _plain(value)
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return str(value) if value.is_finite() else None
    if isinstance(value, datetime):
        ts = pd.Timestamp(value)
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
        return ts.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return pd.Timedelta(value).isoformat()
    if isinstance(value, Enum):
        return to_jsonable(value.value)
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset | np.ndarray):
        return [to_jsonable(v) for v in value]
    return str(value)

"""Rounding exact figures for reading: money to cents, prices to the instrument's precision.

Only what a person reads is rounded (half to even, as a ledger rounds); the exports keep
every digit. The price precision is read from the bars, since a run's result does not carry
its instrument: the most decimals any of its first closes needs, between 2 and 8.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import numpy as np
import numpy.typing as npt

from sigma.reports.formatting import MISSING, format_timedelta, format_timestamp, format_value
from sigma.reports.trade_columns import Unit

MIN_PLACES, MAX_PLACES = 2, 8
_SAMPLE = 1000  # closes read to find the precision: enough to meet every tick size


def _first_finite(values: npt.NDArray[np.float64], count: int) -> list[float]:
    """The first `count` finite values, read a stretch at a time (not a finite copy of a
    million bars for a thousand)."""
    found: list[float] = []
    step = 4 * count
    for start in range(0, len(values), step):
        chunk = values[start : start + step]
        found += chunk[np.isfinite(chunk)].tolist()
        if len(found) >= count:
            break
    return found[:count]


def price_places(close: npt.ArrayLike) -> int:
    """Decimals needed to show the prices in `close` (floats) as the data gives them."""
    values = np.asarray(close, dtype=np.float64)
    places = MIN_PLACES
    for value in _first_finite(values, _SAMPLE):
        exponent = Decimal(repr(value)).as_tuple().exponent
        assert isinstance(exponent, int)  # a finite value's is
        places = max(places, -exponent)
    return min(places, MAX_PLACES)


def rounded(value: Decimal, places: int) -> str:
    """`value` rounded half to even to `places` decimals, thousands grouped."""
    if not value.is_finite():
        return format_value("", value)
    return f"{value.quantize(Decimal(1).scaleb(-places), ROUND_HALF_EVEN):,f}"


def money(value: Any) -> str:
    """A money amount for reading: Decimal to the cent; anything else as `format_value`."""
    return rounded(value, 2) if isinstance(value, Decimal) else format_value("", value)


def cell_text(unit: Unit, value: Any, places: int) -> str:
    """Display text of one trade-table value of `unit` (prices to `places` decimals)."""
    if value is None:
        return MISSING
    if unit == "price":
        return rounded(value, places)
    if unit == "money":
        return money(value)
    if unit == "pct":
        return format_value("_pct", value)
    if unit == "ts":
        return format_timestamp(value)
    if unit == "seconds":
        return format_timedelta(timedelta(seconds=value))
    if unit == "bool":
        return "open" if value else "closed"
    return format_value("", value)

"""Axis ticks: "nice" round values and calendar-aligned dates with matching labels."""

from __future__ import annotations

import math
from collections.abc import Callable

import pandas as pd

Tick = tuple[float, str]

# Candidate time steps, shortest first: (approximate seconds, pandas frequency, label format).
# Month and year steps use anchored frequencies so ticks land on the 1st, not on 30-day marks.
_TIME_STEPS: tuple[tuple[float, str, str], ...] = (
    (1, "s", "%H:%M:%S"),
    (5, "5s", "%H:%M:%S"),
    (15, "15s", "%H:%M:%S"),
    (30, "30s", "%H:%M:%S"),
    (60, "min", "%H:%M"),
    (300, "5min", "%H:%M"),
    (900, "15min", "%H:%M"),
    (1800, "30min", "%H:%M"),
    (3600, "h", "%m-%d %H:%M"),
    (3 * 3600, "3h", "%m-%d %H:%M"),
    (6 * 3600, "6h", "%m-%d %H:%M"),
    (12 * 3600, "12h", "%m-%d %H:%M"),
    (86400, "D", "%Y-%m-%d"),
    (2 * 86400, "2D", "%Y-%m-%d"),
    (7 * 86400, "W-MON", "%Y-%m-%d"),
    (30 * 86400, "MS", "%Y-%m"),
    (91 * 86400, "3MS", "%Y-%m"),
    (182 * 86400, "6MS", "%Y-%m"),
    (365 * 86400, "YS", "%Y"),
    (2 * 365 * 86400, "2YS", "%Y"),
    (5 * 365 * 86400, "5YS", "%Y"),
    (10 * 365 * 86400, "10YS", "%Y"),
)
_ANCHORED = ("W-", "MS", "YS")


def nice_step(span: float, target: int) -> float:
    """A 1/2/2.5/5 x 10^k step giving about `target` intervals over `span`."""
    raw = span / max(target, 1)
    magnitude = 10.0 ** math.floor(math.log10(raw))
    for factor in (1.0, 2.0, 2.5, 5.0):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10.0 * magnitude


def default_value_format(step: float) -> Callable[[float], str]:
    """Formatter showing just enough decimals to tell ticks `step` apart."""
    decimals = max(0, -math.floor(math.log10(step))) if step > 0 else 0
    if step > 0 and round(step, decimals) != step:
        decimals += 1  # e.g. 2.5 needs one decimal more than 2
    return lambda v: f"{v:,.{decimals}f}"


def value_ticks(
    lo: float, hi: float, target: int = 5, fmt: Callable[[float], str] | None = None
) -> list[Tick]:
    """Round tick positions within [lo, hi] with labels."""
    if not hi > lo:
        return [(lo, (fmt or default_value_format(1.0))(lo))]
    step = nice_step(hi - lo, target)
    label = fmt or default_value_format(step)
    first = math.ceil(lo / step - 1e-9)
    last = math.floor(hi / step + 1e-9)
    # `k * step` rather than repeated addition keeps float error from accumulating.
    return [(k * step + 0.0, label(k * step + 0.0)) for k in range(first, last + 1)]


def time_ticks(lo: float, hi: float, target: int = 6) -> list[Tick]:
    """Calendar-aligned tick positions (epoch seconds, UTC) within [lo, hi] with date labels."""
    start = pd.Timestamp(lo, unit="s", tz="UTC")
    end = pd.Timestamp(hi, unit="s", tz="UTC")
    span = max(hi - lo, 1.0)
    _seconds, freq, fmt = next((s for s in _TIME_STEPS if span / s[0] <= target), _TIME_STEPS[-1])
    if any(tag in freq for tag in _ANCHORED):
        stamps = pd.date_range(start, end, freq=freq)
    else:
        stamps = pd.date_range(start.ceil(freq), end, freq=freq)
    if len(stamps) == 0:  # a span shorter than the smallest step: label the start alone
        return [(lo, start.strftime("%Y-%m-%d %H:%M:%S"))]
    epoch = pd.Timestamp(0, tz="UTC")
    return [((ts - epoch) / pd.Timedelta(seconds=1), ts.strftime(fmt)) for ts in stamps]

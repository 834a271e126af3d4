"""Aggregating bars into a coarser timeframe (e.g. 1-minute bars into hourly bars)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset
from pandas.tseries.offsets import BaseOffset

from sigma.feeds.frame import FUNDING, check_shape, utc_index

# Trader shorthand: "1m" is a minute here (in pandas "m"/"M" would mean month). Checked before
# pandas gets to see the rule.
_SHORTHAND = re.compile(r"^\s*(\d+)\s*(s|sec|secs|m|min|mins|t|h|hr|hrs|d|day|days)\s*$", re.I)
_UNITS = {"s": "s", "sec": "s", "secs": "s", "m": "min", "min": "min", "mins": "min"}
_UNITS |= {"t": "min", "h": "h", "hr": "h", "hrs": "h", "d": "D", "day": "D", "days": "D"}
# Funding rates add up: a bucket holding two funding payments pays both.
_AGG = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
_AGG[FUNDING] = "sum"


def normalise_rule(rule: str) -> BaseOffset:
    """A resampling rule as a fixed-length pandas offset.

    Accepts shorthand (``1m``, ``5m``, ``1h``, ``4h``, ``1d``) and pandas rules of fixed length
    (``15min``, ``90s``, ``2h30min``). Calendar rules (weeks, months) are rejected: where such a
    bucket starts is a convention, not a fact, and guessing it wrong shifts every bar.
    """
    match = _SHORTHAND.match(rule)
    text = f"{match.group(1)}{_UNITS[match.group(2).lower()]}" if match else rule.strip()
    try:
        offset = to_offset(text)
    except ValueError as exc:
        raise ValueError(f"unknown resample rule {rule!r}") from exc
    if not isinstance(offset, pd.offsets.Tick | pd.offsets.Day) or offset.n <= 0:
        raise ValueError(f"resample rule {rule!r} must be a fixed positive length (s, min, h, d)")
    return offset


def resample_bars(frame: pd.DataFrame, rule: str) -> pd.DataFrame:
    """Aggregate a bar frame into buckets of ``rule``: open first, high max, low min, close last,
    volume sum, and a ``funding_rate`` column summed (the bucket pays every rate within it).

    Buckets are closed on the left and labelled with their start (the 10:00 hourly bar holds
    10:00 up to, not including, 11:00), aligned to the Unix epoch so the same bar always lands in
    the same bucket whatever window was loaded. Buckets without bars are dropped, not filled.
    A rule finer than the closest two bars is a ValueError: it would only relabel them.
    """
    check_shape(frame, "resample input")
    offset = normalise_rule(rule)
    if frame.empty:
        return frame.copy()
    stamps = pd.DatetimeIndex(frame.index).asi8
    spacing = int(np.diff(stamps).min()) if len(stamps) > 1 else 0
    if offset.nanos < spacing:
        raise ValueError(
            f"timeframe {rule!r} is finer than the bars, which are {pd.Timedelta(spacing)} "
            "apart: bars can be aggregated, not split"
        )
    grouped = frame.resample(offset, closed="left", label="left", origin="epoch")
    columns = [str(c) for c in frame.columns]
    out = grouped.agg({c: _AGG[c] for c in columns})[columns]
    out = out[out["open"].notna()]
    out.index = utc_index(pd.DatetimeIndex(out.index))
    return out.astype("float64")

"""Bar sizes as time steps, and the holes in a series of bar times."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sigma.feeds.resample import normalise_rule


def timeframe_step(timeframe: str) -> pd.Timedelta:
    """The length of one bar of ``timeframe`` (``1m``, ``5m``, ``1h``, ``1d``, ``15min``...).

    ValueError for calendar sizes (weeks, months): their bars are not evenly spaced, so a
    missing one cannot be told from the step."""
    return pd.Timedelta(normalise_rule(timeframe).nanos, unit="ns")


@dataclass(frozen=True)
class Gap:
    """Bars missing from a series: every step from ``first`` to ``last`` (both inclusive)."""

    first: pd.Timestamp
    last: pd.Timestamp
    missing: int


def find_gaps(times: pd.DatetimeIndex, step: pd.Timedelta) -> list[Gap]:
    """The holes in ``times`` (sorted, unique bar times) where consecutive bars are more than one
    ``step`` apart. Only holes between stored bars count: before the first and after the last
    bar nothing is known to be missing."""
    stamps = times.as_unit("ns").asi8
    nanos = step.value
    apart = np.diff(stamps)
    holes = np.flatnonzero(apart > nanos)
    return [
        Gap(
            first=times[int(at)] + step,
            last=times[int(at) + 1] - step,
            # a hole of 2.5 steps (bars off the grid) still misses 1 bar, not 1.5
            missing=int(-(-int(apart[at]) // nanos)) - 1,
        )
        for at in holes
    ]


def missing_bars(first: pd.Timestamp, last: pd.Timestamp, count: int, step: pd.Timedelta) -> int:
    """How many bars a series of ``count`` bars from ``first`` to ``last`` lacks, from its
    summary alone (the bars between them on a grid of ``step``, minus those stored)."""
    expected = (last - first) // step + 1
    return max(0, int(expected) - count)

"""Donchian trend's fused run: the four channels, the breakout rules, fills and equity in one
compiled pass over the bars (`DonchianTrend.fused`), a block of bars at a time.

A channel at a close is the extreme of the `period` bars before it (`kernels.rolling_extreme`
over the block and the bars just before it, shifted by one); a maximum or minimum is one of
the values, whatever the order they are scanned in, so the channels are those of
`DonchianTrend.targets` and the run is the one the fast path makes of its targets.
"""

from __future__ import annotations

import numba
import numpy as np

from sigma.strategies import next_open
from sigma.strategies.kernels import rolling_extreme
from sigma.strategies.series import FloatArray
from sigma.strategies.vectorised import FusedRun, Terms


@numba.njit(cache=True)
def _prior(  # pragma: no cover - numba-compiled
    x: FloatArray, period: int, sign: float, c0: int, m: int, out: FloatArray
) -> None:
    # The channel at closes c0 .. c0 + m - 1: the extreme of x over the `period` bars before
    # each (NaN until there are that many).
    lo = max(0, c0 - period)
    window = rolling_extreme(x[lo : c0 + m - 1], period, sign)
    for k in range(m):
        j = c0 + k - 1 - lo
        out[k] = window[j] if j >= 0 else np.nan


@numba.njit(cache=True)
def _trend_run(  # pragma: no cover - numba-compiled
    open_: FloatArray,
    high: FloatArray,
    low: FloatArray,
    close: FloatArray,
    periods: tuple[int, int],
    allow_short: bool,
    terms: Terms,
    room: next_open.Room,
) -> FusedRun:
    # `DonchianTrend.targets` executed as `sigma.engine.fast` executes them, a block at a
    # time: a block's channels and targets stay in the first-level cache.
    entry, exit_ = periods
    n = len(close)
    a, equity, lots, money = next_open.started(room, terms)
    size = next_open.BLOCK
    entry_high, entry_low = np.empty(size), np.empty(size)
    exit_high, exit_low = np.empty(size), np.empty(size)
    flat, long, short = next_open.block_rows()
    end = next_open.GO_ON
    for c0 in range(0, n, next_open.BLOCK):
        m = min(next_open.BLOCK, n - c0)
        _prior(high, entry, 1.0, c0, m, entry_high)
        _prior(low, entry, -1.0, c0, m, entry_low)
        _prior(high, exit_, 1.0, c0, m, exit_high)
        _prior(low, exit_, -1.0, c0, m, exit_low)
        for k in range(m):
            c = close[c0 + k]
            up = 1.0 if c > entry_high[k] else np.nan
            down = -1.0 if c < entry_low[k] and allow_short else np.nan
            # `DonchianTrend.on_bar` for each position it may hold at this close: the
            # breakout needs no long position, the breakdown no short one.
            flat[k] = up if up == up else down
            long[k] = down if down == down else (0.0 if c < exit_low[k] else np.nan)
            short[k] = up if up == up else (0.0 if c > exit_high[k] else np.nan)
        rows = (flat, long, short)
        a, end = next_open.execute(a, rows, c0, m, open_, close, equity, terms, lots, money)
        if end != next_open.GO_ON:
            break
    return next_open.finished(end, equity, a, lots, money)


def donchian_trend_run(
    bars: tuple[FloatArray, FloatArray, FloatArray, FloatArray],
    periods: tuple[int, int],
    allow_short: bool,
    terms: Terms,
) -> FusedRun:
    """The fast path's run of Donchian trend over (open, high, low, close) on the account
    `terms`: long above the prior `periods[0]`-bar high, short below the prior low (when
    `allow_short`), flat beyond the prior `periods[1]`-bar channel, filled at the next open."""
    o, h, lo, c = next_open.columns(*bars)
    return next_open.run_with_room(
        lambda room: _trend_run(o, h, lo, c, periods, allow_short, terms, room), len(c)
    )


__all__ = ["donchian_trend_run"]

"""Donchian trend's fused run: the four channels, the breakout rules, fills and equity in one
compiled pass over the bars (`DonchianTrend.fused`), a block of bars at a time.

A channel at a close is the extreme of the `period` bars before it. Here a block's channels
come from running extremes of doubling width (`_doubled`): the extreme of 2w bars is that of
its two halves, and a window of p bars is covered by two of width w (the largest power of two
<= p), overlapping or not; log2(p) passes over the block, each free of dependent steps, so the
compiler vectorises them. An extreme is one of the values whatever the order they are
compared in (NaN when any is NaN, as `kernels.rolling_extreme`; a -0.0 may stand for a 0.0,
which no comparison tells apart), so the decisions are those of `DonchianTrend.targets` and
the run is the one the fast path makes of its targets.
"""

from __future__ import annotations

import numba
import numpy as np

from sigma.strategies import next_open
from sigma.strategies.kernels import higher
from sigma.strategies.series import FloatArray
from sigma.strategies.vectorised import FusedRun, IntArray, Terms


@numba.njit(cache=True)
def _width(period: int) -> int:  # pragma: no cover - numba-compiled
    # The largest power of two <= period.
    w = 1
    while 2 * w <= period:
        w *= 2
    return w


@numba.njit(cache=True)
def _doubled(  # pragma: no cover - numba-compiled
    src: FloatArray, dst: FloatArray, w: int, n: int
) -> None:
    # dst[j]: the extreme of 2w values from j, from src's extremes of w values.
    a, b, out = src[: n - w], src[w:n], dst[: n - w]
    for j in range(len(out)):
        out[j] = higher(a[j], b[j])


@numba.njit(cache=True)
def _channels(  # pragma: no cover - numba-compiled
    x: FloatArray,
    c0: int,
    m: int,
    periods: tuple[int, int],
    sign: float,
    scratch: tuple[FloatArray, FloatArray],
    outs: tuple[FloatArray, FloatArray],
) -> None:
    """The channels of both periods (extremes: max when `sign` is 1.0, min when -1.0) at
    the closes of bars c0 .. c0 + m - 1 into `outs` (c0 >= both periods: the extreme of
    the `p` bars before each close)."""
    top = max(periods)
    span = m + top - 1  # values x[c0 - top : c0 + m - 1]
    cur, other = scratch
    seg, now = x[c0 - top : c0 - top + span], cur[:span]
    for j in range(span):  # a min is the max of the negated values, negated back (exact)
        now[j] = sign * seg[j]
    # Widths double up to the shorter period's, then on up to the longer one's.
    cur, other, w = _grown(cur, other, 1, _width(periods[0]), span)
    _spanned(cur, w, periods[0], top, m, sign, outs[0])
    cur, other, w = _grown(cur, other, w, _width(periods[1]), span)
    _spanned(cur, w, periods[1], top, m, sign, outs[1])


@numba.njit(cache=True)
def _grown(  # pragma: no cover - numba-compiled
    cur: FloatArray, other: FloatArray, w: int, target: int, n: int
) -> tuple[FloatArray, FloatArray, int]:
    # Extremes of width w in `cur` doubled up to width `target`, ping-ponging between the
    # two buffers (in place, the compiler cannot rule out that a write feeds a later read).
    while w < target:
        _doubled(cur, other, w, n)
        cur, other = other, cur
        w *= 2
    return cur, other, w


@numba.njit(cache=True)
def _spanned(  # pragma: no cover - numba-compiled
    cur: FloatArray, w: int, p: int, top: int, m: int, sign: float, out: FloatArray
) -> None:
    # The window of the p bars before close c0 + k starts at k + top - p in `cur` (extremes
    # of width w <= p): the extreme of the w values from there and of the w ending at its end.
    a, b, o = cur[top - p : top - p + m], cur[top - w : top - w + m], out[:m]
    for k in range(m):
        o[k] = sign * higher(a[k], b[k])


@numba.njit(cache=True)
def _decide(  # pragma: no cover - numba-compiled
    close: FloatArray,
    c0: int,
    m: int,
    chans: tuple[FloatArray, FloatArray, FloatArray, FloatArray],
    allow_short: bool,
    codes: IntArray,
) -> None:
    # `DonchianTrend.on_bar` for each position it may hold at each close (entry high, entry
    # low, exit high, exit low): the breakout needs no long position, the breakdown no short
    # one; a NaN channel decides nothing. Branch-free: breakouts come and go at random.
    entry_high, entry_low, exit_high, exit_low = chans
    c = close[c0 : c0 + m]
    for k in range(m):
        up = next_open.LONG * (c[k] > entry_high[k])
        down = next_open.SHORT * (allow_short & (c[k] < entry_low[k]))
        codes[k] = next_open.code(
            next_open.either(up, down),
            next_open.either(down, next_open.FLAT * (c[k] < exit_low[k])),
            next_open.either(up, next_open.FLAT * (c[k] > exit_high[k])),
        )


@numba.njit(cache=True)
def _direct(  # pragma: no cover - numba-compiled
    x: FloatArray, i: int, period: int, sign: float
) -> float:
    # The channel at close i by a scan of the window: for the first bars only.
    if i < period:
        return np.nan
    acc = sign * x[i - period]
    for j in range(i - period + 1, i):
        acc = higher(acc, sign * x[j])
    return float(sign * acc)


@numba.njit(cache=True, nogil=True)  # the fast path checks bars beside it
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
    # time: a block's channels and decisions stay in the first-level cache.
    entry, exit_ = periods
    short_first = (min(entry, exit_), max(entry, exit_))
    n = len(close)
    a, equity, lots, money = next_open.started(room, terms)
    size = next_open.BLOCK
    top = max(entry, exit_)
    scratch = (np.empty(size + top), np.empty(size + top))
    highs = (np.empty(size), np.empty(size))
    lows = (np.empty(size), np.empty(size))
    # A channel of p bars has its first value at bar p (none at all in a history of p bars
    # or fewer): the engine decides from the bar after the later one's (backtesting.py's
    # start, see `Strategy.decision_start`).
    first = min(1 + max(entry if n > entry else 0, exit_ if n > exit_ else 0), n)
    codes = np.zeros(max(size, first), dtype=np.int64)  # nothing, for each bar before
    a, end = next_open.execute_coded(a, codes, 0, first, open_, close, equity, terms, lots, money)
    if end != next_open.GO_ON:
        return next_open.finished(end, equity, a, lots, money)
    # The closes before `top` (some channel still warming up) by direct scans.
    start = min(top, n)
    for c0 in range(first, start, size):
        m = min(size, start - c0)
        for k in range(m):
            i = c0 + k
            highs[0][k], lows[0][k] = _direct(high, i, entry, 1.0), _direct(low, i, entry, -1.0)
            highs[1][k], lows[1][k] = _direct(high, i, exit_, 1.0), _direct(low, i, exit_, -1.0)
        _decide(close, c0, m, (highs[0], lows[0], highs[1], lows[1]), allow_short, codes)
        a, end = next_open.execute_coded(a, codes, c0, m, open_, close, equity, terms, lots, money)
        if end != next_open.GO_ON:
            return next_open.finished(end, equity, a, lots, money)
    # Slot 0 of `highs` and `lows` holds the shorter period's channel.
    at = (0, 1) if entry <= exit_ else (1, 0)
    for c0 in range(max(start, first), n, size):
        m = min(size, n - c0)
        _channels(high, c0, m, short_first, 1.0, scratch, highs)
        _channels(low, c0, m, short_first, -1.0, scratch, lows)
        chans = (highs[at[0]], lows[at[0]], highs[at[1]], lows[at[1]])
        _decide(close, c0, m, chans, allow_short, codes)
        a, end = next_open.execute_coded(a, codes, c0, m, open_, close, equity, terms, lots, money)
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

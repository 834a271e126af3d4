"""Bollinger breakout's fused run: the bands, the breakout rules, fills and equity in one
compiled pass over the bars (`BollingerBreakout.fused`), a block of bars at a time, in O(n)
whatever the period, deciding exactly as `BollingerBreakout.targets`.

The textbook bands (`indicators.sma`, `indicators.rolling_std`, `indicators.bands`) sum each
window afresh: O(n·p). Here each window's average and variance come from running sums of the
block's values less one of them (`_approximate`), with a rigorous bound on how far each band
can be from its textbook value (`_bounds`). A close further from a band than that bound is on
the side the textbook band puts it; a close within it (a near tie, a few bars in a million;
or every bar of a stretch whose closes are all equal) is decided on the textbook bands of that
bar (`_textbook_code`, numpy's operations on the window). A block holding a value the bound
does not cover (NaN, infinite) is decided on the textbook bands throughout.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np

from sigma.strategies import next_open
from sigma.strategies.pairwise import window_std, window_sum
from sigma.strategies.series import FloatArray
from sigma.strategies.vectorised import FusedRun, IntArray, Terms

# Twice the unit roundoff: each floating-point operation moves a result by less than this,
# relative to its size; the bounds below use it with room to spare.
_EPS = 2.0**-52
# The least float: relative bounds fail where results underflow (each such rounding moves a
# result by up to half of this, absolutely), so the bounds add a few of it per operation.
_TINY = 2.0**-1074
_UNSETTLED = -1  # a bar's code until it is decided on the textbook bands


@numba.njit(cache=True, inline="always")
def _rules(  # pragma: no cover - numba-compiled
    above_upper: bool, below_lower: bool, below_mid: bool, above_mid: bool, allow_short: bool
) -> int:
    # `BollingerBreakout.on_bar` for each position it may hold at a close, from the close's
    # sides of the bands (all False for a NaN band: it decides nothing).
    enter = next_open.either(
        next_open.LONG * above_upper, next_open.SHORT * (allow_short & below_lower)
    )
    return next_open.code(  # type: ignore[no-any-return]
        enter,
        next_open.either(enter, next_open.FLAT * below_mid),
        next_open.either(enter, next_open.FLAT * above_mid),
    )


@numba.njit(cache=True)
def _textbook_code(  # pragma: no cover - numba-compiled
    x: FloatArray, i: int, period: int, k_std: float, allow_short: bool, work: FloatArray
) -> int:
    """The decisions at bar i's close on the textbook bands: `indicators.bands` of `sma`
    and `rolling_std` (numpy's window sums, `window_sum` and `window_std`)."""
    mid = window_sum(x, i, period) / period
    width = k_std * window_std(x, i, period, work)
    c = x[i]
    return _rules(c > mid + width, c < mid - width, c < mid, c > mid, allow_short)  # type: ignore[no-any-return]


@numba.njit(cache=True)
def _prefix_sums(  # pragma: no cover - numba-compiled
    seg: FloatArray, shift: float, s1: FloatArray, s2: FloatArray
) -> tuple[float, bool]:
    """Running sums of `seg` less `shift` and of their squares into `s1` and `s2` (from 0,
    one slot more than `seg`), and the largest |value - shift| (rounded up), or False when a
    value is not finite."""
    a1 = a2 = 0.0
    s1[0] = s2[0] = 0.0
    top = 0.0
    finite = True
    for j in range(len(seg)):
        y = seg[j] - shift
        a1 += y
        a2 += y * y
        s1[j + 1] = a1
        s2[j + 1] = a2
        top = max(top, abs(y))
        finite &= seg[j] - seg[j] == 0.0  # NaN and ±inf give NaN
    return top * (1.0 + 1e-7), finite


class _Bounds(NamedTuple):
    """How far a block's running values can be from the textbook ones (`_block_bounds`)."""

    mid: float  # the average's bound
    band: float  # a band's bound, less the deviation's part below
    root: float  # the deviation's bound, and ...
    delta: float  # ... delta / (the running deviation), the smaller of the two


@numba.njit(cache=True)
def _block_bounds(  # pragma: no cover - numba-compiled
    shift: float, d: float, e1: float, e2: float, p: int, k_abs: float
) -> _Bounds:
    """The bounds of a block's running averages and bands, each doubled (they are tiny, and
    a margin costs nothing but a few more bars decided on the textbook bands; it also covers
    the roundings of the comparisons made with them).

    `d` bounds the block's values' distance from `shift`, `e1` and `e2` the errors of the
    running window sums (less `shift`, of their squares) divided by p. With μ and V the
    window's exact mean and variance, m1 and m2 the exact means less `shift` and of the
    squares, w1 and w2 the running ones (sums times the rounded 1/p):
    - |w1 - m1| <= e1 + 2·eps·d; the running average shift + w1 rounds once more; the
      textbook average is within (p + 1)·eps·X of μ (any order of summation, X the largest
      |value|).
    - var = w2 - w1² is within ev of V (below). The textbook variance is T·(1 ± (p + 3)·eps)
      with T = V + (μ - textbook average)² exactly (the squared deviations from any centre
      sum to that), so the two variances are within Δ of each other, and the deviations
      within min(√Δ, Δ / running deviation) plus the square roots' roundings.
    - a band: k times that, plus the average's bound and the roundings of k·std and of the
      sum; every magnitude is bounded by the block's (the deviation by d)."""
    big = abs(shift) + d
    e_w1 = e1 + 2.0 * _EPS * d
    e_mid = e_w1 + _EPS * (big + e_w1) + 1.02 * (p + 1) * _EPS * big + 16 * _TINY
    e_w2 = e2 + 2.02 * _EPS * d * d
    var_cap = 2.0 * (d + e_w1) ** 2 + e_w2
    std_cap = 1.01 * math.sqrt(var_cap)
    ev = e_w2 + e_w1 * (2.0 * d + e_w1) + _EPS * ((d + e_w1) ** 2 + var_cap)
    et = 1.02 * (p + 1) * _EPS * big
    gamma = 1.02 * (p + 3) * _EPS
    delta = 1.01 * (ev + et * et + gamma * (var_cap + ev + et * et)) + (p + 16) * _TINY
    root = 1.01 * math.sqrt(delta)
    es_extra = _EPS * (std_cap + root)
    e_width = k_abs * es_extra + _EPS * k_abs * (std_cap + root + es_extra)
    e_sum = _EPS * (big + e_w1 + k_abs * (std_cap + root + es_extra) + e_mid + e_width)
    e_sum += 16 * _TINY * (1.0 + k_abs)
    return _Bounds(
        2.0 * e_mid, 2.0 * (e_mid + e_width + e_sum), 2.0 * k_abs * root, 2.0 * k_abs * delta
    )


@numba.njit(cache=True, inline="always")
def _side(diff: float, slack: float) -> float:  # pragma: no cover - numba-compiled
    # What is left of |diff| past `slack` and diff's own rounding (diff: a close less a
    # running value): > 0 only when the textbook difference has diff's sign.
    return abs(diff) * (1.0 - _EPS) - slack


@numba.njit(cache=True)
def _approximate(  # pragma: no cover - numba-compiled
    x: FloatArray,
    c0: int,
    m: int,
    period: int,
    k_std: float,
    allow_short: bool,
    sums: tuple[FloatArray, FloatArray],
    codes: IntArray,
) -> None:
    """The codes of the closes of bars c0 .. c0 + m - 1 (c0 >= period - 1) on the running
    bands, `_UNSETTLED` where the bound does not settle a comparison."""
    s1, s2 = sums
    shift = x[c0]
    seg = x[c0 - period + 1 : c0 + m]
    d, finite = _prefix_sums(seg, shift, s1, s2)
    span = len(seg) + 1.0
    # Running sums of up to `span` terms of |y| <= d: each within span·eps·(sum of |terms|)
    # of the exact sum of the rounded terms, a window's difference of two within twice that
    # (and its own rounding), the terms within eps·d (and 3·eps·d² squared) of the exact.
    e1 = (3.0 * span * span + 3.0 * period + 3.0) * _EPS * d / period
    e2 = (3.0 * span * span + 5.0 * period + 3.0) * _EPS * d * d / period + (span + 16) * _TINY
    if not finite:
        e1 = e2 = np.inf
    bound = _block_bounds(shift, d, e1, e2, period, abs(k_std))
    inv = 1.0 / period
    a1, b1 = s1[period : period + m], s1[:m]
    a2, b2 = s2[period : period + m], s2[:m]
    c, out = x[c0 : c0 + m], codes[:m]
    for j in range(m):
        w1 = (a1[j] - b1[j]) * inv
        mid = shift + w1
        std = math.sqrt(max((a2[j] - b2[j]) * inv - w1 * w1, 0.0))
        width = k_std * std
        to_upper, to_lower, to_mid = c[j] - (mid + width), c[j] - (mid - width), c[j] - mid
        # A band's bound is band + k·min(root, delta / std): settled when what is left of
        # the difference past `band` exceeds either part.
        up, low = _side(to_upper, bound.band), _side(to_lower, bound.band)
        settled = (
            (up > bound.root or up * std > bound.delta)
            & (low > bound.root or low * std > bound.delta)
            & (_side(to_mid, bound.mid) > 0.0)
        )
        got = _rules(to_upper > 0.0, to_lower < 0.0, to_mid < 0.0, to_mid > 0.0, allow_short)
        out[j] = got if settled else _UNSETTLED


@numba.njit(cache=True, nogil=True)  # the fast path checks bars beside it
def _breakout_run(  # pragma: no cover - numba-compiled
    open_: FloatArray,
    x: FloatArray,
    period: int,
    k_std: float,
    allow_short: bool,
    terms: Terms,
    room: next_open.Room,
) -> FusedRun:
    # `BollingerBreakout.targets` executed as `sigma.engine.fast` executes them, a block at a
    # time: a block's running sums and decisions stay in the first-level cache.
    n = len(x)
    a, equity, lots, money = next_open.started(room, terms)
    size = next_open.BLOCK
    sums = (np.empty(size + period), np.empty(size + period))
    work = np.empty(period)
    # No decision before the bar after the first bands (backtesting.py's start, see
    # `Strategy.decision_start`; none at all without bands).
    first = min(period, n)
    codes = np.zeros(max(size, first), dtype=np.int64)  # nothing, for each bar before
    a, end = next_open.execute_coded(a, codes, 0, first, open_, x, equity, terms, lots, money)
    for c0 in range(first, n if end == next_open.GO_ON else 0, size):
        m = min(size, n - c0)
        _approximate(x, c0, m, period, k_std, allow_short, sums, codes)
        for j in range(m):
            if codes[j] == _UNSETTLED:
                codes[j] = _textbook_code(x, c0 + j, period, k_std, allow_short, work)
        a, end = next_open.execute_coded(a, codes, c0, m, open_, x, equity, terms, lots, money)
        if end != next_open.GO_ON:
            break
    return next_open.finished(end, equity, a, lots, money)


def bollinger_breakout_run(
    open_: FloatArray,
    close: FloatArray,
    period: int,
    k_std: float,
    allow_short: bool,
    terms: Terms,
) -> FusedRun:
    """The fast path's run of Bollinger breakout on the account `terms`: long on a close
    above the upper band (`k_std` deviations over the `period`-bar average), short below the
    lower (when `allow_short`), flat back at the average, filled at the next open."""
    o, x = next_open.columns(open_, close)
    return next_open.run_with_room(
        lambda room: _breakout_run(o, x, period, k_std, allow_short, terms, room), len(x)
    )


__all__ = ["bollinger_breakout_run"]

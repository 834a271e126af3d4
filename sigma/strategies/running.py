"""Moving-average crossovers in O(n) whatever the periods, deciding exactly as `sma` does.

`indicators.sma` is the textbook value: each window summed afresh (numpy's pairwise sum), so
it never drifts and a crossover of two averages over a flat stretch is an exact tie, as in any
textbook table. Summing each window costs O(n·p). Here each average is a running sum (add the
new value, drop the oldest), re-anchored on the textbook sum every `ANCHOR_BARS` bars, with a
rigorous bound on how far it can be from the textbook sum. Where two averages are further
apart than their bounds, the running values order them as the textbook values do; where they
are not (a near tie, a few bars in a million), both textbook values are computed for that bar
and compared. The crossings are therefore exactly those of `crossover(sma(fast), sma(slow))`.
A window holding a value the bound does not cover (negative, NaN, infinite) is summed afresh.
"""

from __future__ import annotations

import numba
import numpy as np

from sigma.strategies.indicators import check_period
from sigma.strategies.pairwise import window_sum
from sigma.strategies.series import FloatArray

ANCHOR_BARS = 1024
"""Bars between re-anchorings of a running sum on the textbook sum."""

# Twice the unit roundoff: each floating-point operation moves a result by less than this,
# relative to its size; the bounds below use it with room to spare.
_EPS = 2.0**-52
_LARGEST = float(np.finfo(np.float64).max)
_NONE = 2  # order of two averages when either is NaN (warm-up): never part of a crossing


@numba.njit(cache=True)
def _order(d: float) -> int:  # pragma: no cover - numba-compiled
    if d != d:
        return _NONE
    return 1 if d > 0 else (-1 if d < 0 else 0)


@numba.njit(cache=True)
def _textbook_order(x: FloatArray, i: int, pf: int, ps: int) -> int:  # pragma: no cover
    return _order(window_sum(x, i, pf) / pf - window_sum(x, i, ps) / ps)


@numba.njit(cache=True)
def _block_max(x: FloatArray, lo: int, hi: int) -> float:  # pragma: no cover - numba
    """Largest value of `x[lo:hi]`, or -1 when one is not a finite value >= 0 (the bounds
    cover only those)."""
    top = 0.0
    for j in range(lo, hi):
        v = x[j]
        if not (v >= 0.0 and v <= _LARGEST):
            return -1.0
        if v > top:
            top = v
    return top


@numba.njit(cache=True)
def _bound(r0: float, p: int, top: float) -> float:  # pragma: no cover - numba-compiled
    """How far the mean of a p-window's running sum, anchored on the textbook sum `r0` and
    run for at most ANCHOR_BARS bars over values in [0, top], can be from the textbook mean.

    Sums of p values in [0, top] stay below s = 1.01·p·top (the 1% covers the errors). Each
    running step adds a difference (error <= eps·top) and rounds the sum (<= eps·s); the
    anchor and any textbook sum are within p·eps·s of the exact sum; the two divisions add an
    eps of s/p each."""
    s = 1.01 * p * top
    g = p * _EPS * 1.01
    drift = g * r0 + _EPS * ANCHOR_BARS * (top + s)
    total = drift + g * (s + drift)
    return (total + 2.02 * _EPS * (s + total)) / p


@numba.njit(cache=True)
def _cross_targets(  # pragma: no cover - numba-compiled
    x: FloatArray, pf: int, ps: int, down: float, top_all: float
) -> FloatArray:
    n = len(x)
    out = np.empty(n)
    width = max(pf, ps)
    out[: min(width - 1, n)] = np.nan
    ipf, ips = 1.0 / pf, 1.0 / ps
    prev = _NONE
    for b0 in range(width - 1, n, ANCHOR_BARS):
        b1 = min(b0 + ANCHOR_BARS, n)
        # The whole history's largest value when it is all covered, else the block's.
        top = top_all if top_all >= 0 else _block_max(x, b0 - width + 1, b1)
        if top < 0:
            for i in range(b0, b1):  # textbook sums for every bar of this block
                now = _textbook_order(x, i, pf, ps)
                out[i] = (1.0 if now == 1 else down) if prev * now == -1 else np.nan
                prev = now
            continue
        rf, rs = window_sum(x, b0, pf), window_sum(x, b0, ps)
        now = _order(rf / pf - rs / ps)
        out[b0] = (1.0 if now == 1 else down) if prev * now == -1 else np.nan
        prev = now
        bound = 1.01 * (_bound(rf, pf, top) + _bound(rs, ps, top))
        for i in range(b0 + 1, b1):
            rf += x[i] - x[i - pf]
            rs += x[i] - x[i - ps]
            d = rf * ipf - rs * ips
            if d > bound:
                now = 1
            elif d < -bound:
                now = -1
            else:  # a near tie: decide on the textbook values
                now = _textbook_order(x, i, pf, ps)
            # prev·now is -1 only for a change from one side to the other (_NONE is 2).
            out[i] = (1.0 if now == 1 else down) if prev * now == -1 else np.nan
            prev = now
    return out


def sma_cross_targets(
    close: FloatArray, fast: int, slow: int, *, allow_short: bool = True
) -> FloatArray:
    """The crossings of `sma(close, fast)` and `sma(close, slow)` (strict on both bars, as
    `crossed_above`) in O(n): +1 where the fast average crosses above the slow one, -1 (0
    without shorts) below, NaN elsewhere."""
    check_period(fast)
    check_period(slow)
    x = np.ascontiguousarray(close, dtype=np.float64)
    # numpy's SIMD reductions check the whole history at once (NaN propagates through both).
    top = float(x.max()) if len(x) else 0.0
    covered = len(x) == 0 or (float(x.min()) >= 0 and top <= _LARGEST)
    return _cross_targets(  # type: ignore[no-any-return]
        x, fast, slow, -1.0 if allow_short else 0.0, top if covered else -1.0
    )


def warm_up() -> None:
    """Load the compiled crossover now (numba's cache), not on the first sweep's clock."""
    _cross_targets(np.ones(4), 1, 2, -1.0, 1.0)


__all__ = ["ANCHOR_BARS", "sma_cross_targets", "warm_up"]

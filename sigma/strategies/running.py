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

`sma_cross_run` is the fast path's fused run of these crossings: the targets of one block of
bars (kept in the first-level cache) are executed at once (`next_open.execute`), so the only
array the run writes is its equity curve.
"""

from __future__ import annotations

import numba
import numpy as np

from sigma.strategies import next_open
from sigma.strategies.indicators import check_period
from sigma.strategies.pairwise import window_sum
from sigma.strategies.series import FloatArray
from sigma.strategies.vectorised import FusedRun, Terms

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
def _block_targets(  # pragma: no cover - numba-compiled
    x: FloatArray,
    b0: int,
    periods: tuple[int, int],
    down: float,
    top_all: float,
    prev: int,
    out: FloatArray,
    at: int,
) -> tuple[int, int]:
    """The crossing targets of the block of bars starting at bar `b0` (>= max(periods) - 1)
    into `out[at:]`, given the order of the two averages at the bar before (`prev`): +1
    where the fast average crosses above the slow one, `down` below, NaN elsewhere. Returns
    the block's length and the order at its last bar."""
    pf, ps = periods
    n = min(b0 + ANCHOR_BARS, len(x)) - b0
    # The whole history's largest value when it is all covered, else the block's.
    top = top_all if top_all >= 0 else _block_max(x, b0 - max(pf, ps) + 1, b0 + n)
    rf, rs = window_sum(x, b0, pf), window_sum(x, b0, ps)
    bound = 1.01 * (_bound(rf, pf, top) + _bound(rs, ps, top)) if top >= 0 else np.inf
    ipf, ips = 1.0 / pf, 1.0 / ps
    for k in range(n):
        i = b0 + k
        if k == 0:
            now = _order(rf / pf - rs / ps)
        else:
            rf += x[i] - x[i - pf]
            rs += x[i] - x[i - ps]
            d = rf * ipf - rs * ips
            # Comparisons, not branches: the sign of d changes at every crossing, which a
            # branch would mispredict; only a near tie (0 here) branches to the textbook
            # sums, as does every bar of a block the bound does not cover (infinite).
            now = int(d > bound) - int(d < -bound)
            if now == 0:
                now = _textbook_order(x, i, pf, ps)
        # prev·now is -1 only for a change from one side to the other (_NONE is 2).
        out[at + k] = (1.0 if now == 1 else down) if prev * now == -1 else np.nan
        prev = now
    return n, prev


@numba.njit(cache=True)
def _cross_targets(  # pragma: no cover - numba-compiled
    x: FloatArray, pf: int, ps: int, down: float, top_all: float
) -> FloatArray:
    n = len(x)
    out = np.empty(n)
    out[: min(max(pf, ps) - 1, n)] = np.nan
    prev = _NONE
    for b0 in range(max(pf, ps) - 1, n, ANCHOR_BARS):
        _, prev = _block_targets(x, b0, (pf, ps), down, top_all, prev, out, b0)
    return out


@numba.njit(cache=True)
def _cross_run(  # pragma: no cover - numba-compiled
    open_: FloatArray,
    x: FloatArray,
    periods: tuple[int, int],
    down: float,
    top_all: float,
    terms: Terms,
    cap: int,
) -> FusedRun:
    # `_cross_targets` executed as `sigma.engine.fast` executes targets, a block at a time:
    # a block's targets stay in the first-level cache, nothing else is stored in between.
    n = len(x)
    a, equity, lots, money = next_open.started(n, terms, cap)
    width = max(periods)
    idle = np.full(width, np.nan)  # no decision before the slow average's first value
    a, end = next_open.execute(
        a, (idle, idle, idle), 0, width - 1, open_, x, equity, terms, lots, money
    )
    block = np.empty(ANCHOR_BARS)
    prev = _NONE
    for b0 in range(width - 1, n if end == next_open.GO_ON else 0, ANCHOR_BARS):
        m, prev = _block_targets(x, b0, periods, down, top_all, prev, block, 0)
        a, end = next_open.execute(
            a, (block, block, block), b0, m, open_, x, equity, terms, lots, money
        )
        if end != next_open.GO_ON:
            break
    return next_open.finished(end, equity, a, lots, money)


def _prices(close: FloatArray, fast: int, slow: int) -> tuple[FloatArray, float]:
    """The closes as contiguous floats and their largest value, or -1 when they are not all
    finite values >= 0 (each block's bound is then checked on its own)."""
    check_period(fast)
    check_period(slow)
    x = np.ascontiguousarray(close, dtype=np.float64)
    # numpy's SIMD reductions check the whole history at once (NaN propagates through both).
    top = float(x.max()) if len(x) else 0.0
    covered = len(x) == 0 or (float(x.min()) >= 0 and top <= _LARGEST)
    return x, top if covered else -1.0


def sma_cross_targets(
    close: FloatArray, fast: int, slow: int, *, allow_short: bool = True
) -> FloatArray:
    """The crossings of `sma(close, fast)` and `sma(close, slow)` (strict on both bars, as
    `crossed_above`) in O(n): +1 where the fast average crosses above the slow one, -1 (0
    without shorts) below, NaN elsewhere."""
    x, top = _prices(close, fast, slow)
    return _cross_targets(x, fast, slow, -1.0 if allow_short else 0.0, top)  # type: ignore[no-any-return]


def sma_cross_run(
    open_: FloatArray, close: FloatArray, fast: int, slow: int, allow_short: bool, terms: Terms
) -> FusedRun:
    """The fast path's run of `sma_cross_targets` on the account `terms` (long at each
    upward crossing, short or flat at each downward one, filled at the next open), fused:
    averages, crossings, fills and equity in one pass over the bars."""
    o, _ = next_open.columns(open_, close)
    x, top = _prices(close, fast, slow)
    down = -1.0 if allow_short else 0.0
    return next_open.run_with_room(
        lambda cap: _cross_run(o, x, (fast, slow), down, top, terms, cap), len(x)
    )


def warm_up() -> None:
    """Load the compiled crossover now (numba's cache), not on the first sweep's clock."""
    _cross_targets(np.ones(4), 1, 2, -1.0, 1.0)
    sma_cross_run(np.ones(4), np.ones(4), 1, 2, True, Terms.of(1, 0, 0, 1))


__all__ = ["ANCHOR_BARS", "sma_cross_run", "sma_cross_targets", "warm_up"]

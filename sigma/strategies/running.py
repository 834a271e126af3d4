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
from sigma.strategies.vectorised import FusedRun, IntArray, Terms

ANCHOR_BARS = 1024
"""Most bars between re-anchorings of a running sum on the textbook sum."""

LANES = 4
"""Running sums run side by side over a block of bars (`_block_orders`)."""

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


@numba.njit(cache=True, inline="always")
def _anchored(  # pragma: no cover - numba-compiled
    x: FloatArray, i: int, pf: int, ps: int, top: float
) -> tuple[float, float, float, int]:
    """A lane's start at bar `i`: the textbook sums (its running sums' anchors), their
    bound, and the order at `i`, which is the textbook one."""
    rf, rs = window_sum(x, i, pf), window_sum(x, i, ps)
    bound = 1.01 * (_bound(rf, pf, top) + _bound(rs, ps, top)) if top >= 0 else np.inf
    return rf, rs, bound, _order(rf / pf - rs / ps)


@numba.njit(cache=True, inline="always")
def _lane(  # pragma: no cover - numba-compiled
    x: FloatArray, start: int, pf: int, ps: int, ords: IntArray, at: int
) -> tuple[FloatArray, FloatArray, FloatArray, IntArray]:
    """Views for a lane starting at bar `start` whose orders go to `ords[at:]`, indexed from
    0 for the bar after it: the value entering both windows, the values leaving the fast
    and the slow one, and the order's slot. Indices from 0 spare each access the check for
    a negative index numba makes otherwise, which keeps the loop tight."""
    return x[start + 1 :], x[start + 1 - pf :], x[start + 1 - ps :], ords[at + 1 :]


@numba.njit(cache=True, inline="always")
def _stepped(  # pragma: no cover - numba-compiled
    new: float, out_f: float, out_s: float, rf: float, rs: float, r: tuple[float, float, float]
) -> tuple[float, float, int]:
    """A lane's running sums moved one bar (`new` entering both windows, `out_f` and `out_s`
    leaving them) and the order there when the bound `r[2]` settles it (0: a near tie,
    settled on the textbook sums afterwards); `r[:2]` are the periods' reciprocals."""
    rf += new - out_f
    rs += new - out_s
    d = rf * r[0] - rs * r[1]
    # Comparisons, not branches: the sign of d changes at every crossing, which a branch
    # would mispredict.
    return rf, rs, int(d > r[2]) - int(d < -r[2])


@numba.njit(cache=True)
def _block_orders(  # pragma: no cover - numba-compiled
    x: FloatArray, b0: int, periods: tuple[int, int], top_all: float, ords: IntArray
) -> int:
    """The textbook order of the two averages (+1 fast above, -1 below, 0 equal, _NONE
    when either is NaN) at each bar of the block starting at bar `b0` (>= max(periods) -
    1) into `ords`; returns the block's length.

    The block is run as four running sums side by side (LANES), each anchored where it
    starts: one running sum is a chain of dependent additions, and independent chains keep
    the CPU's adders busy. Every bar the bound does not settle (a near tie, or every bar of
    a block the bound does not cover) is settled on the textbook sums afterwards."""
    pf, ps = periods
    n = min(b0 + ANCHOR_BARS, len(x)) - b0
    # The whole history's largest value when it is all covered, else the block's.
    top = top_all if top_all >= 0 else _block_max(x, b0 - max(pf, ps) + 1, b0 + n)
    ipf, ips = 1.0 / pf, 1.0 / ps
    w = n // LANES
    f0, s0, g0, ords[0] = _anchored(x, b0, pf, ps, top)
    f1, s1, g1, ords[w] = _anchored(x, b0 + w, pf, ps, top)
    f2, s2, g2, ords[2 * w] = _anchored(x, b0 + 2 * w, pf, ps, top)
    f3, s3, g3, ords[3 * w] = _anchored(x, b0 + 3 * w, pf, ps, top)
    r0, r1, r2, r3 = (ipf, ips, g0), (ipf, ips, g1), (ipf, ips, g2), (ipf, ips, g3)
    x0, a0, b0_, o0 = _lane(x, b0, pf, ps, ords, 0)
    x1, a1, b1, o1 = _lane(x, b0 + w, pf, ps, ords, w)
    x2, a2, b2, o2 = _lane(x, b0 + 2 * w, pf, ps, ords, 2 * w)
    # The last lane runs on to the block's end (at most LANES - 1 bars more; with fewer
    # than LANES bars all lanes start at b0 and the last one runs the whole block).
    x3, a3, b3, o3 = _lane(x, b0 + 3 * w, pf, ps, ords, 3 * w)
    for j in range(w - 1):
        f0, s0, o0[j] = _stepped(x0[j], a0[j], b0_[j], f0, s0, r0)
        f1, s1, o1[j] = _stepped(x1[j], a1[j], b1[j], f1, s1, r1)
        f2, s2, o2[j] = _stepped(x2[j], a2[j], b2[j], f2, s2, r2)
        f3, s3, o3[j] = _stepped(x3[j], a3[j], b3[j], f3, s3, r3)
    for j in range(max(w - 1, 0), n - 1 - 3 * w):
        f3, s3, o3[j] = _stepped(x3[j], a3[j], b3[j], f3, s3, r3)
    for k in range(n):
        if ords[k] == 0:
            ords[k] = _textbook_order(x, b0 + k, pf, ps)
    return n


@next_open.unrefcounted
def _crossings(  # pragma: no cover - numba-compiled
    ords: IntArray, m: int, b0: int, prev: int, down: int, when: IntArray, wants: IntArray
) -> tuple[int, int]:
    """The crossings among the block's orders (`_block_orders`), given the order at the bar
    before (`prev`): their bars into `when` and their targets (+1 upward, `down` downward)
    into `wants`. Returns how many, and the order at the block's last bar."""
    # prev·now is -1 only for a change from one side to the other (_NONE is 2). The order
    # before each bar is read back from `ords`, not carried along: no dependency from one
    # bar to the next, and the branch (mispredicted at each crossing) costs less than three
    # stores a bar.
    count = 0
    for k in range(m):
        now = ords[k]
        if (ords[k - 1] if k else prev) * now == -1:
            when[count] = b0 + k
            wants[count] = 1 if now == 1 else down
            count += 1
    return count, (ords[m - 1] if m else prev)


@numba.njit(cache=True)
def _cross_targets(  # pragma: no cover - numba-compiled
    x: FloatArray, pf: int, ps: int, down: float, top_all: float
) -> FloatArray:
    n = len(x)
    out = np.full(n, np.nan)
    ords = np.empty(ANCHOR_BARS, dtype=np.int64)
    when = np.empty(ANCHOR_BARS, dtype=np.int64)
    wants = np.empty(ANCHOR_BARS, dtype=np.int64)
    prev = _NONE
    for b0 in range(max(pf, ps) - 1, n, ANCHOR_BARS):
        m = _block_orders(x, b0, (pf, ps), top_all, ords)
        count, prev = _crossings(ords, m, b0, prev, int(down), when, wants)
        for k in range(count):
            out[when[k]] = wants[k]
    return out


@numba.njit(cache=True)
def _cross_run(  # pragma: no cover - numba-compiled
    open_: FloatArray,
    x: FloatArray,
    periods: tuple[int, int],
    down: int,
    top_all: float,
    terms: Terms,
    room: next_open.Room,
) -> FusedRun:
    # `_cross_targets` executed as `sigma.engine.fast` executes targets, a block at a time:
    # a block's orders and crossings stay in the first-level cache, nothing else is stored
    # in between.
    n = len(x)
    a, equity, lots, money = next_open.started(room, terms)
    width = max(periods)
    ords = np.empty(ANCHOR_BARS, dtype=np.int64)
    when = np.empty(ANCHOR_BARS, dtype=np.int64)
    wants = np.empty(ANCHOR_BARS, dtype=np.int64)
    # No decision before the slow average's first value.
    a, end = next_open.execute_at(
        a, when, wants, 0, 0, width - 1, open_, x, equity, terms, lots, money
    )
    prev = _NONE
    for b0 in range(width - 1, n if end == next_open.GO_ON else 0, ANCHOR_BARS):
        m = _block_orders(x, b0, periods, top_all, ords)
        count, prev = _crossings(ords, m, b0, prev, down, when, wants)
        a, end = next_open.execute_at(
            a, when, wants, count, b0, m, open_, x, equity, terms, lots, money
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
    down = -1 if allow_short else 0
    return next_open.run_with_room(
        lambda room: _cross_run(o, x, (fast, slow), down, top, terms, room), len(x)
    )


def warm_up() -> None:
    """Load the compiled crossover now (numba's cache), not on the first sweep's clock."""
    _cross_targets(np.ones(4), 1, 2, -1.0, 1.0)
    sma_cross_run(np.ones(4), np.ones(4), 1, 2, True, Terms.of(1, 0, 0, 1))


__all__ = ["ANCHOR_BARS", "LANES", "sma_cross_run", "sma_cross_targets", "warm_up"]

"""Moving-average crossovers in O(n) whatever the periods, deciding exactly as `sma` does.

`indicators.sma` is the textbook value: each window summed afresh (numpy's pairwise sum), so
it never drifts and a crossover of two averages over a flat stretch is an exact tie, as in any
textbook table. Summing each window costs O(n·p). Here the bars go in blocks of `ANCHOR_BARS`,
each cut into `LANES` lanes; a lane takes prefix sums of the closes from a window before its
first bar, and each average is the difference of two of them, with a rigorous bound on how
far it can be from the textbook one (`_bound`). Where two averages are further apart than
their bounds, these values order them as the textbook values do; where they are not (a near
tie, a few bars in a thousand), both textbook values are computed for that bar and compared.
The crossings are therefore exactly those of `crossover(sma(fast), sma(slow))`. A block
holding a value the bound does not cover (negative, NaN, infinite) is summed afresh.

`sma_cross_run` is the fast path's fused run of these crossings: the crossings of one block of
bars (kept in the first-level cache) are executed at once (`next_open.execute_at`), so the only
array the run writes is its equity curve.
"""

from __future__ import annotations

import numba
import numpy as np

from sigma.strategies import next_open
from sigma.strategies.bits import all_prices, lowest_bit
from sigma.strategies.indicators import check_period
from sigma.strategies.pairwise import window_sum
from sigma.strategies.series import FloatArray
from sigma.strategies.simd import ORDER_RUN, order_masks
from sigma.strategies.vectorised import FULL, UNCHECKED, FusedRun, IntArray, Terms

ANCHOR_BARS = 1024
"""Bars in a block: its lanes' prefix sums start afresh, which keeps their error bounded."""

FEW_CROSSINGS = 6
"""Crossings of a 64-bar run read with no branch (`_crossings`): a run holds ~3 on a walk's
averages of 10 and 20 bars, and more than 6 in a few runs in a hundred."""

LANES = 4
"""Prefix sums run side by side over a block of bars (`_block_orders`)."""

# Twice the unit roundoff: each floating-point operation moves a result by less than this,
# relative to its size; the bounds below use it with room to spare.
_EPS = 2.0**-52
_NONE = 2  # order of two averages when either is NaN (warm-up): never part of a crossing
_EQUAL = 4  # two averages found equal on the textbook sums (0 is an order not settled yet)


@numba.njit(cache=True)
def _order(d: float) -> int:  # pragma: no cover - numba-compiled
    if d != d:
        return _NONE
    return 1 if d > 0 else (-1 if d < 0 else 0)


@numba.njit(cache=True)
def _textbook_order(x: FloatArray, i: int, pf: int, ps: int) -> int:  # pragma: no cover
    return _order(window_sum(x, i, pf) / pf - window_sum(x, i, ps) / ps)


@numba.njit(cache=True)
def _bound(span: int, p: int, total: float) -> float:  # pragma: no cover - numba-compiled
    """How far the mean of a p-window taken as the difference of two prefix sums, each of at
    most `span` values >= 0 whose prefix sums stay at or below `total`, can be from the
    textbook mean.

    Each addition of a prefix sum rounds a result of at most `total`: the t-th is within
    eps·total·t of the exact one; their difference rounds once more (<= eps of the window's
    sum, itself at most `total`); any textbook sum of the window is within p·eps of it; the
    reciprocal and the product (ours) or the division (the textbook's) add two eps of the
    mean. (eps here is twice the unit roundoff: a factor 2 to spare, and 1% on every sum.)"""
    s = 1.01 * total
    prefix = 1.01 * _EPS * span * s
    ours = 2.0 * prefix + _EPS * (s + 2.0 * prefix)
    total_error = ours + p * _EPS * s
    return (total_error + 2.02 * _EPS * (s + total_error)) / p


@numba.njit(cache=True, inline="always")
def _prefix_sums(  # pragma: no cover - numba-compiled
    x: FloatArray, starts: tuple[int, int, int, int], width: int, common: int, sums: FloatArray
) -> None:
    """Each lane's prefix sums into its row of `sums`: row k holds 0, then the running total
    of the `width - 1` values before bar starts[k] and on through its bars (`common` values
    in all, the last lane to the end of `sums`' slice, see `_block_orders`).

    One running total is a chain of dependent additions; the four lanes' chains, side by
    side, keep the adders busy. Views indexed from 0 spare each access numba's check for a
    negative index."""
    s0, s1, s2, s3 = sums[0], sums[1], sums[2], sums[3]
    x0, x1 = x[starts[0] - width + 1 :], x[starts[1] - width + 1 :]
    x2, x3 = x[starts[2] - width + 1 :], x[starts[3] - width + 1 :]
    t0 = t1 = t2 = t3 = 0.0
    s0[0] = s1[0] = s2[0] = s3[0] = 0.0
    for j in range(common):
        t0 += x0[j]
        s0[j + 1] = t0
        t1 += x1[j]
        s1[j + 1] = t1
        t2 += x2[j]
        s2[j + 1] = t2
        t3 += x3[j]
        s3[j + 1] = t3
    for j in range(common, len(s3) - 1):
        t3 += x3[j]
        s3[j + 1] = t3


@numba.njit(cache=True, inline="always")
def _lane_orders(  # pragma: no cover - numba-compiled
    sums: FloatArray, pf: int, ps: int, width: int, bound: float, out: IntArray, m: int
) -> bool:
    """The order of the two averages at a lane's `m` bars into `out`, from its prefix sums
    (`_prefix_sums`): +1 or -1 where the bound settles it, 0 where it does not (a near
    tie). Returns whether the prefix sums rise at every value they took in: then every one
    was a number above zero (a NaN, an infinity followed by anything, a zero or a negative
    value stops the rise), which the bound asks for. No bar depends on another: the loops
    run on vector registers."""
    rising = True
    for j in range(1, width):  # the values before the lane's first bar
        rising &= sums[j] > sums[j - 1]
    now, before = sums[width:], sums[width - 1 :]
    fast_back, slow_back = sums[width - pf :], sums[width - ps :]
    ipf, ips = 1.0 / pf, 1.0 / ps
    for j in range(m):
        d = (now[j] - fast_back[j]) * ipf - (now[j] - slow_back[j]) * ips
        # Comparisons, not branches: the sign of d changes at every crossing.
        out[j] = int(d > bound) - int(d < -bound)
        rising &= now[j] > before[j]
    return rising


@numba.njit(cache=True)
def _block_orders(  # pragma: no cover - numba-compiled
    x: FloatArray,
    b0: int,
    periods: tuple[int, int],
    ords: IntArray,
    sums: FloatArray,
) -> tuple[int, bool]:
    """The order of the two averages (+1 fast above, -1 below, as the textbook values order
    them; 0 where that is not settled yet) at each bar of the block starting at bar `b0`
    (>= max(periods) - 1) into `ords`; returns the block's length, and whether every close
    it read (from bar b0 - max(periods) + 1 on) is a finite number above zero. `sums` is
    room for the lanes' prefix sums (`_sums_room`).

    The block is cut into four lanes (LANES); each lane's averages are differences of its
    own prefix sums, started `max(periods)` bars before it, so that their error stays
    bounded (`_bound`, from the largest lane's total). The lanes also see whether their
    prefix sums rise throughout: if one does not, or a total is infinite, the bound does not
    hold and every bar of the block is settled afresh. Every bar the bound does not settle
    (a near tie) is left 0, for `_block_crossings` to settle on the textbook sums."""
    pf, ps = periods
    width = max(pf, ps)
    n = min(b0 + ANCHOR_BARS, len(x)) - b0
    w = n // LANES
    last = n - 3 * w  # the last lane runs on to the block's end
    span = width - 1 + last
    starts = (b0, b0 + w, b0 + 2 * w, b0 + 3 * w)
    _prefix_sums(x, starts, width, width - 1 + w, sums[:, : span + 1])
    # Rising sums (checked below) are largest at their ends.
    end = width - 1 + w
    total = max(max(sums[0, end], sums[1, end]), max(sums[2, end], sums[3, span]))
    bound = 1.01 * (_bound(span, pf, total) + _bound(span, ps, total))
    fine = total < np.inf
    for k in range(LANES - 1):
        fine &= _lane_orders(sums[k, : end + 1], pf, ps, width, bound, ords[k * w :], w)
    fine &= _lane_orders(sums[LANES - 1, : span + 1], pf, ps, width, bound, ords[3 * w :], last)
    if not fine:  # not every order above may hold: all are settled afresh
        ords[:n] = 0
    return n, fine


@numba.njit(cache=True, inline="always")
def _sums_room(periods: tuple[int, int]) -> FloatArray:  # pragma: no cover - numba-compiled
    """Room for `_block_orders`' prefix sums with these periods."""
    return np.empty((LANES, ANCHOR_BARS // LANES + LANES + max(periods)))


@next_open.unrefcounted
def _crossings(  # pragma: no cover - numba-compiled
    ords: IntArray,
    m: int,
    start: int,
    b0: int,
    down: int,
    when: IntArray,
    wants: IntArray,
    count: int,
) -> tuple[int, int, np.uint64]:
    """The crossings among the block's orders (`_orders_room`: `ords[1 + k]` for bar b0 + k,
    `ords[0]` for the bar before) from bar `start` of the block: their bars into `when` and
    their targets (+1 upward, `down` downward) into `wants`, after the `count` found before.
    Returns how many in all and `m` when the block is done; else the first bar of a run of
    orders that holds one the bound left unsettled (0), and the mask of those, for the caller
    to settle (`_block_crossings`) before looking again from there.

    A crossing is a bar whose order and the one before are +1 and -1 in either order: their
    xor is -2, and no other pair of orders (-1, 0, +1, _NONE, _EQUAL) gives it. The orders
    are compared 64 at a time into a mask of the bars that cross and one of the bars
    unsettled (`order_masks`); each crossing is then found at the mask's lowest set bit. A
    branch per bar was mispredicted at every crossing, one bar in twenty."""
    for lo in range(start, m, ORDER_RUN):
        flips, ties = order_masks(ords, lo)
        if m - lo < ORDER_RUN:  # the block's last run: the orders past its end are not its own
            own = (np.uint64(1) << np.uint64(m - lo)) - np.uint64(1)
            flips &= own
            ties &= own
        if ties:
            return count, lo, ties
        # The first few crossings of a run are read with no branch: a loop until the mask is
        # empty ran a different number of times in each run and mispredicted its end. A
        # slot past the crossings is written when none is left, and written again later.
        for _ in range(FEW_CROSSINGS):
            k = lo + np.int64(lowest_bit(flips))  # lo + 64 when none is left
            when[count] = b0 + k
            wants[count] = down + int(ords[k + 1] == 1) * (1 - down)
            count += int(flips != 0)
            flips &= flips - np.uint64(1)
        while flips:
            k = lo + np.int64(lowest_bit(flips))
            flips &= flips - np.uint64(1)
            when[count] = b0 + k
            wants[count] = 1 if ords[k + 1] == 1 else down
            count += 1
    return count, m, np.uint64(0)


@numba.njit(cache=True, inline="always")
def _block_crossings(  # pragma: no cover - numba-compiled
    x: FloatArray,
    b0: int,
    periods: tuple[int, int],
    ords: IntArray,
    m: int,
    down: int,
    when: IntArray,
    wants: IntArray,
) -> int:
    """`_crossings` of the block's `m` orders, each order the bound left unsettled settled
    first on the textbook sums (a few bars in a thousand, found by the masks `_crossings`
    makes anyway). Returns how many crossings; leaves the order at the block's last bar in
    `ords[0]`, the bar before the next block."""
    pf, ps = periods
    count, lo = 0, 0
    while True:
        count, lo, ties = _crossings(ords, m, lo, b0, down, when, wants, count)
        if lo == m:
            ords[0] = ords[m]
            return count
        while ties:
            k = lo + int(lowest_bit(ties))
            ties &= ties - np.uint64(1)
            settled = _textbook_order(x, b0 + k, pf, ps)
            ords[k + 1] = settled if settled else _EQUAL


@numba.njit(cache=True, inline="always")
def _crossings_room() -> tuple[IntArray, IntArray]:  # pragma: no cover - numba-compiled
    """Room for a block's crossings (`when`, `wants`): one per bar at most, and the slot
    after the last that `_crossings` writes when it has none left."""
    return np.empty(ANCHOR_BARS + 1, dtype=np.int64), np.empty(ANCHOR_BARS + 1, dtype=np.int64)


@numba.njit(cache=True, inline="always")
def _orders_room() -> IntArray:  # pragma: no cover - numba-compiled
    """Room for a block's orders: `ords[0]` holds the order at the bar before the block
    (none before the first), `ords[1:]` the block's (`_block_orders`), and 64 more slots let
    `order_masks` read a whole run at the block's end."""
    ords = np.empty(1 + ANCHOR_BARS + ORDER_RUN, dtype=np.int64)
    ords[0] = _NONE
    return ords


@numba.njit(cache=True)
def _cross_targets(  # pragma: no cover - numba-compiled
    x: FloatArray, pf: int, ps: int, down: float
) -> FloatArray:
    n = len(x)
    out = np.full(n, np.nan)
    ords = _orders_room()
    when, wants = _crossings_room()
    sums = _sums_room((pf, ps))
    for b0 in range(max(pf, ps) - 1, n, ANCHOR_BARS):
        m, _ = _block_orders(x, b0, (pf, ps), ords[1:], sums)
        count = _block_crossings(x, b0, (pf, ps), ords, m, int(down), when, wants)
        for k in range(count):
            out[when[k]] = wants[k]
    return out


@numba.njit(cache=True, nogil=True)
def _cross_run(  # pragma: no cover - numba-compiled
    open_: FloatArray,
    x: FloatArray,
    periods: tuple[int, int],
    down: int,
    terms: Terms,
    room: next_open.Room,
) -> FusedRun:
    # `_cross_targets` executed as `sigma.engine.fast` executes targets, a block at a time:
    # a block's orders and crossings stay in the first-level cache, nothing else is stored
    # in between. The closes are checked as the blocks sum them (`_lane_orders`), the opens
    # a block at a time before its fills read them: the run vouches for both when every
    # block found them finite and above zero and the blocks covered every bar. Compiled
    # without the GIL, as every kernel is (`sigma.engine.fast_checks.check_ahead`).
    n = len(x)
    a, equity, lots, money = next_open.started(room, terms)
    width = max(periods)
    ords = _orders_room()
    when, wants = _crossings_room()
    sums = _sums_room(periods)
    # No decision before the slow average's first value.
    a, end = next_open.execute_at(
        a, when, wants, 0, 0, width - 1, open_, x, equity, terms, lots, money
    )
    clean = n >= width and all_prices(open_, 0, width - 1)
    for b0 in range(width - 1, n if end == next_open.GO_ON else 0, ANCHOR_BARS):
        m, fine = _block_orders(x, b0, periods, ords[1:], sums)
        clean &= fine & all_prices(open_, b0, b0 + m)
        count = _block_crossings(x, b0, periods, ords, m, down, when, wants)
        a, end = next_open.execute_at(
            a, when, wants, count, b0, m, open_, x, equity, terms, lots, money
        )
        if end != next_open.GO_ON:
            break
    if end != FULL and not (clean and end == next_open.GO_ON):
        end = UNCHECKED
    return next_open.finished(end, equity, a, lots, money)


def _prices(close: FloatArray, fast: int, slow: int) -> FloatArray:
    """The closes as contiguous floats, once the periods are checked."""
    check_period(fast)
    check_period(slow)
    return np.ascontiguousarray(close, dtype=np.float64)


def sma_cross_targets(
    close: FloatArray, fast: int, slow: int, *, allow_short: bool = True
) -> FloatArray:
    """The crossings of `sma(close, fast)` and `sma(close, slow)` (strict on both bars, as
    `crossed_above`) in O(n): +1 where the fast average crosses above the slow one, -1 (0
    without shorts) below, NaN elsewhere."""
    x = _prices(close, fast, slow)
    return _cross_targets(x, fast, slow, -1.0 if allow_short else 0.0)  # type: ignore[no-any-return]


def sma_cross_run(
    open_: FloatArray, close: FloatArray, fast: int, slow: int, allow_short: bool, terms: Terms
) -> FusedRun:
    """The fast path's run of `sma_cross_targets` on the account `terms` (long at each
    upward crossing, short or flat at each downward one, filled at the next open), fused:
    averages, crossings, fills and equity in one pass over the bars. Its status is
    `UNCHECKED` unless every close was seen to be a finite number above zero."""
    o, x = next_open.columns(open_, _prices(close, fast, slow))
    down = -1 if allow_short else 0
    return next_open.run_with_room(
        lambda room: _cross_run(o, x, (fast, slow), down, terms, room), len(x)
    )


def warm_up() -> None:
    """Load the compiled crossover now (numba's cache), not on the first sweep's clock."""
    _cross_targets(np.ones(4), 1, 2, -1.0)
    sma_cross_run(np.ones(4), np.ones(4), 1, 2, True, Terms.of(1, 0, 0, 1))


__all__ = ["ANCHOR_BARS", "LANES", "sma_cross_run", "sma_cross_targets", "warm_up"]

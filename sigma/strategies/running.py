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
from sigma.strategies.bits import lowest_bit, not_a_price
from sigma.strategies.indicators import check_period
from sigma.strategies.pairwise import window_sum
from sigma.strategies.series import FloatArray
from sigma.strategies.vectorised import FULL, UNCHECKED, FusedRun, IntArray, Terms

ANCHOR_BARS = 1024
"""Bars in a block: its lanes' prefix sums start afresh, which keeps their error bounded."""

LANES = 4
"""Prefix sums run side by side over a block of bars (`_block_orders`)."""

CROSS_RUN = 64
"""Bars whose crossings are found in one mask (`_crossings`): the bits of a uint64."""

SETTLE_RUN = 16
"""Orders looked over at once for one the bound left unsettled (`_settle_ties`)."""

# Twice the unit roundoff: each floating-point operation moves a result by less than this,
# relative to its size; the bounds below use it with room to spare.
_EPS = 2.0**-52
_NONE = 2  # order of two averages when either is NaN (warm-up): never part of a crossing


@numba.njit(cache=True)
def _order(d: float) -> int:  # pragma: no cover - numba-compiled
    if d != d:
        return _NONE
    return 1 if d > 0 else (-1 if d < 0 else 0)


@numba.njit(cache=True)
def _textbook_order(x: FloatArray, i: int, pf: int, ps: int) -> int:  # pragma: no cover
    return _order(window_sum(x, i, pf) / pf - window_sum(x, i, ps) / ps)


@numba.njit(cache=True, inline="always")
def _block_top(x: FloatArray, lo: int, hi: int) -> float:  # pragma: no cover - numba
    """Largest value of `x[lo:hi]`, or -1 when one is not a finite value above zero: a
    price no run is made on (the fast path's check of the closes), which the bound need not
    cover (it covers values >= 0; such a block is summed afresh).

    Finite doubles > 0 are the int64s from 1 up to +inf's bits, in the same order: one pass
    of integer maxima and comparisons, on vector registers. It also brings the block's
    values into the cache for its prefix sums."""
    bits = x[lo:hi].view(np.int64)
    top, bad = 0, False
    for j in range(len(bits)):
        top = max(top, bits[j])
        bad |= not_a_price(bits[j])
    return -1.0 if bad else np.array([top]).view(np.float64)[0]


@numba.njit(cache=True)
def _bound(span: int, p: int, top: float) -> float:  # pragma: no cover - numba-compiled
    """How far the mean of a p-window taken as the difference of two prefix sums, each of at
    most `span` values in [0, top], can be from the textbook mean.

    Sums of p values stay below s = 1.01·p·top (the 1% covers the errors). The t-th prefix
    sum rounds t partial sums, each below t·top: it is within eps·top·span·(span + 1)/2 of
    the exact one; their difference rounds once more (<= eps of the window's sum); any
    textbook sum is within p·eps·s of the exact sum; the two divisions add an eps of s/p
    each. (eps here is twice the unit roundoff: a factor 2 to spare.)"""
    s = 1.01 * p * top
    prefix = 1.01 * _EPS * top * 0.5 * span * (span + 1)
    ours = 2.0 * prefix + _EPS * (s + 2.0 * prefix)
    total = ours + p * _EPS * s
    return (total + 2.02 * _EPS * (s + total)) / p


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
) -> None:
    """The order of the two averages at a lane's `m` bars into `out`, from its prefix sums
    (`_prefix_sums`): +1 or -1 where the bound settles it, 0 where it does not (a near
    tie). No bar depends on another: the loop runs on vector registers."""
    now, fast_back, slow_back = sums[width:], sums[width - pf :], sums[width - ps :]
    ipf, ips = 1.0 / pf, 1.0 / ps
    for j in range(m):
        d = (now[j] - fast_back[j]) * ipf - (now[j] - slow_back[j]) * ips
        # Comparisons, not branches: the sign of d changes at every crossing.
        out[j] = int(d > bound) - int(d < -bound)


@numba.njit(cache=True)
def _block_orders(  # pragma: no cover - numba-compiled
    x: FloatArray,
    b0: int,
    periods: tuple[int, int],
    ords: IntArray,
    sums: FloatArray,
) -> tuple[int, bool]:
    """The textbook order of the two averages (+1 fast above, -1 below, 0 equal, _NONE
    when either is NaN) at each bar of the block starting at bar `b0` (>= max(periods) -
    1) into `ords`; returns the block's length, and whether every close it read (from bar
    b0 - max(periods) + 1 on) is a finite number above zero. `sums` is room for the lanes'
    prefix sums (`_sums_room`).

    The block is cut into four lanes (LANES); each lane's averages are differences of its
    own prefix sums, started `max(periods)` bars before it, so that their error stays
    bounded (`_bound`). Every bar the bound does not settle (a near tie, or every bar of a
    block the bound does not cover) is settled on the textbook sums afterwards."""
    pf, ps = periods
    width = max(pf, ps)
    n = min(b0 + ANCHOR_BARS, len(x)) - b0
    top = _block_top(x, b0 - width + 1, b0 + n)
    w = n // LANES
    last = n - 3 * w  # the last lane runs on to the block's end
    span = width - 1 + last
    bound = 1.01 * (_bound(span, pf, top) + _bound(span, ps, top)) if top >= 0 else np.inf
    starts = (b0, b0 + w, b0 + 2 * w, b0 + 3 * w)
    _prefix_sums(x, starts, width, width - 1 + w, sums[:, : span + 1])
    for k in range(LANES - 1):
        _lane_orders(sums[k], pf, ps, width, bound, ords[k * w :], w)
    _lane_orders(sums[LANES - 1], pf, ps, width, bound, ords[3 * w :], last)
    _settle_ties(x, b0, pf, ps, ords, n)
    return n, top >= 0


@numba.njit(cache=True, inline="always")
def _settle_ties(  # pragma: no cover - numba-compiled
    x: FloatArray, b0: int, pf: int, ps: int, ords: IntArray, n: int
) -> None:
    """The orders of `ords[:n]` the bound left unsettled (0), settled on the textbook sums.

    They are a few bars in a thousand: the orders are looked at SETTLE_RUN at a time, with
    no branch inside a run, and a run holding none is passed over. A run's length is a
    constant and its zeros are counted, not or-ed, so that the compiler runs each run on
    vector registers (an or of flags over a run of variable length took three times as
    long)."""
    full = n - n % SETTLE_RUN
    for lo in range(0, n, SETTLE_RUN):
        unsettled = np.uint64(lo >= full)  # a last, shorter run is looked over whole
        if lo < full:
            for k in range(lo, lo + SETTLE_RUN):
                unsettled += np.uint64(ords[k] == 0)
        if unsettled:
            for k in range(lo, min(lo + SETTLE_RUN, n)):
                if ords[k] == 0:
                    ords[k] = _textbook_order(x, b0 + k, pf, ps)


@numba.njit(cache=True, inline="always")
def _sums_room(periods: tuple[int, int]) -> FloatArray:  # pragma: no cover - numba-compiled
    """Room for `_block_orders`' prefix sums with these periods."""
    return np.empty((LANES, ANCHOR_BARS // LANES + LANES + max(periods)))


@next_open.unrefcounted
def _crossings(  # pragma: no cover - numba-compiled
    ords: IntArray, m: int, b0: int, prev: int, down: int, when: IntArray, wants: IntArray
) -> tuple[int, int]:
    """The crossings among the block's orders (`_block_orders`), given the order at the bar
    before (`prev`): their bars into `when` and their targets (+1 upward, `down` downward)
    into `wants`. Returns how many, and the order at the block's last bar.

    A crossing is a bar whose order and the one before are +1 and -1 in either order: their
    xor is -2, and no other pair of orders (-1, 0, +1, _NONE) gives it. The orders are read
    64 at a time into a mask of the bars that cross, with no branch (the compiler runs it on
    vector registers); each crossing is then found at the mask's lowest set bit. A branch
    per bar was mispredicted at every crossing, one bar in twenty."""
    count = 0
    before = prev
    for lo in range(0, m, CROSS_RUN):
        run = ords[lo : min(lo + CROSS_RUN, m)]
        mask = np.uint64((before ^ run[0]) == -2)
        if len(run) == CROSS_RUN:  # a constant trip count: vectorised
            for j in range(1, CROSS_RUN):
                mask |= np.uint64((run[j - 1] ^ run[j]) == -2) << np.uint64(j)
        else:
            for j in range(1, len(run)):
                mask |= np.uint64((run[j - 1] ^ run[j]) == -2) << np.uint64(j)
        while mask:
            k = lo + np.int64(lowest_bit(mask))
            mask &= mask - np.uint64(1)
            when[count] = b0 + k
            wants[count] = 1 if ords[k] == 1 else down
            count += 1
        before = run[-1]
    return count, before


@numba.njit(cache=True)
def _cross_targets(  # pragma: no cover - numba-compiled
    x: FloatArray, pf: int, ps: int, down: float
) -> FloatArray:
    n = len(x)
    out = np.full(n, np.nan)
    ords = np.empty(ANCHOR_BARS, dtype=np.int64)
    when = np.empty(ANCHOR_BARS, dtype=np.int64)
    wants = np.empty(ANCHOR_BARS, dtype=np.int64)
    sums = _sums_room((pf, ps))
    prev = _NONE
    for b0 in range(max(pf, ps) - 1, n, ANCHOR_BARS):
        m, _ = _block_orders(x, b0, (pf, ps), ords, sums)
        count, prev = _crossings(ords, m, b0, prev, int(down), when, wants)
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
    # in between. The closes are checked as the blocks read them (`_block_top`): the run
    # vouches for them when every block found them finite and above zero and the blocks
    # covered every bar. Compiled without the GIL: the fast path checks the bar times and
    # the opens on another thread meanwhile (`sigma.engine.fast_checks.check_ahead`).
    n = len(x)
    a, equity, lots, money = next_open.started(room, terms)
    width = max(periods)
    ords = np.empty(ANCHOR_BARS, dtype=np.int64)
    when = np.empty(ANCHOR_BARS, dtype=np.int64)
    wants = np.empty(ANCHOR_BARS, dtype=np.int64)
    sums = _sums_room(periods)
    # No decision before the slow average's first value.
    a, end = next_open.execute_at(
        a, when, wants, 0, 0, width - 1, open_, x, equity, terms, lots, money
    )
    prev = _NONE
    clean = n >= width
    for b0 in range(width - 1, n if end == next_open.GO_ON else 0, ANCHOR_BARS):
        m, fine = _block_orders(x, b0, periods, ords, sums)
        clean &= fine
        count, prev = _crossings(ords, m, b0, prev, down, when, wants)
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

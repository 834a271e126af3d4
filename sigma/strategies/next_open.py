"""The fast path's account, compiled: what a fill at the next open does to cash, position,
fees and the trade book, shared by the loop over target arrays (`sigma.engine.fast`) and by
the fused kernels that decide and fill in one pass (`Strategy.fused`).

It lives with the strategies, not the engine, so that a strategy's fused kernel can inline
it (the engine may import strategies, not the reverse). Its rules are the engine's for
`go_long` / `go_short` / `go_flat` with a next-open fill model, stated in `sigma.engine.fast`:
the open position is closed first, then the new direction is entered all-in, in whole lots;
cash is a compensated float sum, and an entry whose float quotient lies within 1e-9 of a lot
boundary is sized again in Decimal, replaying the fills so far (`exact_entry_units`).

The state is an `Account` tuple handed from call to call (numba keeps it in registers); the
closed round trips go to a `Book` of arrays sized for `cap` trades by the caller
(`new_room`), which runs again with more room when they do not suffice (`run_with_room`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from decimal import ROUND_FLOOR, Decimal
from typing import Any, NamedTuple, TypeVar, cast

import numba
import numpy as np

from sigma.strategies.series import FloatArray
from sigma.strategies.simd import MARK_RUN, mark_run
from sigma.strategies.vectorised import FULL, FusedRun, IntArray, Terms

# A sizing quotient this close (relative) to a lot boundary is re-derived in Decimal.
_TIE_TOLERANCE = 1e-9
# An entry's float quotient leaves the cash's compensation out while it is at most this share
# of the cash (`_quick_lots`): the quotient then moves by ~1e-12 of itself, far inside the tie
# tolerance. A larger compensation (the rounding the fills left over: rare) is counted in, as
# `_entry_units` does.
_COMP_SHARE = 1e-12
MOST_LOTS = 2**63 - 1
"""The most lots the fast path counts (int64). A larger entry (a large or compounded account
in a very cheap instrument or with a fine lot size) is refused (`countable_lots`). Past 2**53
every float quotient is a whole number, so each such entry is sized in Decimal."""


class Account(NamedTuple):
    """The account between two fills."""

    cash: float
    comp: float  # Neumaier compensation of the cash sum
    fees: float
    direction: int  # +1 long, -1 short, 0 flat
    units: int  # lots held
    qty: float
    entry_bar: int
    entry_price: float
    entry_fee: float
    trades: int  # closed round trips in the book


Book = tuple[IntArray, FloatArray]
"""Closed round trips, a column each: rows (entry bar, exit bar, signed lots) and (entry
price, exit price, net pnl), so that each field of the first k trades is a contiguous slice
the run's outcome hands out as it is. The kernels take the two arrays apart: an array read
out of a tuple is reference-counted at each read, ~60 ns a fill."""


# --- exact sizing for near-ties ---------------------------------------------------------------
class _Replay(threading.local):
    """Exact Decimal cash after the first `closed` round trips of the current run."""

    closed: int = 0
    cash: Decimal | None = None


_REPLAY = _Replay()


def _dec(value: float) -> Decimal:
    return Decimal(repr(float(value)))


def _parts(value: Decimal) -> tuple[int, int] | None:
    # (m, e) with value = m·10^e, or None for a value that is not finite.
    if not value.is_finite():
        return None
    sign, digits, exponent = value.as_tuple()
    mantissa = int("".join(map(str, digits)))
    return (-mantissa if sign else mantissa), int(exponent)


def _scaled(prices: FloatArray) -> tuple[IntArray, int] | None:
    """Integers P and the fewest decimals a (<= 8) with Decimal(repr(p)) == P·10^-a for
    every price p, or None.

    P·10^-a rounds to p when P / 10^a == p (a correctly rounded division). The shortest
    decimal that rounds to p (repr) is then that value: any other has at most a + 1
    decimals, so lies at least 10^-(a+1) from it, while both lie within half an ulp of p;
    the ulp is below 10^-(a+1) for |p|·10^(a+1) < 2^52 (held here with room)."""
    for a in range(9):
        scale = 10.0**a
        whole = np.round(prices * scale)
        if not np.all(np.abs(whole) < 2.0**50 / 10):  # NaN and infinities too
            return None
        if np.array_equal(whole / scale, prices):
            return whole.astype(np.int64), a
    return None


_ROOM = 2.0**61  # an int64 sum of terms whose magnitudes sum below this cannot overflow


def _exact_replay(
    cash: Decimal,
    terms: tuple[Decimal, Decimal, Decimal],
    p_in: FloatArray,
    p_out: FloatArray,
    units: IntArray,
) -> Decimal | None:
    """The Decimal cash after the round trips at `p_in` / `p_out` of `units` lots from
    `cash`, on (pct, fixed, lot) `terms`, in integer arithmetic, or None when it may not be
    exact.

    Every value the engine's Decimal fills produce (products, fees, sums, the cash after each
    fill) is an integer multiple of 10^-E, for E the finest decimal place of the inputs; while
    each is below 2^62, it has at most 19 digits, so Decimal's 28-digit arithmetic rounds
    none of them and int64 arithmetic scaled by 10^E gives the same value. The fills are
    summed in runs whose magnitudes, and the cash they start from, sum below 2^61 (bounded
    in floats, with room for their roundings); the cash is carried from run to run as a
    Python integer, exact however large."""
    parts = [_parts(v) for v in (cash, *terms)]
    prices = _scaled(np.concatenate((p_in, p_out)))
    if prices is None or None in parts:
        return None
    (m_cash, e_cash), (m_pct, e_pct), (m_fixed, e_fixed), (m_lot, e_lot) = parts  # type: ignore[misc]
    if m_pct < 0 or m_fixed < 0 or m_lot <= 0:
        return None
    whole, a = prices
    scale = max(0, a - e_lot, a - e_lot - e_pct, -e_fixed, -e_cash)
    k_value, k_fee = scale + e_lot - a, scale + e_lot - a + e_pct
    k_fixed, k_cash = scale + e_fixed, scale + e_cash
    if max(k_value, k_fee, k_fixed, m_lot, m_pct, m_fixed) >= _ROOM or k_value > 18:
        return None
    n = len(units)
    w_in, w_out = whole[:n], whole[n:]
    # Each round trip's magnitudes: its two fills' values, fees and the products in them.
    size = np.abs(units).astype(np.float64) * m_lot * (np.abs(w_in) + np.abs(w_out))
    weight = 10.0**k_value + m_pct * 10.0**k_fee
    reach = np.cumsum(size * weight + 2.0 * m_fixed * 10.0**k_fixed) * 1.01
    total = m_cash * 10**k_cash
    lo = 0
    while lo < n:
        room = _ROOM - 1.01 * abs(total) + (reach[lo - 1] if lo else 0.0)
        hi = int(np.searchsorted(reach, room, side="right"))
        if hi <= lo:  # one round trip too large for int64
            return None
        lots = units[lo:hi].astype(np.int64) * m_lot
        qty = np.abs(lots)
        fee_in = qty * w_in[lo:hi] * m_pct * 10**k_fee + m_fixed * 10**k_fixed
        fee_out = qty * w_out[lo:hi] * m_pct * 10**k_fee + m_fixed * 10**k_fixed
        value_in = lots * w_in[lo:hi] * 10**k_value
        value_out = -lots * w_out[lo:hi] * 10**k_value
        total += int((-(value_in + fee_in) - (value_out + fee_out)).sum())
        lo = hi
    return Decimal(total).scaleb(-scale)


def exact_entry_units(
    open_: FloatArray,
    initial_cash: float,
    pct: float,
    fixed: float,
    lot: float,
    entry_bar: IntArray,
    exit_bar: IntArray,
    units: IntArray,
    n_closed: int,
    price: float,
) -> int:
    """Entry size in lots computed as the engine does (Decimal, 28 digits), replaying the
    fills so far: the closed round trips (entry and exit fills) leave the account flat. The
    replayed cash is kept per run (and thread), so each fill is replayed once."""
    pct_d, fixed_d, lot_d = _dec(pct), _dec(fixed), _dec(lot)
    cash = _REPLAY.cash if _REPLAY.cash is not None else _dec(initial_cash)
    # A first near-tie late in a long run replays every fill before it (tens of thousands
    # in a million bars: ~1 µs each in Decimal), and a run that trades at every other bar
    # has near-ties every ten thousand fills: in integers, when exact.
    done = slice(_REPLAY.closed, n_closed)
    fast = _exact_replay(
        cash,
        (pct_d, fixed_d, lot_d),
        open_[entry_bar[done]],
        open_[exit_bar[done]],
        units[done],
    )
    if fast is not None:
        cash, _REPLAY.closed = fast, n_closed
    # Fills the integer replay does not cover (or since the last near-tie) in Decimal: the
    # prices are read out as Python floats at once and each price converted once, not
    # element by element from numpy.
    done = slice(_REPLAY.closed, n_closed)
    exact: dict[float, Decimal] = {}
    for lots, p_in, p_out in zip(
        units[done].tolist(),
        open_[entry_bar[done]].tolist(),
        open_[exit_bar[done]].tolist(),
        strict=True,
    ):
        d_in, d_out = exact.get(p_in), exact.get(p_out)
        if d_in is None or not p_in:  # 0.0 and -0.0 are one key, two Decimals
            d_in = exact[p_in] = _dec(p_in)
        if d_out is None or not p_out:
            d_out = exact[p_out] = _dec(p_out)
        signed = lots * lot_d
        qty = abs(signed)
        cash -= signed * d_in + (fixed_d + qty * d_in * pct_d)
        cash -= -signed * d_out + (fixed_d + qty * d_out * pct_d)
    _REPLAY.cash, _REPLAY.closed = cash, n_closed
    price_d = _dec(price)
    spendable = cash * Decimal("1.0") - fixed_d
    if spendable <= 0:
        return 0
    quotient = spendable / (price_d * (1 + pct_d))
    return int((quotient / lot_d).to_integral_value(ROUND_FLOOR))


class BeyondFastPath(ValueError):
    """A run whose position would hold more lots than the fast path counts exactly (a large
    or compounded account in a very cheap instrument or with a fine lot size); the exact
    engine holds any quantity."""


def countable_lots(units: int, price: float) -> int:
    """`units`, an entry's size at `price`, when the fast path can hold it (MOST_LOTS
    lots at most); `BeyondFastPath`, saying so, when not."""
    if units > MOST_LOTS:
        raise BeyondFastPath(
            f"an entry at {price} would buy {units} lots, beyond the {MOST_LOTS} lots the fast "
            "path counts exactly: use the exact engine"
        )
    return units


def run_with_room(kernel: Callable[[Room], FusedRun], bars: int) -> FusedRun:
    """`kernel(room)`, a run in `new_room(bars, cap)`, until its book had room enough.

    A round trip spans at least one bar: `bars` slots always suffice. Most strategies trade
    far less often than every 8 bars, so they get that many and the rare others a second run
    (slots for every bar would cost page faults on every call). The closed round trips come
    back as slices of the book's columns: copying them out would cost as much again in fresh
    pages as writing them did."""
    out: FusedRun | None = None
    for cap in (min(bars, bars // 8 + 1024), bars):
        _REPLAY.closed, _REPLAY.cash = 0, None
        out = kernel(new_room(bars, cap))
        if out[0] != FULL:
            break
    assert out is not None
    return out


def columns(*values: FloatArray) -> tuple[FloatArray, ...]:
    """Bar columns as contiguous float arrays for a kernel; ValueError unless all are of one
    length."""
    arrays = tuple(np.ascontiguousarray(v, dtype=np.float64) for v in values)
    if len({len(array) for array in arrays}) > 1:
        raise ValueError(f"bar columns differ in length: {[len(a) for a in arrays]}")
    return arrays


# --- the compiled account ---------------------------------------------------------------------
_Kernel = TypeVar("_Kernel", bound=Callable[..., Any])


def unrefcounted(kernel: _Kernel) -> _Kernel:
    """`numba.njit(cache=True)` without numba's runtime, for a kernel that allocates nothing.

    Under the runtime, each inlined helper handed an array counts a reference to it in and
    out, atomically (~10 ns each): at every fill of a run, for the bars and the book. Arrays
    such a kernel is given stay its caller's."""
    njit: Any = numba.njit  # its stubs do not know `_nrt`
    return cast(_Kernel, njit(cache=True, _nrt=False)(kernel))


@numba.njit(cache=True)
def opened(terms: Terms) -> Account:  # pragma: no cover - numba-compiled
    """A flat account holding the initial cash."""
    return Account(terms[0], 0.0, 0.0, 0, 0, 0.0, 0, 0.0, 0.0, 0)


BLOCK = 1024
"""Bars whose decisions a fused kernel makes, then executes, together (`execute_coded`)."""


Room = tuple[FloatArray, IntArray, FloatArray]
"""Where a run writes: its equity curve, one slot per bar, and its book (`Book`)."""


def new_room(bars: int, cap: int) -> Room:
    """Room for a run of `bars` bars whose book holds `cap` round trips (filled in order,
    read up to `Account.trades`).

    Allocated here, by numpy, not inside the compiled kernel: numpy's allocations are
    recycled from run to run, where numba's came as fresh pages on every run (a page fault
    per 4 KiB written: half a million-bar run's time). The book is sized up front: growing
    arrays inside a loop costs ~25 ns a bar in reference counting, even on bars that never
    trade."""
    return np.empty(bars), np.empty((3, cap), dtype=np.int64), np.empty((3, cap))


@numba.njit(cache=True)
def started(  # pragma: no cover - numba-compiled
    room: Room, terms: Terms
) -> tuple[Account, FloatArray, IntArray, FloatArray]:
    """A run about to start in `room` (`new_room`): the flat account, its equity curve and
    its book."""
    equity, lots, money = room
    return opened(terms), equity, lots, money


@numba.njit(cache=True, inline="always")
def _plus(cash: float, comp: float, delta: float) -> tuple[float, float]:  # pragma: no cover
    # Neumaier's compensated sum: cash + comp is the sum of all deltas to ~1 ulp.
    s = cash + delta
    if abs(cash) >= abs(delta):
        comp += (cash - s) + delta
    else:
        comp += (delta - s) + cash
    return s, comp


@numba.njit(cache=True, inline="always")
def _record(  # pragma: no cover - numba-compiled
    a: Account, lots: IntArray, money: FloatArray, i: int, price: float, fee: float
) -> None:
    k = a.trades
    lots[0, k] = a.entry_bar
    lots[1, k] = i
    lots[2, k] = a.direction * a.units
    money[0, k] = a.entry_price
    money[1, k] = price
    money[2, k] = a.direction * a.qty * (price - a.entry_price) - a.entry_fee - fee


@numba.njit(cache=True)
def _exact_units(  # pragma: no cover - numba-compiled
    a: Account, price: float, open_: FloatArray, terms: Terms, lots: IntArray, money: FloatArray
) -> int:
    # Called at near-ties only: a call, not inlined, so the objmode switch stays off the path.
    with numba.objmode(exact="int64"):
        found = exact_entry_units(
            open_,
            terms[0],
            terms[1],
            terms[2],
            terms[3],
            lots[0],
            lots[1],
            lots[2],
            a.trades,
            price,
        )
        exact = countable_lots(found, price)
    return exact


@numba.njit(cache=True, inline="always")
def _quick_lots(cash: float, comp: float, price: float, terms: Terms) -> float:  # pragma: no cover
    """The whole lots an entry at `price` buys, as a float, when the float quotient settles
    them; -1.0 when it does not (a near tie, or a compensation too large to leave out).

    This is the fill's critical path (each entry's size waits for the cash the exit before it
    left), so it is kept short: the compensation stays out of the quotient, and the divisor's
    reciprocal is taken off the path. Both move the quotient by far less than the tie
    tolerance (_COMP_SHARE, a few ulps), so a quotient that is no near tie here floors to
    the lots `_entry_units` finds."""
    spendable = cash - terms[2] if terms[2] != 0.0 else cash  # x - 0.0 is x: no wait for it
    if not abs(comp) <= _COMP_SHARE * spendable:
        return -1.0
    r = spendable * (1.0 / (price * (1.0 + terms[1]) * terms[3]))
    if abs(r - np.floor(r + 0.5)) <= _TIE_TOLERANCE * max(r, 1.0):
        return -1.0
    return float(np.floor(r))


@numba.njit(cache=True)
def _entry_units(  # pragma: no cover - numba-compiled
    a: Account, price: float, open_: FloatArray, terms: Terms, lots: IntArray, money: FloatArray
) -> int:
    # The entries `_quick_lots` does not settle: a call, not inlined, off the common path.
    spendable = (a.cash + a.comp) - terms[2]
    if not spendable > 0:
        return 0
    r = spendable / (price * (1.0 + terms[1]))
    if terms[3] != 1.0:  # x / 1.0 is x: the division (~15 cycles) is skipped, not changed
        r /= terms[3]
    nearest = np.floor(r + 0.5)
    if abs(r - nearest) <= _TIE_TOLERANCE * max(r, 1.0):
        return _exact_units(a, price, open_, terms, lots, money)
    return int(np.floor(r))


@numba.njit(cache=True, inline="always")
def trade(  # pragma: no cover - numba-compiled
    a: Account,
    want: int,
    i: int,
    open_: FloatArray,
    terms: Terms,
    lots: IntArray,
    money: FloatArray,
) -> tuple[Account, bool]:
    """The account after turning to direction `want` (+1, -1, 0) at bar `i`'s open, and
    False instead when the book had no room for the round trip it closes."""
    if want == a.direction:
        return a, True
    price = open_[i]
    pct, fixed, lot, per_unit = terms[1], terms[2], terms[3], terms[4]
    if a.direction != 0:
        if a.trades == lots.shape[1]:
            return a, False
        fee = fixed + a.qty * price * pct
        cash, comp = _plus(a.cash, a.comp, a.direction * a.qty * price - fee)
        _record(a, lots, money, i, price, fee)
        a = Account(cash, comp, a.fees + fee, 0, 0, 0.0, 0, 0.0, 0.0, a.trades + 1)
    if want != 0:
        whole = _quick_lots(a.cash, a.comp, price, terms)
        if whole < 0.0:
            whole = float(_entry_units(a, price, open_, terms, lots, money))
        if whole > 0.0:
            # float(units) is `whole` itself: the lots stay floats on the path to the cash.
            qty = whole if per_unit == 1.0 else (whole / per_unit if per_unit > 0 else whole * lot)
            fee = fixed + qty * price * pct
            cash, comp = _plus(a.cash, a.comp, -(want * qty * price + fee))
            a = Account(cash, comp, a.fees + fee, want, int(whole), qty, i, price, fee, a.trades)
    return a, True


GO_ON = -3
"""`execute`'s status when the run goes on past the bars it was given."""


@unrefcounted
def execute(  # pragma: no cover - numba-compiled
    a: Account,
    rows: tuple[FloatArray, FloatArray, FloatArray],
    c0: int,
    m: int,
    open_: FloatArray,
    close: FloatArray,
    equity: FloatArray,
    terms: Terms,
    lots: IntArray,
    money: FloatArray,
) -> tuple[Account, int]:
    """The targets decided at the closes of bars `c0` to `c0 + m - 1` (+1, -1, 0, NaN =
    nothing; element k of the row of the position held, flat, long or short, for bar
    c0 + k), each taken at the next bar's open, and each bar's equity at its close into
    `equity` (from bar 0 when `c0` is 0). Returns the account and GO_ON, or the run's status
    when it ends: -1 when closed out (equity at or below zero; `equity` is then filled to the
    end), FULL when the book is full, or the bar of a target that is not +1, -1, 0 or NaN.

    The fast path's loop over target arrays passes them whole; fused kernels pass theirs
    sparsely (`execute_at`) or coded (`execute_coded`)."""
    flat, long, short = rows
    if c0 == 0 and len(close):  # bar 0: no decision before it
        low = _mark(a, 0, 1, close, equity)
        if low >= 0:
            return _ended(a, low, close, equity, terms, lots, money)
    # Views indexed from 0 (bar c0 + 1 + j, its decision at j) spare each access numba's
    # check for a negative index.
    start = c0 + 1
    prices, marks = close[start : c0 + m + 1], equity[start : c0 + m + 1]
    for j in range(len(prices)):
        t = flat[j] if a.direction == 0 else (long[j] if a.direction > 0 else short[j])
        if t == t:  # not NaN
            if t != 1.0 and t != -1.0 and t != 0.0:
                return a, start + j - 1
            a, room = trade(
                a, 1 if t > 0 else (-1 if t < 0 else 0), start + j, open_, terms, lots, money
            )
            if not room:
                return a, FULL
        e = (a.cash + a.comp) + a.direction * a.qty * prices[j]
        marks[j] = e
        if e <= 0.0:
            return _ended(a, start + j, close, equity, terms, lots, money)
    return a, GO_ON


@numba.njit(cache=True, inline="always")
def _mark(  # pragma: no cover - numba-compiled
    a: Account, lo: int, hi: int, close: FloatArray, equity: FloatArray
) -> int:
    """Equity at the closes of bars `lo` to `hi - 1` on account `a` (as `execute` computes
    it), and the first of those bars where the equity is at or below zero, or -1.

    The bars go MARK_RUN at a time (`mark_run`, on vector registers), the last run reaching
    past `hi` when the stretch is shorter: the bars from `hi` on are always marked again
    afterwards, by the stretch after the next trade or by the close-out, in order (and a bar
    at or below zero among them is not looked for: the search below stays in the stretch). A
    stretch between two trades is ~20 bars: a loop of that many, its length different each
    time, cost two mispredicted branches and a scalar tail per stretch, three times as long.
    The last bars of the history, where a run would read past it, go one at a time. Unsigned
    indices spare each access the check for a negative index numba makes otherwise."""
    cash = a.cash + a.comp
    held = a.direction * a.qty
    low = False
    at = lo
    while at < hi and at + MARK_RUN <= min(len(close), len(equity)):
        low |= mark_run(close, equity, at, cash, held)
        at += MARK_RUN
    for i in range(np.uint64(min(at, hi)), np.uint64(hi)):
        e = cash + held * close[i]
        equity[i] = e
        low |= e <= 0.0
    if low:
        for i in range(lo, hi):
            if equity[i] <= 0.0:
                return i
    return -1


@unrefcounted
def _ended(  # pragma: no cover - numba-compiled
    a: Account,
    i: int,
    close: FloatArray,
    equity: FloatArray,
    terms: Terms,
    lots: IntArray,
    money: FloatArray,
) -> tuple[Account, int]:
    # The run's end at bar i's close-out: equity stays at what is left.
    a, room = close_out(a, i, close[i], terms, lots, money)
    equity[i:] = a.cash
    return a, -1 if room else FULL


@numba.njit(cache=True, inline="always")
def _stretch_then_trade(  # pragma: no cover - numba-compiled
    a: Account,
    lo: int,
    i: int,
    want: int,
    open_: FloatArray,
    close: FloatArray,
    equity: FloatArray,
    terms: Terms,
    lots: IntArray,
    money: FloatArray,
) -> tuple[Account, int]:
    """Bars `lo` to `i - 1` marked on account `a`, then its turn to `want` at bar i's open:
    the account and GO_ON, or the run's end (closed out on the way, or the book full)."""
    low = _mark(a, lo, i, close, equity)
    if low >= 0:
        return _ended(a, low, close, equity, terms, lots, money)
    a, room = trade(a, want, i, open_, terms, lots, money)
    return a, GO_ON if room else FULL


@numba.njit(cache=True, inline="always")
def _stretch_to_end(  # pragma: no cover - numba-compiled
    a: Account,
    lo: int,
    end: int,
    close: FloatArray,
    equity: FloatArray,
    terms: Terms,
    lots: IntArray,
    money: FloatArray,
) -> tuple[Account, int]:
    """Bars `lo` to `end - 1` marked on account `a` with no trade among them: GO_ON, or the
    run's end when closed out on the way."""
    low = _mark(a, lo, end, close, equity)
    if low >= 0:
        return _ended(a, low, close, equity, terms, lots, money)
    return a, GO_ON


@unrefcounted
def execute_at(  # pragma: no cover - numba-compiled
    a: Account,
    when: IntArray,
    wants: IntArray,
    count: int,
    c0: int,
    m: int,
    open_: FloatArray,
    close: FloatArray,
    equity: FloatArray,
    terms: Terms,
    lots: IntArray,
    money: FloatArray,
) -> tuple[Account, int]:
    """`execute` for decisions given sparsely, with the same outcome: `wants[:count]` (+1,
    -1, 0) decided at the closes of bars `when[:count]` (ascending, from `c0` to
    `c0 + m - 1`), every other bar keeping what is held.

    A strategy that trades on one bar in twenty spends its time between trades marking
    equity: here that is a branch-free loop per stretch between two trades, and the trades
    run one after another instead of behind a mispredicted branch each."""
    end = min(c0 + m + 1, len(close))
    lo = c0 + 1 if c0 else 0
    for k in range(count):
        i = when[k] + 1
        if i >= end:  # the last bar's decision: no bar left to take it at
            break
        a, status = _stretch_then_trade(
            a, lo, i, wants[k], open_, close, equity, terms, lots, money
        )
        if status != GO_ON:
            return a, status
        lo = i
    return _stretch_to_end(a, lo, end, close, equity, terms, lots, money)


# --- decisions coded by the position held ------------------------------------------------------
NONE, LONG, SHORT, FLAT = 0, 1, 2, 3
"""A target in a `code`: nothing, +1, -1, 0."""


@numba.njit(cache=True, inline="always")
def code(flat: int, long: int, short: int) -> int:  # pragma: no cover - numba-compiled
    """One bar's decisions (each NONE, LONG, SHORT or FLAT) when flat, long and short, as the
    one small integer `execute_coded` reads."""
    return flat | (long << 2) | (short << 4)


@numba.njit(cache=True, inline="always")
def either(first: int, then: int) -> int:  # pragma: no cover - numba-compiled
    """`first` unless it is NONE, else `then`: without a branch to mispredict."""
    return first + (first == NONE) * then


def _turns() -> IntArray:
    # Row r (the position held: flat, long, short) marks the codes whose target for that
    # position is one to act on: set, and not the position already held.
    held = (0, 1, -1)
    target = {LONG: 1, SHORT: -1, FLAT: 0}
    table = np.zeros((3, 64), dtype=np.int64)
    for row in range(3):
        for c in range(64):
            t = (c >> (2 * row)) & 3
            table[row, c] = t != NONE and target[t] != held[row]
    return table


_TURNS = _turns()


@unrefcounted
def execute_coded(  # pragma: no cover - numba-compiled
    a: Account,
    codes: IntArray,
    c0: int,
    m: int,
    open_: FloatArray,
    close: FloatArray,
    equity: FloatArray,
    terms: Terms,
    lots: IntArray,
    money: FloatArray,
) -> tuple[Account, int]:
    """`execute` for decisions given as one `code` a bar (`codes[k]` decided at bar c0 + k's
    close, for k < m), with the same outcome.

    Most bars' decision for the position held is nothing or that position: the loop only
    looks each code up until one turns the position, marks the equity of the stretch before
    it branch-free (`_mark`) and trades."""
    end = min(c0 + m + 1, len(close))
    lo = c0 + 1 if c0 else 0
    k = 0
    while k < m:
        row = 0 if a.direction == 0 else (1 if a.direction > 0 else 2)
        while k < m and not _TURNS[row, codes[k]]:
            k += 1
        i = c0 + k + 1
        if k == m or i >= end:  # none, or the last bar's decision: no bar left to take it at
            break
        t = (codes[k] >> (2 * row)) & 3
        want = 1 if t == LONG else (-1 if t == SHORT else 0)
        a, status = _stretch_then_trade(a, lo, i, want, open_, close, equity, terms, lots, money)
        if status != GO_ON:
            return a, status
        lo = i
        k += 1
    return _stretch_to_end(a, lo, end, close, equity, terms, lots, money)


@numba.njit(cache=True)
def close_out(  # pragma: no cover - numba-compiled
    a: Account, i: int, price: float, terms: Terms, lots: IntArray, money: FloatArray
) -> tuple[Account, bool]:
    """The account closed out at bar `i`'s close (`price`) once its equity is at or below
    zero, as the engine's default margin account is (a deficit left is written off); False
    instead when the book had no room for the round trip.

    A flat account gets there when a close at an open lost more than it had: it has no
    position to close, only its deficit to write off."""
    if a.direction == 0:
        return Account(0.0, 0.0, a.fees, 0, 0, 0.0, 0, 0.0, 0.0, a.trades), True
    if a.trades == lots.shape[1]:
        return a, False
    fee = terms[2] + a.qty * price * terms[1]
    _record(a, lots, money, i, price, fee)
    cash = max((a.cash + a.comp) + a.direction * a.qty * price - fee, 0.0)
    return Account(cash, 0.0, a.fees + fee, 0, 0, 0.0, 0, 0.0, 0.0, a.trades + 1), True


@numba.njit(cache=True)
def finished(  # pragma: no cover - numba-compiled
    status: int, equity: FloatArray, a: Account, lots: IntArray, money: FloatArray
) -> FusedRun:
    """The run's outcome (`FusedRun`): `status` (-1 or GO_ON when done, `FULL`, or a bad
    target's bar), the equity curve, the account at the end and the closed round trips."""
    k = a.trades
    return (
        -1 if status == GO_ON else status,
        equity,
        a.cash + a.comp,
        a.direction * a.qty,
        a.fees,
        lots[0, :k],
        lots[1, :k],
        lots[2, :k],
        money[0, :k],
        money[1, :k],
        money[2, :k],
    )


__all__ = [
    "BLOCK",
    "FLAT",
    "GO_ON",
    "LONG",
    "MOST_LOTS",
    "NONE",
    "SHORT",
    "Account",
    "BeyondFastPath",
    "Book",
    "Room",
    "close_out",
    "code",
    "columns",
    "countable_lots",
    "either",
    "exact_entry_units",
    "execute",
    "execute_at",
    "execute_coded",
    "finished",
    "new_room",
    "opened",
    "run_with_room",
    "started",
    "trade",
    "unrefcounted",
]

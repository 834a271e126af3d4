"""`check_history` for the fast path, compiled: each price column is checked as it is read
(`BarColumns`), the bar times and the open once a run (`check_ahead`), each in one pass with
no temporary array.

A million-bar run of the fast path takes a few milliseconds; numpy's reductions over the
four price columns and the times took longer than the run. Here a price is checked on its
bits: the finite doubles above zero are exactly the int64 values strictly between 0 and the
bits of +inf (negatives have the sign bit, NaNs lie above +inf), so the check is one integer
comparison a value, which the compiler runs on vector registers, a run of values at a time.
The exact engine keeps the numpy check: it does not load the compiler.

Every run reads the bar times and fills at the open. The times are checked once per index:
pandas keeps the answer (`first_out_of_order`). The opens, unless the run's kernel checks them
as it reads them, are a pass over memory the kernel does not need: it runs on a second thread
beside it (`check_ahead`), compiled without the GIL as the kernels are, so on a machine with a
core to spare it costs the run nothing.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import numba
import numpy as np
import pandas as pd

from sigma.engine.history_check import bad_price, out_of_order
from sigma.strategies.bits import all_prices, not_a_price
from sigma.strategies.series import FloatArray
from sigma.strategies.vectorised import IntArray

_RUN = 4096  # values checked with no branch between them


@numba.njit(cache=True, nogil=True)
def _first_not_positive(values: FloatArray) -> int:  # pragma: no cover - numba-compiled
    """The first index whose value is not a finite number above zero, or -1: the values
    are scanned a run at a time (`all_prices`), and only a run holding one is looked into."""
    bits = values.view(np.int64)
    for lo in range(0, len(values), _RUN):
        if not all_prices(values, lo, lo + _RUN):
            for j in range(lo, min(lo + _RUN, len(values))):
                if not_a_price(bits[j]):
                    return j
    return -1


@numba.njit(cache=True)
def _first_not_later(stamps: IntArray) -> int:  # pragma: no cover - numba-compiled
    """The first index whose stamp is not above the one before it, or -1."""
    for lo in range(1, len(stamps), _RUN):
        now, before = stamps[lo : lo + _RUN], stamps[lo - 1 : lo - 1 + _RUN]
        bad = False
        for j in range(len(now)):
            bad |= now[j] <= before[j]
        if bad:
            for j in range(len(now)):
                if now[j] <= before[j]:
                    return lo + j
    return -1


def check_prices(bars: pd.DataFrame, column: str, values: FloatArray) -> None:
    """`BadHistory` at the first bar whose `values` (price `column` of `bars`, contiguous
    float64) is NaN, infinite, zero or negative."""
    at = int(_first_not_positive(values))
    if at >= 0:
        raise bad_price(bars, column, at, float(values[at]))


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    # Kept between runs: starting a thread costs ~0.1-0.3 ms, handing one work ~10 us.
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sigma-bar-checks")
        return _POOL


def _forget_pool() -> None:  # pragma: no cover - runs in a forked child
    # A forked child has none of its parent's threads: it starts a pool of its own.
    global _POOL, _POOL_LOCK
    _POOL, _POOL_LOCK = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool)


AHEAD_BARS = 1 << 18
"""Bars from which `check_ahead` hands its scan of the opens to another thread: handing work
over and being woken when it is done cost ~0.1 ms on a virtual machine, what the scan of
~300k bars costs; a shorter history is scanned at once."""


def first_out_of_order(bars: pd.DataFrame) -> int:
    """The first bar of `bars` whose time is not after the previous bar's, or -1.

    pandas works out whether an index is strictly increasing once and keeps the answer with
    it (an index is immutable): a frame run again, by a sweep or an optimiser, is not scanned
    again. Only an index that is not (or not a DatetimeIndex, or one starting at NaT) is
    scanned here, for the bar to name."""
    index = bars.index
    if (
        isinstance(index, pd.DatetimeIndex)
        and index.is_monotonic_increasing
        and index.is_unique  # known without a scan once the index is strictly increasing
    ):
        return -1
    return int(_first_not_later(pd.DatetimeIndex(index).asi8))


def check_ahead(bars: pd.DataFrame, opens: FloatArray | None) -> Callable[[], None]:
    """The bar times of `bars` checked, and their opens (`opens`, contiguous float64, or None
    when the run's kernel checks them itself: `Strategy.fused_checks`) scanned, on another
    thread for a long history (`AHEAD_BARS`); the function returned waits for the scan and
    raises `BadHistory` at the first bar whose time is not after the previous bar's, else at
    the first open that is NaN, infinite, zero or negative. Only the scan runs on that
    thread: the errors are made on the caller's."""
    late = first_out_of_order(bars)
    ahead: Future[int] = Future()
    if opens is None:
        ahead.set_result(-1)
    elif len(opens) >= AHEAD_BARS:
        ahead = _pool().submit(_first_not_positive, opens)
    else:
        ahead.set_result(_first_not_positive(opens))

    def settle() -> None:
        bad = ahead.result()
        if late >= 0:
            raise out_of_order(bars, late)
        if bad >= 0 and opens is not None:
            raise bad_price(bars, "open", bad, float(opens[bad]))

    return settle


__all__ = ["check_ahead", "check_prices", "first_out_of_order"]

"""Causal technical indicators over float arrays: the value at bar i uses bars <= i only.

Warm-up values are NaN. Each function takes and returns float64 numpy arrays so the engine can
compute an indicator over a whole history at once and the live loop can recompute it as bars
arrive; both give the same numbers.
"""

from __future__ import annotations

import functools
from typing import Any

import numba
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from sigma.strategies.pairwise import window_std
from sigma.strategies.series import FloatArray


def _as_array(values: FloatArray) -> FloatArray:
    return np.asarray(values, dtype=np.float64)


def check_period(period: int) -> None:
    """ValueError unless `period` is a whole number of bars >= 1."""
    if period < 1:
        raise ValueError(f"indicator period must be >= 1, got {period}")


def sma(values: FloatArray, period: int) -> FloatArray:
    """Simple moving average: mean of the last `period` values."""
    check_period(period)
    x = _as_array(values)
    out = np.full(x.shape, np.nan)
    if len(x) >= period:
        # A sum over each window (not a running cumsum) keeps float error from accumulating
        # over a million bars, so crossovers match a textbook rolling mean exactly.
        out[period - 1 :] = sliding_window_view(x, period).sum(axis=1) / period
    return out


@numba.njit(cache=True)
def _higher(acc: float, v: float) -> float:  # pragma: no cover - numba-compiled
    # The larger of the two, NaN when either is (as numpy's max).
    return v if (v > acc or v != v) else acc


@numba.njit(cache=True)
def _rolling_extreme(x: FloatArray, period: int, sign: float) -> FloatArray:  # pragma: no cover
    # van Herk / Gil-Werman: cut the series into blocks of `period`; a window is the tail of
    # one block and the head of the next, so its max is the larger of that tail's max and
    # that head's max: three passes whatever the period, and exactly a max over the window.
    # A min is the max of the negated values, negated back (both exact).
    n = len(x)
    out = np.full(n, np.nan)
    if n < period:
        return out
    head = np.empty(n)  # max from the block's start to i
    tail = np.empty(n)  # max from i to the block's end
    for b0 in range(0, n, period):
        b1 = min(b0 + period, n)
        acc = sign * x[b0]
        head[b0] = acc
        for i in range(b0 + 1, b1):
            acc = _higher(acc, sign * x[i])
            head[i] = acc
        acc = sign * x[b1 - 1]
        tail[b1 - 1] = acc
        for i in range(b1 - 2, b0 - 1, -1):
            acc = _higher(acc, sign * x[i])
            tail[i] = acc
    for i in range(period - 1, n):
        out[i] = sign * _higher(tail[i - period + 1], head[i])
    return out


def rolling_max(values: FloatArray, period: int) -> FloatArray:
    """Highest value of the last `period` values."""
    check_period(period)
    return _rolling_extreme(_as_array(values), period, 1.0)  # type: ignore[no-any-return]


def rolling_min(values: FloatArray, period: int) -> FloatArray:
    """Lowest value of the last `period` values."""
    check_period(period)
    return _rolling_extreme(_as_array(values), period, -1.0)  # type: ignore[no-any-return]


@numba.njit(cache=True)
def _rolling_std(x: FloatArray, period: int) -> FloatArray:  # pragma: no cover - numba
    out = np.full(len(x), np.nan)
    work = np.empty(period)
    for i in range(period - 1, len(x)):
        out[i] = window_std(x, i, period, work)
    return out


def rolling_std(values: FloatArray, period: int) -> FloatArray:
    """Population standard deviation of the last `period` values: numpy's `std` of each
    window, computed window by window (numpy's way needs a period-times copy of the data)."""
    check_period(period)
    return _rolling_std(_as_array(values), period)  # type: ignore[no-any-return]


def _wilder_rsi_py(x: FloatArray, period: int) -> FloatArray:  # pragma: no cover - compiled
    out = np.full(x.shape, np.nan)
    avg_gain = 0.0
    avg_loss = 0.0
    for j in range(1, period + 1):
        change = x[j] - x[j - 1]
        avg_gain += max(change, 0.0) / period
        avg_loss += max(-change, 0.0) / period
    for i in range(period, len(x)):
        if i > period:
            change = x[i] - x[i - 1]
            avg_gain = (avg_gain * (period - 1) + max(change, 0.0)) / period
            avg_loss = (avg_loss * (period - 1) + max(-change, 0.0)) / period
        if avg_loss == 0.0:
            out[i] = 100.0 if avg_gain > 0 else 50.0
        else:
            out[i] = 100.0 - 100.0 / (1.0 + avg_gain / avg_loss)
    return out


def rsi(values: FloatArray, period: int = 14) -> FloatArray:
    """Wilder's relative strength index (0..100); the first value is at bar `period`."""
    check_period(period)
    x = _as_array(values)
    if len(x) <= period:
        return np.full(x.shape, np.nan)
    # Wilder's smoothing is a recursion, so it is compiled rather than vectorised.
    return _wilder_rsi()(x, period)  # type: ignore[no-any-return]


@functools.cache
def _wilder_rsi() -> Any:
    """The compiled recursion, compiled (or loaded from numba's cache) on first use: numba and
    llvmlite take ~0.3 s and ~60 MB to import, which a run without RSI need not pay."""
    import numba

    return numba.njit(cache=True)(_wilder_rsi_py)


def warm_up() -> None:
    """Have the compiled indicators ready now. The first call of a numba function loads its
    machine code (from numba's cache, or compiles it) and imports numba's typing registries:
    0.1 to 0.4 s on the development machine. A live process calls this before it trades;
    otherwise the first bar that needs RSI holds up every tick and order behind it."""
    _wilder_rsi()(np.zeros(2), 1)
    _rolling_extreme(np.zeros(2), 1, 1.0)
    _rolling_std(np.zeros(2), 1)


def bollinger(
    values: FloatArray, period: int = 20, k: float = 2.0
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Bollinger bands: (middle SMA, upper = mid + k·σ, lower = mid − k·σ)."""
    return bands(sma(values, period), rolling_std(values, period), k)


def bands(mid: FloatArray, std: FloatArray, k: float) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(mid, mid + k·std, mid − k·std): Bollinger's bands from their average and deviation."""
    width = k * std
    return mid, mid + width, mid - width


def shifted(values: FloatArray, bars: int = 1) -> FloatArray:
    """The series delayed by `bars` (NaN at the start): the previous bars' values at bar i."""
    x = _as_array(values)
    out = np.full(x.shape, np.nan)
    if bars < len(x):
        out[bars:] = x[: len(x) - bars]
    return out

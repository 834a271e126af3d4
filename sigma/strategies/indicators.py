"""Causal technical indicators over float arrays: the value at bar i uses bars <= i only.

Warm-up values are NaN. Each function takes and returns float64 numpy arrays so the engine can
compute an indicator over a whole history at once and the live loop can recompute it as bars
arrive; both give the same numbers.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from sigma.strategies.series import FloatArray


def _as_array(values: FloatArray) -> FloatArray:
    return np.asarray(values, dtype=np.float64)


def _check_period(period: int) -> None:
    if period < 1:
        raise ValueError(f"indicator period must be >= 1, got {period}")


def sma(values: FloatArray, period: int) -> FloatArray:
    """Simple moving average: mean of the last `period` values."""
    _check_period(period)
    x = _as_array(values)
    out = np.full(x.shape, np.nan)
    if len(x) >= period:
        # A sum over each window (not a running cumsum) keeps float error from accumulating
        # over a million bars, so crossovers match a textbook rolling mean exactly.
        out[period - 1 :] = sliding_window_view(x, period).sum(axis=1) / period
    return out


def rolling_max(values: FloatArray, period: int) -> FloatArray:
    """Highest value of the last `period` values."""
    _check_period(period)
    x = _as_array(values)
    out = np.full(x.shape, np.nan)
    if len(x) >= period:
        out[period - 1 :] = sliding_window_view(x, period).max(axis=1)
    return out


def rolling_min(values: FloatArray, period: int) -> FloatArray:
    """Lowest value of the last `period` values."""
    _check_period(period)
    x = _as_array(values)
    out = np.full(x.shape, np.nan)
    if len(x) >= period:
        out[period - 1 :] = sliding_window_view(x, period).min(axis=1)
    return out


def rolling_std(values: FloatArray, period: int) -> FloatArray:
    """Population standard deviation of the last `period` values."""
    _check_period(period)
    x = _as_array(values)
    out = np.full(x.shape, np.nan)
    if len(x) >= period:
        out[period - 1 :] = sliding_window_view(x, period).std(axis=1)
    return out


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
    _check_period(period)
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


def bollinger(
    values: FloatArray, period: int = 20, k: float = 2.0
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Bollinger bands: (middle SMA, upper = mid + k·σ, lower = mid − k·σ)."""
    mid = sma(values, period)
    width = k * rolling_std(values, period)
    return mid, mid + width, mid - width


def shifted(values: FloatArray, bars: int = 1) -> FloatArray:
    """The series delayed by `bars` (NaN at the start): the previous bars' values at bar i."""
    x = _as_array(values)
    out = np.full(x.shape, np.nan)
    if bars < len(x):
        out[bars:] = x[: len(x) - bars]
    return out

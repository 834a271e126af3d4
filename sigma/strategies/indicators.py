"""Causal technical indicators over float arrays: the value at bar i uses bars <= i only.

Warm-up values are NaN. Each function takes and returns float64 numpy arrays so the engine can
compute an indicator over a whole history at once and the live loop can recompute it as bars
arrive; both give the same numbers.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

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


def rolling_max(values: FloatArray, period: int) -> FloatArray:
    """Highest value of the last `period` values."""
    check_period(period)
    from sigma.strategies.kernels import rolling_extreme  # numba, on first use (see kernels)

    return rolling_extreme(_as_array(values), period, 1.0)  # type: ignore[no-any-return]


def rolling_min(values: FloatArray, period: int) -> FloatArray:
    """Lowest value of the last `period` values."""
    check_period(period)
    from sigma.strategies.kernels import rolling_extreme  # numba, on first use (see kernels)

    return rolling_extreme(_as_array(values), period, -1.0)  # type: ignore[no-any-return]


def rolling_std(values: FloatArray, period: int) -> FloatArray:
    """Population standard deviation of the last `period` values: numpy's `std` of each
    window, computed window by window (numpy's way needs a period-times copy of the data)."""
    check_period(period)
    from sigma.strategies.kernels import rolling_std  # numba, on first use (see kernels)

    return rolling_std(_as_array(values), period)  # type: ignore[no-any-return]


def rsi(values: FloatArray, period: int = 14) -> FloatArray:
    """Wilder's relative strength index (0..100); the first value is at bar `period`."""
    check_period(period)
    x = _as_array(values)
    if len(x) <= period:
        return np.full(x.shape, np.nan)
    # Wilder's smoothing is a recursion, so it is compiled rather than vectorised.
    from sigma.strategies.kernels import wilder_rsi  # numba, on first use (see kernels)

    return wilder_rsi(x, period)  # type: ignore[no-any-return]


def warm_up() -> None:
    """Have the compiled indicators ready now. The first call of a numba function loads its
    machine code (from numba's cache, or compiles it) and imports numba's typing registries:
    0.1 to 0.4 s on the development machine. A live process calls this before it trades;
    otherwise the first bar that needs RSI holds up every tick and order behind it."""
    from sigma.strategies import kernels

    kernels.wilder_rsi(np.zeros(2), 1)
    kernels.rolling_extreme(np.zeros(2), 1, 1.0)
    kernels.rolling_std(np.zeros(2), 1)


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

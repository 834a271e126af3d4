"""The compiled loops behind `sigma.strategies.indicators`, kept apart so that importing the
indicators does not import numba: numba, llvmlite and scipy take ~70 MB and ~0.5 s to import,
which a run whose indicators need no loop (an SMA crossover) need not pay. The indicators
import this module on their first call of a loop.
"""

from __future__ import annotations

import numba
import numpy as np

from sigma.strategies.pairwise import window_std
from sigma.strategies.series import FloatArray


@numba.njit(cache=True)
def higher(acc: float, v: float) -> float:  # pragma: no cover - numba-compiled
    # The larger of the two, NaN when either is (as numpy's max).
    return v if (v > acc or v != v) else acc


@numba.njit(cache=True)
def rolling_extreme(x: FloatArray, period: int, sign: float) -> FloatArray:  # pragma: no cover
    """Max (`sign` 1.0) or min (-1.0) of each window of `period` values; NaN before."""
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
            acc = higher(acc, sign * x[i])
            head[i] = acc
        acc = sign * x[b1 - 1]
        tail[b1 - 1] = acc
        for i in range(b1 - 2, b0 - 1, -1):
            acc = higher(acc, sign * x[i])
            tail[i] = acc
    for i in range(period - 1, n):
        out[i] = sign * higher(tail[i - period + 1], head[i])
    return out


@numba.njit(cache=True)
def rolling_std(x: FloatArray, period: int) -> FloatArray:  # pragma: no cover - numba
    """Population standard deviation of each window of `period` values; NaN before."""
    out = np.full(len(x), np.nan)
    work = np.empty(period)
    for i in range(period - 1, len(x)):
        out[i] = window_std(x, i, period, work)
    return out


@numba.njit(cache=True, inline="always")
def rsi_seed(x: FloatArray, period: int) -> tuple[float, float]:  # pragma: no cover - numba
    """Wilder's average gain and loss at bar `period` (len(x) > period): the mean of the
    first `period` changes."""
    avg_gain = 0.0
    avg_loss = 0.0
    for j in range(1, period + 1):
        change = x[j] - x[j - 1]
        avg_gain += max(change, 0.0) / period
        avg_loss += max(-change, 0.0) / period
    return avg_gain, avg_loss


@numba.njit(cache=True, inline="always")
def rsi_step(  # pragma: no cover - numba-compiled
    x: FloatArray, i: int, period: int, avg_gain: float, avg_loss: float
) -> tuple[float, float]:
    """Wilder's averages at bar `i` > `period` from those at bar i - 1."""
    change = x[i] - x[i - 1]
    avg_gain = (avg_gain * (period - 1) + max(change, 0.0)) / period
    avg_loss = (avg_loss * (period - 1) + max(-change, 0.0)) / period
    return avg_gain, avg_loss


@numba.njit(cache=True, inline="always")
def rsi_of(avg_gain: float, avg_loss: float) -> float:  # pragma: no cover - numba-compiled
    """The RSI of Wilder's average gain and loss."""
    if avg_loss == 0.0:
        return 100.0 if avg_gain > 0 else 50.0
    return 100.0 - 100.0 / (1.0 + avg_gain / avg_loss)


@numba.njit(cache=True)
def wilder_rsi(x: FloatArray, period: int) -> FloatArray:  # pragma: no cover - numba
    """Wilder's RSI of `x` (len(x) > period): NaN before bar `period`."""
    out = np.full(x.shape, np.nan)
    avg_gain, avg_loss = rsi_seed(x, period)
    for i in range(period, len(x)):
        if i > period:
            avg_gain, avg_loss = rsi_step(x, i, period, avg_gain, avg_loss)
        out[i] = rsi_of(avg_gain, avg_loss)
    return out

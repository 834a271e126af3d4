"""The common technical indicators, from TA-Lib (its wheels ship the C library), typed.

Each function takes float arrays (a strategy passes `self.data.close` etc. through
`self.indicator`) and returns float64 arrays of the same length, NaN during the warm-up, so a
strategy uses them exactly as `indicators.sma`:

    self.trend = self.indicator(ta.adx, self.data.high, self.data.low, self.data.close, 14)

Every value at bar i reads bars <= i only (the look-ahead check verifies it for a strategy's
every indicator), so a backtest and a live run that recomputes them on its growing window of
bars see the same numbers bar by bar. The recursive ones (EMA, MACD, ATR, ADX, MFI) start from
the first bar they are given: a live run holding a bounded window starts them later, which
shifts their value by a fraction that halves every few periods (negligible after ~10 periods).
VWAP, which TA-Lib lacks, is computed here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import talib
from numpy.lib.stride_tricks import sliding_window_view

from sigma.strategies.indicators import check_period
from sigma.strategies.series import FloatArray


def _in(values: Any) -> FloatArray:
    # TA-Lib's C functions want contiguous float64 (a Series' array already is one).
    return np.ascontiguousarray(values, dtype=np.float64)


def _out(values: Any) -> FloatArray:
    return np.asarray(values, dtype=np.float64)


def ema(values: FloatArray, period: int = 20) -> FloatArray:
    """Exponential moving average (α = 2 / (period + 1)), seeded with the first SMA."""
    check_period(period)
    return _out(talib.EMA(_in(values), timeperiod=period))


def wma(values: FloatArray, period: int = 20) -> FloatArray:
    """Linearly weighted moving average (the latest bar weighs `period`, the oldest 1)."""
    check_period(period)
    return _out(talib.WMA(_in(values), timeperiod=period))


def macd(
    values: FloatArray, fast: int = 12, slow: int = 26, signal: int = 9
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(MACD line = EMA(fast) − EMA(slow), its signal line EMA(signal), histogram)."""
    for period in (fast, slow, signal):
        check_period(period)
    line, sig, hist = talib.MACD(_in(values), fastperiod=fast, slowperiod=slow, signalperiod=signal)
    return _out(line), _out(sig), _out(hist)


def atr(high: FloatArray, low: FloatArray, close: FloatArray, period: int = 14) -> FloatArray:
    """Wilder's average true range."""
    check_period(period)
    return _out(talib.ATR(_in(high), _in(low), _in(close), timeperiod=period))


def adx(high: FloatArray, low: FloatArray, close: FloatArray, period: int = 14) -> FloatArray:
    """Wilder's average directional index (trend strength, 0..100)."""
    check_period(period)
    return _out(talib.ADX(_in(high), _in(low), _in(close), timeperiod=period))


def stochastic(
    high: FloatArray,
    low: FloatArray,
    close: FloatArray,
    k_period: int = 14,
    k_smooth: int = 3,
    d_period: int = 3,
) -> tuple[FloatArray, FloatArray]:
    """Slow stochastic oscillator (%K smoothed over `k_smooth` bars, %D its SMA), 0..100."""
    for period in (k_period, k_smooth, d_period):
        check_period(period)
    k, d = talib.STOCH(
        _in(high),
        _in(low),
        _in(close),
        fastk_period=k_period,
        slowk_period=k_smooth,
        slowd_period=d_period,  # both smoothings are SMAs (TA-Lib's default)
    )
    return _out(k), _out(d)


def cci(high: FloatArray, low: FloatArray, close: FloatArray, period: int = 20) -> FloatArray:
    """Commodity channel index."""
    check_period(period)
    return _out(talib.CCI(_in(high), _in(low), _in(close), timeperiod=period))


def williams_r(
    high: FloatArray, low: FloatArray, close: FloatArray, period: int = 14
) -> FloatArray:
    """Williams %R (−100..0)."""
    check_period(period)
    return _out(talib.WILLR(_in(high), _in(low), _in(close), timeperiod=period))


def mfi(
    high: FloatArray, low: FloatArray, close: FloatArray, volume: FloatArray, period: int = 14
) -> FloatArray:
    """Money flow index (a volume-weighted RSI, 0..100)."""
    check_period(period)
    return _out(talib.MFI(_in(high), _in(low), _in(close), _in(volume), timeperiod=period))


def roc(values: FloatArray, period: int = 10) -> FloatArray:
    """Rate of change in percent over `period` bars."""
    check_period(period)
    return _out(talib.ROC(_in(values), timeperiod=period))


def obv(close: FloatArray, volume: FloatArray) -> FloatArray:
    """On-balance volume: volume added on an up close, subtracted on a down close."""
    return _out(talib.OBV(_in(close), _in(volume)))


def vwap(
    high: FloatArray, low: FloatArray, close: FloatArray, volume: FloatArray, period: int = 20
) -> FloatArray:
    """Volume-weighted average of the typical price (high + low + close) / 3 over the last
    `period` bars (NaN where those bars traded no volume). A rolling window rather than a
    session anchor: the same value whatever bar a live run's window starts at."""
    check_period(period)
    h, lo, c, v = _in(high), _in(low), _in(close), _in(volume)
    out = np.full(len(c), np.nan)
    if len(c) >= period:
        typical = (h + lo + c) / 3.0
        # Each window summed afresh (as `sma`), so nothing drifts over a long history.
        traded = sliding_window_view(v, period).sum(axis=1)
        weighted = sliding_window_view(typical * v, period).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[period - 1 :] = np.where(traded > 0, weighted / traded, np.nan)
    return out


__all__ = [
    "adx",
    "atr",
    "cci",
    "ema",
    "macd",
    "mfi",
    "obv",
    "roc",
    "stochastic",
    "vwap",
    "williams_r",
    "wma",
]

"""An independent, deliberately plain backtester used as the oracle for the engine.

Indicators come from pandas (not SIGMA's numpy code); the loop is the textbook one: decide on
bar i's close, trade at bar i+1's open, close first then enter with all cash in whole units;
an account whose equity at a close is at or below zero is closed out there and stops.
Decisions start where backtesting.py's `next()` does: the bar after the last first value of
the indicators.
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal

import numpy as np
import pandas as pd


def wilder_rsi(close: pd.Series, period: int) -> pd.Series:
    change = close.diff()
    gain, loss = change.clip(lower=0), (-change).clip(lower=0)
    out = pd.Series(np.nan, index=close.index)
    avg_g, avg_l = gain.iloc[1 : period + 1].mean(), loss.iloc[1 : period + 1].mean()
    for i in range(period, len(close)):
        if i > period:
            avg_g = (avg_g * (period - 1) + gain.iloc[i]) / period
            avg_l = (avg_l * (period - 1) + loss.iloc[i]) / period
        out.iloc[i] = (
            100.0
            if avg_l == 0 and avg_g > 0
            else (50.0 if avg_l == 0 else 100 - 100 / (1 + avg_g / avg_l))
        )
    return out


def _start(*indicators: pd.Series) -> int:
    """backtesting.py's first bar of `next()`: 1 + the latest first value (an indicator
    with none counts 0)."""
    return 1 + max((int(s.notna().to_numpy().argmax()) for s in indicators), default=0)


def _indicators(name: str, bars: pd.DataFrame, p: dict) -> dict[str, pd.Series]:
    c = bars["close"]
    if name == "sma_cross":
        return {"f": c.rolling(p["fast"]).mean(), "s": c.rolling(p["slow"]).mean()}
    if name == "rsi_reversion":
        return {"r": p["_rsi"]}
    if name == "bollinger_breakout":
        mid = c.rolling(p["period"]).mean()
        sd = c.rolling(p["period"]).std(ddof=0)
        return {"mid": mid, "up": mid + p["k"] * sd, "lo": mid - p["k"] * sd}
    return {
        "hi_e": bars["high"].rolling(p["entry"]).max().shift(1),
        "lo_e": bars["low"].rolling(p["entry"]).min().shift(1),
        "hi_x": bars["high"].rolling(p["exit"]).max().shift(1),
        "lo_x": bars["low"].rolling(p["exit"]).min().shift(1),
    }


def targets(name: str, bars: pd.DataFrame, p: dict) -> list:
    """Per bar: +1/-1/0 wanted exposure, or None to keep the current one."""
    c = bars["close"]
    ind = _indicators(name, bars, p)
    out: list = [None] * len(bars)
    held = 0
    for i in range(_start(*ind.values()), len(bars)):
        want = None
        if name == "sma_cross":
            f, s = ind["f"], ind["s"]
            if f.iloc[i - 1] < s.iloc[i - 1] and f.iloc[i] > s.iloc[i]:
                want = 1
            elif s.iloc[i - 1] < f.iloc[i - 1] and s.iloc[i] > f.iloc[i]:
                want = -1
        elif name == "rsi_reversion":
            r = ind["r"].iloc[i]
            if r < p["oversold"]:
                want = 1
            elif r > p["overbought"]:
                want = -1
            elif (held > 0 and r >= p["exit_level"]) or (held < 0 and r <= p["exit_level"]):
                want = 0
        elif name == "bollinger_breakout":
            mid, up, lo = ind["mid"], ind["up"], ind["lo"]
            x = c.iloc[i]
            if x > up.iloc[i]:
                want = 1
            elif x < lo.iloc[i]:
                want = -1
            elif (held > 0 and x < mid.iloc[i]) or (held < 0 and x > mid.iloc[i]):
                want = 0
        elif name == "donchian_trend":
            hi_e, lo_e, hi_x, lo_x = ind["hi_e"], ind["lo_e"], ind["hi_x"], ind["lo_x"]
            x = c.iloc[i]
            if x > hi_e.iloc[i] and held <= 0:
                want = 1
            elif x < lo_e.iloc[i] and held >= 0:
                want = -1
            elif (held > 0 and x < lo_x.iloc[i]) or (held < 0 and x > hi_x.iloc[i]):
                want = 0
        if want is not None and want != held:
            out[i] = want
            held = want
        elif want is not None:
            pass
    return out


def reference_backtest(name: str, bars: pd.DataFrame, p: dict, cash: Decimal, fee: Decimal):
    """Returns (list of (entry_bar, exit_bar, signed qty, pnl)), final equity."""
    if name == "rsi_reversion":
        p = dict(p, _rsi=wilder_rsi(bars["close"], p["period"]))
    want = targets(name, bars, p)
    opens = [Decimal(repr(float(x))) for x in bars["open"]]
    closes = [Decimal(repr(float(x))) for x in bars["close"]]
    qty, entry_price, entry_fee, entry_bar = Decimal(0), Decimal(0), Decimal(0), -1
    trades = []

    def close_at(px: Decimal, i: int) -> Decimal:
        exit_fee = abs(qty) * px * fee
        trades.append((entry_bar, i, qty, qty * (px - entry_price) - entry_fee - exit_fee))
        return cash + qty * px - exit_fee

    for i in range(1, len(bars)):
        target = want[i - 1]
        px = opens[i]
        if target is not None and qty:  # close the current position
            cash, qty = close_at(px, i), Decimal(0)
        if target:
            units = (cash / (px * (1 + fee))).to_integral_value(ROUND_FLOOR)
            if units > 0:
                qty, entry_price, entry_bar = target * units, px, i
                entry_fee = units * px * fee
                cash -= qty * px + entry_fee
        if qty and cash + qty * closes[i] <= 0:  # out of money: liquidated at the close
            return trades, max(close_at(closes[i], i), Decimal(0))
    return trades, cash + qty * closes[-1]

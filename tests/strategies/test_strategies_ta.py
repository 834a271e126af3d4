"""TA-Lib indicators: float64 with NaN warm-up, causal bar by bar, the same numbers in a
backtest and in a live run that recomputes them as bars arrive."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from sigma.domain import Bar
from sigma.engine.engine import EngineConfig
from sigma.engine.live import DispatchEngine
from sigma.research.backtest import run_backtest
from sigma.strategies import Strategy, ta
from sigma.strategies.series import FloatArray

N = 400


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    rng = np.random.default_rng(17)
    close = np.round(100 * np.exp(np.cumsum(rng.normal(0, 0.01, N))), 2)
    open_ = np.round(np.concatenate(([100.0], close[:-1])), 2)
    idx = pd.date_range("2024-01-01", periods=N, freq="1min", tz="UTC", name="ts")
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.round(np.maximum(open_, close) + rng.uniform(0, 0.5, N), 2),
            "low": np.round(np.minimum(open_, close) - rng.uniform(0, 0.5, N), 2),
            "close": close,
            "volume": np.round(rng.uniform(1, 100, N), 3),
        },
        index=idx,
    )


Lines = Callable[[pd.DataFrame], list[FloatArray]]


def _lines(fn: Callable[..., FloatArray | tuple[FloatArray, ...]], *cols: str, **kw: int) -> Lines:
    def compute(frame: pd.DataFrame) -> list[FloatArray]:
        out = fn(*(frame[c].to_numpy() for c in cols), **kw)
        return list(out) if isinstance(out, tuple) else [out]

    return compute


HLC = ("high", "low", "close")
INDICATORS: dict[str, tuple[Lines, int]] = {
    # name: (lines, bars of warm-up)
    "ema": (_lines(ta.ema, "close", period=10), 9),
    "wma": (_lines(ta.wma, "close", period=10), 9),
    "macd": (_lines(ta.macd, "close"), 33),
    "atr": (_lines(ta.atr, *HLC), 14),
    "adx": (_lines(ta.adx, *HLC), 27),
    "stochastic": (_lines(ta.stochastic, *HLC), 17),
    "cci": (_lines(ta.cci, *HLC), 19),
    "williams_r": (_lines(ta.williams_r, *HLC), 13),
    "mfi": (_lines(ta.mfi, *HLC, "volume"), 14),
    "roc": (_lines(ta.roc, "close"), 10),
    "obv": (_lines(ta.obv, "close", "volume"), 0),
    "vwap": (_lines(ta.vwap, *HLC, "volume", period=20), 19),
}


@pytest.mark.parametrize("name", list(INDICATORS))
def test_warm_up_then_values_each_read_no_later_bar(name: str, bars: pd.DataFrame) -> None:
    compute, warm = INDICATORS[name]
    full = compute(bars)
    for line in full:
        assert line.dtype == np.float64
        assert len(line) == N
        assert np.isnan(line[:warm]).all()
        assert np.isfinite(line[warm:]).all()
    for t in range(warm, N, 7):  # computed on the bars up to t: the same value at t
        head = compute(bars.iloc[: t + 1])
        for whole, part in zip(full, head, strict=True):
            assert part[t] == whole[t]


def test_known_values() -> None:
    flat = np.full(50, 7.0)
    assert np.allclose(ta.ema(flat, 5)[4:], 7.0)
    x = np.arange(1.0, 31.0)
    ema = ta.ema(x, 4)
    assert ema[3] == pytest.approx(2.5)  # seeded with the first SMA
    assert ema[4] == pytest.approx(0.4 * 5 + 0.6 * 2.5)
    line, signal, hist = ta.macd(np.sin(np.arange(200) / 9.0))
    ok = ~np.isnan(hist)
    assert np.allclose(hist[ok], (line - signal)[ok])
    close = np.array([1.0, 2.0, 1.0, 1.0, 3.0])
    volume = np.array([10.0, 20.0, 30.0, 40.0, 50.0])
    assert ta.obv(close, volume).tolist() == [10.0, 30.0, 0.0, 0.0, 50.0]
    high, low = close + 1, close - 1
    vw = ta.vwap(high, low, close, volume, 2)
    assert np.isnan(vw[0])
    assert vw[1] == pytest.approx((1.0 * 10 + 2.0 * 20) / 30)
    assert np.isnan(ta.vwap(high, low, close, np.zeros(5), 2)[1:]).all()  # nothing traded
    assert np.isnan(ta.vwap(high, low, close, volume, 9)).all()  # too few bars
    with pytest.raises(ValueError, match="period"):
        ta.ema(x, 0)


class Recorder(Strategy):
    """Writes down what every TA indicator shows at each bar it decides on."""

    name = "ta_recorder"

    def init(self) -> None:
        d = self.data
        hlc = (d.high, d.low, d.close)
        self.seen: list[tuple[float, ...]] = getattr(self, "seen", [])
        self.lines = [
            self.indicator(ta.ema, d.close, 10),
            *self.indicator(ta.macd, d.close),
            self.indicator(ta.atr, *hlc),
            self.indicator(ta.adx, *hlc),
            *self.indicator(ta.stochastic, *hlc),
            self.indicator(ta.mfi, *hlc, d.volume),
            self.indicator(ta.obv, d.close, d.volume),
            self.indicator(ta.vwap, *hlc, d.volume, 20),
        ]

    def on_bar(self) -> None:
        self.seen.append(tuple(line[-1] for line in self.lines))


def test_backtest_and_live_see_the_same_values_bar_by_bar(bars: pd.DataFrame) -> None:
    backtested = Recorder()
    run_backtest(backtested, bars, symbol="X")
    live = Recorder()
    engine = DispatchEngine(live, "X", EngineConfig(), lambda order, ref: None)
    for ts, row in bars.iterrows():
        prices = {k: Decimal(repr(float(row[k]))) for k in ("open", "high", "low", "close")}
        bar = Bar("X", ts.to_pydatetime(), volume=Decimal(repr(float(row.volume))), **prices)
        engine.on_live_bar(bar, ref_price=prices["close"])
    # Both decide from backtesting.py's first bar: after the slowest warm-up (MACD's, ADX's).
    start = backtested.decision_start(final=True)
    assert start is not None and start > 30
    assert len(live.seen) == len(backtested.seen) == N - start
    assert np.array_equal(np.array(live.seen), np.array(backtested.seen), equal_nan=True)

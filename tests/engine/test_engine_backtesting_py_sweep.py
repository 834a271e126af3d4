"""The built-in strategies against backtesting.py on seeded random walks: the same trades,
to the cent, and the same trade statistics and drawdown.

The backtesting.py side declares the strategy's own indicator arrays with `self.I`, so its
`next()` starts where backtesting.py starts it (the bar after the indicators' warm-up), as
SIGMA's `on_bar` does. Commission is never zero, so no entry lands exactly on a whole number
of units (where backtesting.py's 1 - 2**-52 stake buys one unit less)."""

from __future__ import annotations

import warnings
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest

from sigma.domain import Bar
from sigma.engine.engine import EngineConfig
from sigma.engine.fast import fast_backtest
from sigma.engine.fill_model import FillModel
from sigma.engine.live import DispatchEngine
from sigma.research.backtest import run_backtest
from sigma.strategies.base import Strategy
from sigma.strategies.builtin import BollingerBreakout, DonchianTrend, RsiReversion, SmaCross
from sigma.strategies.builtin.donchian_trend import _prior_high, _prior_low
from sigma.strategies.indicators import bollinger, rsi, sma


def _cents(value: Decimal | float) -> Decimal:
    return Decimal(repr(float(value))).quantize(Decimal("0.01"))


def _walk(rng: np.random.Generator, n: int) -> pd.DataFrame:
    vol = float(rng.choice([0.005, 0.02, 0.08]))  # 0.08: shorts run out of money
    close = np.round(100 * np.exp(np.cumsum(rng.normal(0, vol, n))), 2)
    gaps = rng.normal(0, vol / 2, n) * rng.choice([0, 1, 4], n)
    open_ = np.round(np.concatenate(([close[0]], close[:-1])) * (1 + gaps), 2)
    wick = np.round(np.abs(rng.normal(0, vol, n)) * close, 2)
    idx = pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC", name="ts")
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) + wick,
            "low": np.minimum(open_, close) - wick,
            "close": close,
            "volume": 1.0,
        },
        index=idx,
    )


def _params(cls: type[Strategy], rng: np.random.Generator) -> dict[str, Any]:
    short = bool(rng.integers(0, 2))
    if cls is SmaCross:
        fast = int(rng.integers(2, 15))
        return {"fast": fast, "slow": int(rng.integers(fast + 1, 40)), "allow_short": short}
    if cls is RsiReversion:
        return {"period": int(rng.integers(2, 20)), "oversold": 40.0, "overbought": 60.0,
                "exit_level": float(rng.choice([41, 50, 59])), "allow_short": short}  # fmt: skip
    if cls is BollingerBreakout:
        return {"period": int(rng.integers(5, 30)), "k": float(rng.choice([0.5, 1.0, 2.0])),
                "allow_short": short}  # fmt: skip
    entry = int(rng.integers(2, 30))
    return {"entry": entry, "exit": int(rng.integers(2, entry + 1)), "allow_short": short}


def _indicators(cls: type[Strategy], bars: pd.DataFrame, p: dict[str, Any]) -> dict[str, Any]:
    close = bars["close"].to_numpy()
    if cls is SmaCross:
        return {"fast": sma(close, p["fast"]), "slow": sma(close, p["slow"])}
    if cls is RsiReversion:
        return {"rsi": rsi(close, p["period"])}
    if cls is BollingerBreakout:
        return dict(zip(("mid", "up", "lo"), bollinger(close, p["period"], p["k"]), strict=True))
    high, low = bars["high"].to_numpy(), bars["low"].to_numpy()
    return {"eh": _prior_high(high, p["entry"]), "el": _prior_low(low, p["entry"]),
            "xh": _prior_high(high, p["exit"]), "xl": _prior_low(low, p["exit"])}  # fmt: skip


def _theirs(cls: type[Strategy], bars: pd.DataFrame, p: dict[str, Any], cash: float, fee: float):
    from backtesting import Backtest
    from backtesting import Strategy as BtStrategy

    ind = _indicators(cls, bars, p)

    class Port(BtStrategy):  # the rules of `cls.on_bar`, in backtesting.py's terms
        def init(self) -> None:
            # Bollinger's bands as one 2-D indicator (what `self.I` makes of a tuple), the
            # others one each: backtesting.py's warm-up reads both kinds.
            if cls is BollingerBreakout:
                self.bands = self.I(lambda: np.array(list(ind.values())), name="bands")
            else:
                for key, values in ind.items():
                    setattr(self, key, self.I(lambda v=values: v, name=key))

        def go(self, side: int) -> None:
            if side == 0 or self.position.size * side <= 0:
                self.position.close()
            if side and self.position.size * side <= 0:
                (self.buy if side > 0 else self.sell)()

        def next(self) -> None:
            held, c = self.position.size, self.data.Close[-1]
            if cls is BollingerBreakout:
                v = dict(zip(ind, self.bands[:, -1], strict=True))
            else:
                v = {k: getattr(self, k)[-1] for k in ind}
            short = p["allow_short"]
            if cls is SmaCross:
                was = {k: getattr(self, k)[-2] for k in ind}
                if was["fast"] < was["slow"] and v["fast"] > v["slow"]:
                    self.go(1)
                elif was["slow"] < was["fast"] and v["slow"] > v["fast"]:
                    self.go(-1 if short else 0)
            elif cls is RsiReversion:
                r, x = v["rsi"], p["exit_level"]
                if r < p["oversold"]:
                    self.go(1)
                elif r > p["overbought"] and short:
                    self.go(-1)
                elif (held > 0 and r >= x) or (held < 0 and r <= x):
                    self.go(0)
            elif cls is BollingerBreakout:
                if c > v["up"]:
                    self.go(1)
                elif c < v["lo"] and short:
                    self.go(-1)
                elif (held > 0 and c < v["mid"]) or (held < 0 and c > v["mid"]):
                    self.go(0)
            elif c > v["eh"] and held <= 0:
                self.go(1)
            elif c < v["el"] and held >= 0 and short:
                self.go(-1)
            elif (held > 0 and c < v["xl"]) or (held < 0 and c > v["xh"]):
                self.go(0)

    frame = bars.rename(columns=str.title)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Backtest(frame, Port, cash=cash, commission=fee, exclusive_orders=True).run()


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("cls", [SmaCross, RsiReversion, BollingerBreakout, DonchianTrend],
                         ids=lambda c: c.name)  # fmt: skip
def test_builtins_trade_as_backtesting_py(cls: type[Strategy], seed: int) -> None:
    rng = np.random.default_rng(1000 * seed + len(cls.name))
    bars = _walk(rng, 300)
    p = _params(cls, rng)
    cash, fee = float(rng.choice([1_000, 10_000, 1e6])), float(rng.choice([0.001, 0.002]))
    theirs = _theirs(cls, bars, p, cash, fee)
    ours, _ = run_backtest(
        cls(**p), bars, symbol="X", initial_cash=Decimal(repr(cash)),
        fill_model=FillModel(commission_pct=Decimal(repr(fee))),
    )  # fmt: skip
    bt = [
        (int(t.Size), int(t.EntryBar), int(t.ExitBar), Decimal(repr(float(t.EntryPrice))),
         Decimal(repr(float(t.ExitPrice))), pytest.approx(float(t.PnL), abs=1e-6))
        for t in theirs["_trades"].itertuples()
    ]  # fmt: skip
    sigma = [
        (int(t.qty), t.entry_bar, t.exit_bar, t.entry_price, t.exit_price, float(t.pnl))
        for t in ours.trades
    ]
    assert sigma == bt
    assert float(ours.final_equity) == pytest.approx(theirs["Equity Final [$]"], abs=0.005)
    stats = ours.stats
    assert stats["n_trades"] == theirs["# Trades"]
    if stats["n_trades"]:
        assert stats["win_rate_pct"] == pytest.approx(theirs["Win Rate [%]"])
    assert stats["max_drawdown_pct"] == pytest.approx(theirs["Max. Drawdown [%]"], abs=1e-6)


# Closes that make each built-in want to trade on the first bar its indicators allow: falling
# into RSI(5)'s first value (0), far above Bollinger(5, 1)'s first bands, above the first
# 5-bar channel. SmaCross(2, 4) crosses on the first bar it can (two values of each average).
FIRST_BAR: dict[type[Strategy], tuple[dict[str, Any], list[float]]] = {
    SmaCross: ({"fast": 2, "slow": 4}, [100, 100, 100, 99, 105]),
    RsiReversion: (
        {"period": 5, "oversold": 30.0, "overbought": 70.0, "exit_level": 50.0},
        [100, 99, 98, 97, 96, 95, 94],
    ),
    BollingerBreakout: ({"period": 5, "k": 1.0}, [100, 100, 100, 100, 110, 111]),
    DonchianTrend: ({"entry": 5, "exit": 3}, [100, 100, 100, 100, 100, 105, 107]),
}


def _fires_first(cls: type[Strategy], seed: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    """`FIRST_BAR`'s closes, then a seeded walk from the last of them."""
    params, head = FIRST_BAR[cls]
    rng = np.random.default_rng(seed)
    tail = _walk(rng, 200)
    close = np.concatenate([head, np.round(head[-1] * tail["close"].to_numpy() / 100, 2)])
    open_ = np.concatenate(([close[0]], close[:-1]))
    idx = pd.date_range("2024-01-01", periods=len(close), freq="1h", tz="UTC", name="ts")
    bars = pd.DataFrame(
        {"open": open_, "high": np.maximum(open_, close) + 0.5,
         "low": np.minimum(open_, close) - 0.5, "close": close, "volume": 1.0},
        index=idx,
    )  # fmt: skip
    return bars, {**params, "allow_short": True}


@pytest.mark.parametrize("cls", list(FIRST_BAR), ids=lambda c: c.name)
def test_the_first_decision_is_on_backtesting_py_s_first_bar(cls: type[Strategy]) -> None:
    """A rule that fires on the first bar its indicators exist (RSI at bar `period`,
    Bollinger at `period - 1`, Donchian at `entry`) waits a bar, as backtesting.py's
    `next()` does; SmaCross's first crossing is already there. The exact engine, the fast
    path and backtesting.py make the same trades."""
    bars, p = _fires_first(cls, seed=5)
    theirs = _theirs(cls, bars, p, 10_000.0, 0.001)
    fm = FillModel(commission_pct=Decimal("0.001"))
    ours, _ = run_backtest(cls(**p), bars, symbol="X", initial_cash=Decimal(10_000), fill_model=fm)
    first = {SmaCross: 4, RsiReversion: 6, BollingerBreakout: 5, DonchianTrend: 6}[cls]
    assert ours.trades[0].entry_bar == int(theirs["_trades"].EntryBar.iloc[0]) == first + 1
    sigma = [(int(t.qty), t.entry_bar, t.exit_bar, float(t.pnl)) for t in ours.trades]
    bt = [
        (int(t.Size), int(t.EntryBar), int(t.ExitBar), pytest.approx(float(t.PnL), abs=1e-6))
        for t in theirs["_trades"].itertuples()
    ]
    assert sigma == bt
    fast = fast_backtest(cls, p, bars, Decimal(10_000), fm)
    assert fast.entry_bar.tolist() == [t.entry_bar for t in ours.trades]
    assert fast.exit_bar.tolist() == [t.exit_bar for t in ours.trades]
    assert _cents(fast.final_equity) == ours.final_equity.quantize(Decimal("0.01"))


def _nan_led(n: int, first: int | None) -> np.ndarray:
    """Values from bar `first` on (none: all NaN), with a NaN after the first value too."""
    out = np.full(n, np.nan)
    if first is not None:
        out[first:] = np.arange(n - first, dtype=float)
        if first + 2 < n:
            out[first + 2] = np.nan  # later NaNs do not delay the start
    return out


# Indicators (arrays, or a tuple of arrays: one indicator of several) by their first values.
WARM_UPS: dict[str, list[Any]] = {
    "none": [],
    "one": [7],
    "two": [3, 11],
    "all NaN": [None],
    "all NaN beside one": [None, 5],
    "several arrays": [(2, 9)],
    "several arrays, one all NaN": [(None, 4)],
    "at the last bar": [29],
}


def _held(close: np.ndarray, values: Any) -> Any:
    """`values` over the bars held (the bars so far, live)."""
    if isinstance(values, tuple):
        return tuple(v[: len(close)] for v in values)
    return values[: len(close)]


@pytest.mark.parametrize("case", list(WARM_UPS))
def test_on_bar_starts_where_backtesting_py_starts_next(case: str) -> None:
    """backtesting.py's `Backtest.run`: `start = 1 + _indicator_warmup_nbars(strategy)`, the
    largest `np.isnan(indicator).argmin(axis=-1)` over the indicators (an all-NaN row gives
    0; a 2-D indicator counts its rows). The exact engine calls `on_bar` first on that bar,
    and live (fed bar by bar) too, except that it waits for an indicator with no value."""
    from backtesting import Backtest
    from backtesting import Strategy as BtStrategy

    bars = _walk(np.random.default_rng(3), 30)
    arrays = [
        tuple(_nan_led(len(bars), f) for f in spec) if isinstance(spec, tuple)
        else _nan_led(len(bars), spec)
        for spec in WARM_UPS[case]
    ]  # fmt: skip
    theirs: list[int] = []
    ours: list[int] = []

    class Port(BtStrategy):
        def init(self) -> None:
            for k, values in enumerate(arrays):
                value = np.array(values) if isinstance(values, tuple) else values
                setattr(self, f"i{k}", self.I(lambda v=value: v, name=f"i{k}"))

        def next(self) -> None:
            theirs.append(len(self.data) - 1)

    class Ours(Strategy):
        name = "ours"

        def init(self) -> None:
            self.lines = [self.indicator(_held, self.data.close, values) for values in arrays]

        def on_bar(self) -> None:
            ours.append(self.bar_index)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Backtest(bars.rename(columns=str.title), Port, cash=10_000).run()
    run_backtest(Ours(), bars, symbol="X")
    firsts = [f for spec in WARM_UPS[case] for f in (spec if isinstance(spec, tuple) else [spec])]
    start = 1 + max((f or 0 for f in firsts), default=0)  # no value at all: 0
    assert theirs == list(range(start, len(bars)))
    assert ours == theirs
    backtested = ours.copy()
    ours.clear()
    live = DispatchEngine(Ours(), "X", EngineConfig(), lambda order, ref: None)
    for ts, row in bars.iterrows():
        prices = {k: Decimal(repr(float(row[k]))) for k in ("open", "high", "low", "close")}
        live.on_live_bar(Bar("X", ts.to_pydatetime(), **prices), ref_price=prices["close"])
    assert ours == ([] if "all NaN" in case else backtested)

"""Protective orders against independent references.

* backtesting.py's `sl`/`tp` (an entry with a bracket, SL first when a bar reaches both): the
  same SMA-cross-with-bracket strategy on its bundled GOOG, BTCUSD and EURUSD data must make
  the same trades, to the cent, and end with the same equity, for market orders filled at the
  next open and at the close, sized in units and as a share of equity.
* The one place the rules differ on purpose: a bar that opens beyond the take-profit and then
  reaches the stop-loss. The open is the bar's first price, so the take-profit was marketable
  there; backtesting.py still books the stop-loss. Every trade that differs must be such a
  bar, filled at its open.
* A trailing stop against a plain loop written here from the rules (highest high since the
  entry, the level moved after each bar).
"""

from __future__ import annotations

import warnings
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from sigma.engine.fill_model import FillModel, FillTiming
from sigma.research.backtest import run_backtest
from sigma.strategies import Strategy, crossed_above
from sigma.strategies.indicators import sma
from tests.scripted import FromBarZero

BT_DATA = Path(__import__("backtesting").__file__).parent / "test"
COMMISSION = 0.002


def _theirs(data: pd.DataFrame, sl: float, tp: float, size: float, cash: float, on_close: bool):
    from backtesting import Backtest
    from backtesting import Strategy as BtStrategy
    from backtesting.lib import crossover
    from backtesting.test import SMA

    class BtBracket(BtStrategy):
        def init(self) -> None:
            self.ma1 = self.I(SMA, self.data.Close, 10)
            self.ma2 = self.I(SMA, self.data.Close, 20)

        def next(self) -> None:
            if self.position:
                return
            price = self.data.Close[-1]
            if crossover(self.ma1, self.ma2):
                self.buy(size=size, sl=price * (1 - sl), tp=price * (1 + tp))
            elif crossover(self.ma2, self.ma1):
                self.sell(size=size, sl=price * (1 + sl), tp=price * (1 - tp))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = Backtest(data, BtBracket, commission=COMMISSION, cash=cash, trade_on_close=on_close)
        return bt.run()


class Bracket(Strategy):
    """SMA 10/20 cross entering only when flat, with a stop-loss and a take-profit."""

    name = "bracket_cross"

    def __init__(self, sl: float, tp: float, size: float) -> None:
        super().__init__()
        self.sl, self.tp, self.size = sl, tp, size

    def init(self) -> None:
        self.fast = self.indicator(sma, self.data.close, 10)
        self.slow = self.indicator(sma, self.data.close, 20)

    def on_bar(self) -> None:
        if self.position != 0:
            return
        price = float(self.data.close[-1])
        qty, fraction = (self.size, None) if self.size >= 1 else (None, self.size)
        if crossed_above(self.fast, self.slow):
            self.buy(qty, fraction=fraction, sl=price * (1 - self.sl), tp=price * (1 + self.tp))
        elif crossed_above(self.slow, self.fast):
            self.sell(qty, fraction=fraction, sl=price * (1 + self.sl), tp=price * (1 - self.tp))


def _data(name: str, rows: int | None = None) -> pd.DataFrame:
    data = pd.read_csv(BT_DATA / f"{name}.csv", index_col=0, parse_dates=True)
    return data.iloc[:rows] if rows else data


def _ours(data: pd.DataFrame, sl: float, tp: float, size: float, cash: float, on_close: bool):
    frame = data.rename(columns=str.lower)
    if "volume" not in frame:
        frame["volume"] = 0.0
    frame.index = pd.DatetimeIndex(frame.index, tz="UTC", name="ts")
    timing = FillTiming.CLOSE if on_close else FillTiming.NEXT_OPEN
    result, _ = run_backtest(
        Bracket(sl, tp, size),
        frame[["open", "high", "low", "close", "volume"]],
        symbol="X",
        initial_cash=Decimal(cash),
        fill_model=FillModel(commission_pct=Decimal(repr(COMMISSION)), timing=timing),
    )
    return result


def _exact(x: float) -> Decimal:
    return Decimal(repr(float(x)))


def _rows(theirs: Any, ours: Any) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Both sides' trades: size, entry and exit bars, exact entry and exit prices, and the
    net PnL (theirs is a float sum: compared to a millionth, which is well inside a cent)."""
    bt = [
        (int(t.Size), int(t.EntryBar), int(t.ExitBar), _exact(t.EntryPrice), _exact(t.ExitPrice),
         pytest.approx(float(t.PnL), abs=1e-6))
        for t in theirs["_trades"].itertuples()
    ]  # fmt: skip
    sigma = [
        (int(t.qty), t.entry_bar, t.exit_bar, t.entry_price, t.exit_price, float(t.pnl))
        for t in ours.trades
    ]
    return bt, sigma


CASES = [
    # data, rows, stop-loss, take-profit, size (units, or a share of equity), cash
    ("GOOG", None, 0.05, 0.10, 20, 100_000),
    ("GOOG", None, 0.02, 0.03, 20, 100_000),
    ("GOOG", None, 0.03, 0.05, 0.5, 10_000),
    ("BTCUSD", None, 0.02, 0.03, 5, 10_000_000),
    ("BTCUSD", None, 0.01, 0.01, 5, 10_000_000),
    ("EURUSD", 5000, 0.01, 0.01, 10_000, 100_000),
    ("EURUSD", 5000, 0.02, 0.03, 0.9, 100_000),
]


@pytest.mark.parametrize("on_close", [False, True], ids=["next_open", "close"])
@pytest.mark.parametrize(("name", "rows", "sl", "tp", "size", "cash"), CASES)
def test_brackets_trade_like_backtesting_py_to_the_cent(
    name: str, rows: int | None, sl: float, tp: float, size: float, cash: float, on_close: bool
) -> None:
    data = _data(name, rows)
    theirs = _theirs(data, sl, tp, size, cash, on_close)
    ours = _ours(data, sl, tp, size, cash, on_close)
    bt, sigma = _rows(theirs, ours)
    assert len(bt) >= 2, "the case should close trades"
    assert sigma == bt
    assert {t.exit_reason for t in ours.trades} <= {"stop_loss", "take_profit"}
    assert float(ours.final_equity) == pytest.approx(theirs["Equity Final [$]"], abs=0.005)
    if not on_close:  # protection on the entry's own bar is exercised
        assert any(t.entry_bar == t.exit_bar for t in ours.trades) or name == "EURUSD"


@pytest.mark.parametrize("on_close", [False, True], ids=["next_open", "close"])
def test_an_open_beyond_the_take_profit_is_the_one_documented_difference(on_close: bool) -> None:
    data = _data("GOOG")
    theirs = _theirs(data, 0.01, 0.01, 20, 100_000, on_close)
    ours = _ours(data, 0.01, 0.01, 20, 100_000, on_close)
    bt, sigma = _rows(theirs, ours)
    assert len(bt) == len(sigma)
    their_trades = theirs["_trades"]
    differing = [k for k, (a, b) in enumerate(zip(bt, sigma, strict=True)) if a != b]
    assert len(differing) == 3
    for k in differing:
        mine, row = ours.trades[k], their_trades.iloc[k]
        bar = data.iloc[mine.exit_bar]
        long = mine.qty > 0
        # The open already reached the take-profit, and the range the stop-loss too.
        assert (bar.Open >= row.TP) if long else (bar.Open <= row.TP)
        assert (bar.Low <= row.SL) if long else (bar.High >= row.SL)
        assert mine.exit_reason == "take_profit" and mine.exit_price == _exact(bar.Open)
        assert row.ExitPrice == pytest.approx(row.SL)  # theirs: the stop-loss
        assert bt[k][:3] == sigma[k][:3]  # same entry, same bars


def test_a_stop_entry_and_its_take_profit_on_one_bar_as_backtesting_py() -> None:
    """backtesting.py fills the take-profit of a stop entry on the entry's bar when that bar
    reaches it and not the stop-loss (the price met the entry's stop first); so does SIGMA,
    which used to wait for the next bar, and its open."""
    from backtesting import Backtest
    from backtesting import Strategy as BtStrategy

    rows = [(100.0, 100.0, 100.0, 100.0)] * 2 + [(100.0, 106.0, 99.5, 105.0), (108, 109, 107, 108)]
    idx = pd.date_range("2024-01-01", periods=len(rows), freq="1D", tz="UTC", name="ts")
    frame = pd.DataFrame(rows, columns=["open", "high", "low", "close"], index=idx)
    frame["volume"] = 1.0

    class BtStopEntry(BtStrategy):
        def init(self) -> None:
            pass

        def next(self) -> None:
            if len(self.data) == 2:
                self.buy(size=3, stop=101, sl=98, tp=105)

    class StopEntry(Strategy):
        name = "stop_entry"

        def on_bar(self) -> None:
            if self.bar_index == 1:
                self.buy(3, stop=101, sl=98, tp=105)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = Backtest(frame.rename(columns=str.title), BtStopEntry, cash=10_000).run()
    ours, _ = run_backtest(StopEntry(), frame, symbol="X")
    bt, sigma = _rows(theirs, ours)
    assert sigma == bt == [(3, 2, 2, Decimal(101), Decimal(105), pytest.approx(12.0))]
    assert ours.trades[0].exit_reason == "take_profit"


# --- trailing stop against a plain loop ---------------------------------------------------------
class TrailEntries(FromBarZero):
    """Goes long or short at the close every `every` bars when flat, with a trailing stop."""

    name = "trail_entries"

    def __init__(self, trail: float, pct: bool) -> None:
        super().__init__()
        self.trail, self.pct = trail, pct

    def on_bar(self) -> None:
        if self.position == 0 and self.bar_index % 7 == 0:
            kind = {"trailing_pct" if self.pct else "trailing": self.trail}
            (self.buy if self.bar_index % 14 == 0 else self.sell)(1, **kind)  # type: ignore[arg-type]


def _reference_trailing(
    frame: pd.DataFrame, trail: Decimal, pct: bool
) -> list[tuple[int, int, Decimal, Decimal]]:
    """(entry bar, exit bar, entry price, exit price) from the rules, in plain Decimal."""
    o, h, lo = ([Decimal(repr(float(x))) for x in frame[c]] for c in ("open", "high", "low"))
    trades, pos, want, entry_bar, entry, stop, best = [], 0, 0, -1, Decimal(0), Decimal(0), None
    for i in range(len(frame)):
        if want and not pos:  # market entry at this open
            pos, entry_bar, entry, best = want, i, o[i], o[i]
            stop = _level(best, trail, pct, pos)
        want = 0
        if pos:
            hit = lo[i] <= stop if pos > 0 else h[i] >= stop
            at_open = o[i] <= stop if pos > 0 else o[i] >= stop
            if hit:
                trades.append((entry_bar, i, entry, o[i] if at_open else stop))
                pos = 0
            else:
                best = max(best, h[i]) if pos > 0 else min(best, lo[i])
                level = _level(best, trail, pct, pos)
                stop = max(stop, level) if pos > 0 else min(stop, level)
        if not pos and i % 7 == 0:
            want = 1 if i % 14 == 0 else -1
    return trades


def _level(best: Decimal, trail: Decimal, pct: bool, pos: int) -> Decimal:
    if pct:
        return best * (1 - trail if pos > 0 else 1 + trail)
    return best - trail if pos > 0 else best + trail


@pytest.mark.parametrize(("trail", "pct"), [(Decimal("1.5"), False), (Decimal("0.02"), True)])
def test_trailing_stops_match_a_plain_loop(trail: Decimal, pct: bool) -> None:
    rng = np.random.default_rng(21)
    n = 2000
    close = np.round(100 * np.exp(np.cumsum(rng.normal(0, 0.01, n))), 2)
    open_ = np.round(np.concatenate(([100.0], close[:-1])) * (1 + rng.normal(0, 0.004, n)), 2)
    high = np.maximum(open_, close) + np.round(rng.uniform(0, 0.6, n), 2)
    low = np.minimum(open_, close) - np.round(rng.uniform(0, 0.6, n), 2)
    idx = pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC", name="ts")
    frame = pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": 1.0}, index=idx
    )
    result, _ = run_backtest(
        TrailEntries(float(trail), pct), frame, symbol="X", initial_cash=Decimal(10**6)
    )
    expected = _reference_trailing(frame, trail, pct)
    assert len(expected) > 50
    got = [(t.entry_bar, t.exit_bar, t.entry_price, t.exit_price) for t in result.trades]
    assert got == expected
    assert {t.exit_reason for t in result.trades} == {"trailing_stop"}

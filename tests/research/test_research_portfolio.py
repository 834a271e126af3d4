"""Portfolio backtests: one strategy over several symbols sharing one account."""

from __future__ import annotations

import threading
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sigma.engine.engine import Cancelled, StrategyFailed
from sigma.engine.fill_model import FillModel
from sigma.engine.history_check import BadHistory
from sigma.engine.margin import AccountType, MarginModel
from sigma.research.backtest import run_backtest
from sigma.research.portfolio import PORTFOLIO, equal_weight_index, run_portfolio
from sigma.strategies import Strategy, load_strategies
from tests.scripted import FromBarZero

D = Decimal
BT_DATA = Path(__import__("backtesting").__file__).parent / "test"


def bt_frame(name: str) -> pd.DataFrame:
    df = pd.read_csv(BT_DATA / f"{name}.csv", index_col=0, parse_dates=True)
    df = df.rename(columns=str.lower)
    df.index = pd.DatetimeIndex(df.index, tz="UTC", name="ts")
    if "volume" not in df:
        df["volume"] = 0.0
    return df[["open", "high", "low", "close", "volume"]].astype(float)


def walk(n: int, seed: int, start: str = "2024-01-01") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = np.round(100 * np.exp(np.cumsum(rng.normal(0, 0.01, n))), 2)
    open_ = np.round(np.concatenate(([100.0], close[:-1])), 2)
    idx = pd.date_range(start, periods=n, freq="1h", tz="UTC", name="ts")
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) + 0.1,
            "low": np.minimum(open_, close) - 0.1,
            "close": close,
            "volume": 1.0,
        },
        index=idx,
    )


def sma_cross(**params: int) -> Strategy:
    return load_strategies(entry_points_group=False).create("sma_cross", **params)


FEE = FillModel(commission_pct=D("0.002"))


def test_one_symbol_with_the_whole_stake_is_the_single_backtest() -> None:
    goog = bt_frame("GOOG")
    alone, _ = run_backtest(sma_cross(), goog, symbol="GOOG", fill_model=FEE)
    book = run_portfolio(sma_cross(), {"GOOG": goog}, fill_model=FEE, stake=D(1))
    assert book.total.final_equity == alone.final_equity
    got = [(t.entry_bar, t.exit_bar, t.qty, t.pnl) for t in book.total.trades]
    assert got == [(t.entry_bar, t.exit_bar, t.qty, t.pnl) for t in alone.trades]
    np.testing.assert_allclose(book.total.equity.to_numpy(), alone.equity.to_numpy())


def test_symbols_share_one_account_and_their_sleeves_add_up() -> None:
    bars = {"A": walk(600, 1), "B": walk(400, 2, start="2024-01-05")}
    strategy = sma_cross(fast=5, slow=20)
    book = run_portfolio(strategy, bars, initial_cash=D(20_000), fill_model=FEE)
    total = book.total
    assert total.symbol == PORTFOLIO and total.stats["symbols"] == 2
    # The union of the bar times: B starts four days after A, both end where they end.
    assert len(total.equity) == len(bars["A"].index.union(bars["B"].index))
    assert sum(s.final_equity for s in book.symbols.values()) == total.final_equity
    assert {t.symbol for t in total.trades} == {"A", "B"}
    for symbol, sleeve in book.symbols.items():
        assert sleeve.initial_cash == D(10_000)
        assert all(t.symbol == symbol for t in sleeve.trades)
        assert len(sleeve.equity) == len(bars[symbol])
    assert len(total.trades) == sum(len(s.trades) for s in book.symbols.values())
    # One account: equity = cash + every position at its last close, exactly.
    marks = {s: D(repr(float(f["close"].iloc[-1]))) for s, f in bars.items()}
    held = sum((s.final_position * marks[name] for name, s in book.symbols.items()), D(0))
    assert total.final_equity == total.final_cash + held
    assert total.equity.iloc[-1] == pytest.approx(float(total.final_equity))
    # Each entry commits half the free buying power: the first fill is about half the cash.
    first = min(total.fills, key=lambda f: f.ts)
    assert first.qty * first.price == pytest.approx(10_000, rel=0.02)
    assert strategy.params == dict(total.params)


def test_equal_weight_index_is_the_mean_of_rebased_closes() -> None:
    a = walk(3, 1)
    b = walk(2, 2, start="2024-01-01 01:00")
    union = a.index.union(b.index)
    index = equal_weight_index({"A": a, "B": b}, union)
    ra = a["close"] / a["close"].iloc[0]
    rb = [1.0, 1.0, b["close"].iloc[1] / b["close"].iloc[0]]
    np.testing.assert_allclose(index, (ra.to_numpy() + np.array(rb)) / 2)


class ShortAll(Strategy):
    name = "short_all"

    def init(self) -> None:
        self.seen: list[Decimal] = []

    def on_bar(self) -> None:
        self.seen.append(self.equity)
        self.go_short()


def test_a_breach_liquidates_every_symbol_and_stops_the_run() -> None:
    up = walk(50, 3)
    flat = up.copy()
    flat[["open", "high", "low", "close"]] = 100.0
    up.loc[up.index[20] :, ["open", "high", "low", "close"]] = 1000.0
    late = walk(10, 4, start="2024-02-01")  # no bar yet when the account is liquidated
    book = run_portfolio(ShortAll(), {"UP": up, "FLAT": flat, "LATE": late}, initial_cash=D(10_000))
    liq = book.liquidation
    assert liq is not None and liq.bar == 20 and "at or below zero" in liq.reason
    assert book.total.stats["liquidated"] is True
    assert book.total.final_equity == 0 and book.total.final_position == 0
    assert {t.symbol for t in book.total.trades} == {"UP", "FLAT"}
    assert book.symbols["LATE"].trades == [] and book.symbols["LATE"].fills == []
    assert all(s.stats["liquidated"] for s in book.symbols.values())
    assert (book.total.equity.iloc[20:] == 0).all()
    assert book.total.equity.iloc[0] == 10_000.0  # nothing filled on the first bar


class ShortThenLong(Strategy):
    name = "short_then_long"

    def on_bar(self) -> None:
        if self.bar_index == 1:
            self.go_short()
        elif self.bar_index == 2:
            self.go_long()


def test_a_close_leaving_the_account_owing_liquidates_it() -> None:
    """A short of all the equity reversed at an open gapping from 100 to 250: the account is
    flat and owes $4,950, so it is out of money there, as the single backtest."""
    prices = pd.Series([100.0, 100.0, 100.0, 250.0, 260.0, 240.0])
    gap = walk(6, 5).assign(open=prices.values, high=prices.values, low=prices.values)
    gap["close"] = prices.values
    book = run_portfolio(ShortThenLong(), {"GAP": gap}, initial_cash=D(10_050), stake=D(1))
    liq = book.liquidation
    assert liq is not None and liq.bar == 3 and liq.shortfall == D(4_950)
    assert book.total.final_equity == 0
    assert (book.total.equity.iloc[3:] == 0).all()


def test_bad_bars_of_one_symbol_are_named_with_it() -> None:
    bad = walk(30, 6)
    bad.iloc[7, bad.columns.get_loc("close")] = np.nan
    with pytest.raises(BadHistory, match=r"^BAD bar 7 \(.*\): close is NaN$") as raised:
        run_portfolio(sma_cross(), {"GOOD": walk(30, 5), "BAD": bad})
    assert (raised.value.symbol, raised.value.bar, raised.value.column) == ("BAD", 7, "close")


class HoldTwo(FromBarZero):
    name = "hold_two"

    def on_bar(self) -> None:
        if self.bar_index == 0:
            self.buy(2)


def test_each_symbol_pays_its_own_funding_from_the_shared_account() -> None:
    rates = {"A": [0.0, 0.001, 0.0, -0.002, 0.0005, 0.001], "B": [0.0, 0.0, 0.003, 0.0, 0.0, 0.0]}
    bars = {s: walk(6, seed).assign(funding_rate=rates[s]) for s, seed in (("A", 5), ("B", 6))}
    margin = MarginModel(AccountType.FUTURES, leverage=D(2))
    book = run_portfolio(HoldTwo(), bars, initial_cash=D(10_000), margin=margin)
    owed = {
        s: sum(
            (
                2 * D(repr(c)) * D(repr(r))
                for c, r in zip(f["close"][1:], rates[s][1:], strict=True)
            ),
            D(0),
        )
        for s, f in bars.items()
    }  # bought at bar 1's open: funded from bar 1's close on
    for symbol, sleeve in book.symbols.items():
        assert sleeve.stats["funding_paid"] == owed[symbol] != 0
    total = book.total
    assert total.stats["funding_paid"] == owed["A"] + owed["B"]
    spent = sum((f.signed_qty * f.price for f in total.fills), D(0))
    assert total.final_cash == D(10_000) - spent - owed["A"] - owed["B"]
    assert sum(s.final_equity for s in book.symbols.values()) == total.final_equity
    np.testing.assert_allclose(
        sum(s.equity.to_numpy() for s in book.symbols.values()), total.equity.to_numpy()
    )


def test_bad_inputs_and_a_failing_strategy_are_named() -> None:
    with pytest.raises(ValueError, match="no symbols"):
        run_portfolio(sma_cross(), {})
    with pytest.raises(ValueError, match="no bars to backtest sma_cross on B"):
        run_portfolio(sma_cross(), {"A": walk(30, 1), "B": walk(30, 1).iloc[:0]})

    class Fails(Strategy):
        name = "fails"

        def on_bar(self) -> None:
            if self.bar_index == 3:
                raise ZeroDivisionError("boom")

    with pytest.raises(StrategyFailed, match="'fails' failed on A at bar 3"):
        run_portfolio(Fails(), {"A": walk(10, 1)})

    class BadInit(Strategy):
        name = "bad_init"

        def init(self) -> None:
            raise RuntimeError("no")

    with pytest.raises(StrategyFailed, match="in init"):
        run_portfolio(BadInit(), {"A": walk(10, 1)})


def test_progress_and_cancel() -> None:
    seen: list[tuple[int, int]] = []
    run_portfolio(sma_cross(), {"A": walk(30, 1)}, progress=lambda d, n: seen.append((d, n)))
    assert seen[0] == (0, 30) and seen[-1] == (30, 30)
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        run_portfolio(sma_cross(), {"A": walk(30, 1)}, cancel=stop)

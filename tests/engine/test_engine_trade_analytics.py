"""Trade analytics on a hand-computed series: MAE/MFE, durations, SQN, monthly returns, and
the position still open at the end of a run."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from sigma.domain import Fill, Side, Trade
from sigma.engine.fill_model import FillModel, FillTiming
from sigma.engine.portfolio import Portfolio
from sigma.engine.stats import compute_stats
from sigma.engine.trade_analytics import (
    analyse_trades,
    held_bars,
    monthly_returns,
    sqn,
)
from sigma.research.backtest import run_backtest
from sigma.strategies import load_strategies

D = Decimal
DAY0 = datetime(2024, 1, 1, tzinfo=UTC)


def bars() -> pd.DataFrame:
    """Four daily bars; the figures below are worked out from these by hand."""
    return pd.DataFrame(
        {
            "open": [100.0, 102.0, 108.0, 104.0],
            "high": [105.0, 110.0, 112.0, 106.0],
            "low": [95.0, 99.0, 101.0, 90.0],
            "close": [102.0, 108.0, 104.0, 95.0],
            "volume": [1.0, 2.0, 3.0, 4.0],
        },
        index=pd.date_range(DAY0, periods=4, freq="D", name="ts"),
    )


def trade(entry: int, exit_: int, qty: str, entry_price: str, exit_price: str) -> Trade:
    return Trade(
        symbol="X",
        qty=D(qty),
        entry_ts=DAY0 + timedelta(days=entry),
        entry_price=D(entry_price),
        exit_ts=DAY0 + timedelta(days=exit_),
        exit_price=D(exit_price),
        fees=D(0),
        pnl=D(qty) * (D(exit_price) - D(entry_price)),
        entry_bar=entry,
        exit_bar=exit_,
    )


def test_held_bars_follow_the_fill_timing() -> None:
    assert held_bars(0, 2, at_close=False, is_open=False) == (0, 2)
    assert held_bars(0, 2, at_close=True, is_open=False) == (1, 3)
    assert held_bars(2, 3, at_close=False, is_open=True) == (2, 4)
    assert held_bars(2, 3, at_close=True, is_open=True) == (3, 4)


def test_long_trade_filled_at_the_open() -> None:
    # Holds bars 0 and 1: highest high 110, lowest low 95, from an entry at 100.
    (row,) = analyse_trades([trade(0, 2, "1", "100", "108")], bars(), at_close=False)
    assert (row.mae_price, row.mfe_price) == (D(5), D(10))
    assert (row.mae_pct, row.mfe_pct) == (D(5), D(10))
    assert row.bars_held == 2 and not row.is_open
    assert row.duration == timedelta(days=2)
    assert row.return_pct == D(8)


def test_long_trade_filled_at_the_close() -> None:
    # Holds bars 1 and 2: highest high 112, lowest low 99.
    (row,) = analyse_trades([trade(0, 2, "1", "100", "104")], bars(), at_close=True)
    assert (row.mae_price, row.mfe_price) == (D(1), D(12))
    assert row.bars_held == 2


def test_short_trade_excursions_are_mirrored() -> None:
    # Short from 102 over bars 1 and 2: up to 112 against it, down to 99 for it.
    (row,) = analyse_trades([trade(1, 3, "-2", "102", "104")], bars(), at_close=False)
    assert (row.mae_price, row.mfe_price) == (D(10), D(3))
    assert row.mae_pct == D(1000) / D(102)
    assert row.mfe_pct == D(300) / D(102)
    assert row.return_pct == D(-400) / D(204)


def test_a_trade_within_one_bar_is_measured_by_its_fills() -> None:
    (row,) = analyse_trades([trade(1, 1, "1", "102", "101")], bars(), at_close=False)
    assert row.bars_held == 0
    assert (row.mae_price, row.mfe_price) == (D(1), D(0))


def test_the_open_trade_holds_through_the_last_bar() -> None:
    closed = trade(0, 2, "1", "100", "108")
    still = trade(2, 3, "1", "108", "95")
    rows = analyse_trades([closed], bars(), at_close=False, open_trade=still)
    assert [r.is_open for r in rows] == [False, True]
    # Bars 2 and 3: highest high 112, lowest low 90.
    assert (rows[1].mae_price, rows[1].mfe_price) == (D(18), D(4))
    assert rows[1].bars_held == 2


def test_zero_entry_price_has_no_percentages() -> None:
    (row,) = analyse_trades([trade(0, 1, "1", "0", "1")], bars(), at_close=False)
    assert row.return_pct is None and row.mae_pct is None and row.mfe_pct is None


def test_nan_bars_are_skipped() -> None:
    frame = bars()
    frame.loc[frame.index[1], ["high", "low"]] = np.nan
    (row,) = analyse_trades([trade(0, 2, "1", "100", "108")], frame, at_close=False)
    assert (row.mae_price, row.mfe_price) == (D(5), D(8))


def test_sqn() -> None:
    assert sqn([1.0, 2.0, 3.0]) == pytest.approx(math.sqrt(3) * 2 / 1)
    assert sqn([0.01, 0.02, 0.03]) == pytest.approx(sqn([1.0, 2.0, 3.0]))  # unit-free
    assert sqn([1.0]) is None and sqn([]) is None
    assert sqn([2.0, 2.0]) is None


def test_monthly_returns_compound_to_the_total() -> None:
    index = pd.DatetimeIndex(
        ["2023-12-31", "2024-01-30", "2024-01-31", "2024-02-15", "2024-03-31"], tz="UTC"
    )
    equity = pd.Series([105.0, 100.0, 110.0, 99.0, 118.8], index=index)
    months = monthly_returns(equity, 100.0)
    assert months["month"].tolist() == ["2023-12", "2024-01", "2024-02", "2024-03"]
    assert months["equity_end"].tolist() == [105.0, 110.0, 99.0, 118.8]
    np.testing.assert_allclose(
        months["return_pct"], [5.0, 100 * (110 / 105 - 1), -10.0, 20.0], rtol=1e-12
    )
    growth = np.prod(1 + months["return_pct"] / 100)
    assert growth == pytest.approx(1.188)


def test_monthly_returns_of_nothing_and_of_a_zero_base() -> None:
    assert monthly_returns(pd.Series([], dtype=float), 100.0).empty
    naive = pd.Series([5.0], index=pd.DatetimeIndex(["2024-05-02"]))
    months = monthly_returns(naive, 0.0)
    assert months["month"].tolist() == ["2024-05"] and math.isnan(months["return_pct"][0])


def test_summary_has_sqn_and_trade_durations() -> None:
    frame = bars()
    trades = [trade(0, 2, "1", "100", "101"), trade(1, 2, "1", "100", "102")]
    trades.append(trade(2, 3, "1", "100", "103"))
    s = compute_stats(
        pd.DatetimeIndex(frame.index),
        frame["close"].to_numpy(),
        np.array([100.0, 101.0, 102.0, 103.0]),
        np.ones(4, bool),
        trades,
        D(100),
        D(103),
        D(0),
    )
    assert s["sqn"] == pytest.approx(math.sqrt(3) * 2 / 1)  # returns 1, 2, 3 %
    assert s["avg_trade_duration"] == "1 days 08:00:00"
    assert s["max_trade_duration"] == "2 days 00:00:00"
    empty = compute_stats(
        pd.DatetimeIndex(frame.index),
        frame["close"].to_numpy(),
        np.full(4, 100.0),
        np.zeros(4, bool),
        [],
        D(100),
        D(100),
        D(0),
    )
    assert empty["sqn"] is None and empty["avg_trade_duration"] is None


def test_portfolio_open_trade_is_marked_net_of_entry_fees() -> None:
    book = Portfolio(cash=D(1000))
    assert book.open_trade("X", D(10), DAY0, 3) is None
    book.apply(Fill("c1", "X", Side.BUY, D(2), D(100), D("0.5"), DAY0, "s"), bar=1)
    marked = book.open_trade("X", D(110), DAY0 + timedelta(days=2), 3, "s")
    assert marked is not None
    assert (marked.qty, marked.entry_price, marked.exit_price) == (D(2), D(100), D(110))
    assert (marked.fees, marked.pnl) == (D("0.5"), D("19.5"))
    assert (marked.entry_bar, marked.exit_bar, marked.strategy) == (1, 3, "s")
    assert marked.entry_ts == DAY0 and book.qty("X") == D(2)  # the account is untouched


@pytest.mark.parametrize("timing", list(FillTiming))
def test_backtest_result_carries_open_trade_indicators_and_timing(timing: FillTiming) -> None:
    # Down, then up to the end: the moving-average cross buys late and still holds.
    close = np.concatenate((np.linspace(120, 100, 50), np.linspace(100.5, 130, 60))).round(2)
    frame = pd.DataFrame(
        {"open": close, "high": close + 0.5, "low": close - 0.5, "close": close, "volume": 1.0},
        index=pd.date_range("2024-01-01", periods=len(close), freq="h", tz="UTC", name="ts"),
    )
    strategy = load_strategies(entry_points_group=False).create("sma_cross", fast=3, slow=8)
    result, _ = run_backtest(strategy, frame, symbol="W", fill_model=FillModel(timing=timing))
    assert result.fill_timing is timing
    assert [name for name, _ in result.indicators] == ["fast_ma", "slow_ma"]
    assert all(len(values) == len(frame) for _, values in result.indicators)
    held = result.open_trade
    assert held is not None and held.qty == result.final_position > 0
    assert held.exit_price == D("130") and held.exit_ts == frame.index[-1]
    assert held.exit_bar == len(frame) - 1 and held.strategy == "sma_cross"
    assert held not in result.trades

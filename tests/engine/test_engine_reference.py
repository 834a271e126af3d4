"""The engine against an independent reference loop and against backtesting.py's published
README example (GOOG, SmaCross 10/20, cash 10,000, commission 0.2%)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from reference import reference_backtest

from sigma.engine.fill_model import FillModel
from sigma.research.backtest import run_backtest
from sigma.strategies import load_strategies

BT_DATA = Path(__import__("backtesting").__file__).parent / "test"


def _frame(csv: Path) -> pd.DataFrame:
    df = pd.read_csv(csv, index_col=0, parse_dates=True).rename(columns=str.lower)
    df.index = pd.DatetimeIndex(df.index, tz="UTC", name="ts")
    if "volume" not in df:
        df["volume"] = 0.0
    return df[["open", "high", "low", "close", "volume"]].astype(float)


def _random_walk(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = np.round(100 * np.exp(np.cumsum(rng.normal(0, 0.01, n))), 2)
    open_ = np.round(np.concatenate(([100.0], close[:-1])) * (1 + rng.normal(0, 0.002, n)), 2)
    high = np.maximum(open_, close) + np.round(rng.uniform(0, 0.5, n), 2)
    low = np.minimum(open_, close) - np.round(rng.uniform(0, 0.5, n), 2)
    idx = pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC", name="ts")
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": 1.0}, index=idx
    )


DATASETS = {
    "GOOG": lambda: _frame(BT_DATA / "GOOG.csv"),
    "BTCUSD": lambda: _frame(BT_DATA / "BTCUSD.csv"),
    "EURUSD": lambda: _frame(BT_DATA / "EURUSD.csv").iloc[:3000],
    "walk": lambda: _random_walk(3000, 7),
}
CASES = {
    "sma_cross": {"fast": 10, "slow": 20},
    "rsi_reversion": {"period": 14, "oversold": 30.0, "overbought": 70.0, "exit_level": 50.0},
    "bollinger_breakout": {"period": 20, "k": 2.0},
    "donchian_trend": {"entry": 20, "exit": 10},
}


@pytest.mark.parametrize("dataset", sorted(DATASETS))
@pytest.mark.parametrize("name", sorted(CASES))
def test_engine_matches_reference_loop(name: str, dataset: str) -> None:
    bars = DATASETS[dataset]()
    fee = Decimal("0.001")
    cash = Decimal(1_000_000) if dataset == "BTCUSD" else Decimal(10_000)
    strategy = load_strategies(entry_points_group=False).create(name, **CASES[name])
    result, engine = run_backtest(
        strategy,
        bars,
        symbol=dataset,
        initial_cash=cash,
        fill_model=FillModel(commission_pct=fee),
        record_ledger=True,
    )
    ref_trades, ref_equity = reference_backtest(name, bars, CASES[name], cash, fee)
    got = [(t.entry_bar, t.exit_bar, t.qty, t.pnl) for t in result.trades]
    assert got, "the dataset should exercise at least one round trip"
    assert got == ref_trades
    assert result.final_equity == ref_equity
    # Accounting invariant at every bar: equity = cash + position value, exactly.
    for row in engine.ledger:
        assert row.equity == row.cash + row.qty * row.price
    assert engine.ledger[-1].equity == result.final_equity
    # The float curve used for charts agrees with the exact ledger.
    exact = np.array([float(r.equity) for r in engine.ledger])
    np.testing.assert_allclose(result.equity.to_numpy(), exact, rtol=1e-12)
    # Fills sum to the order quantities and to the final position.
    filled = sum((f.signed_qty for f in result.fills), Decimal(0))
    assert filled == result.final_position
    for order in engine.orders:
        assert order.filled_qty == sum(
            (f.qty for f in result.fills if f.client_order_id == order.client_order_id),
            Decimal(0),
        )


def test_backtesting_py_readme_example_to_the_cent() -> None:
    """GOOG daily, SmaCross(10, 20), $10,000, 0.2% commission, exclusive orders: backtesting.py
    reports 93 closed trades and final equity $56,263.52 (one trade left open)."""
    from backtesting import Backtest
    from backtesting import Strategy as BtStrategy
    from backtesting.lib import crossover
    from backtesting.test import GOOG, SMA

    class BtSmaCross(BtStrategy):  # the README example, verbatim in substance
        def init(self) -> None:
            self.ma1 = self.I(SMA, self.data.Close, 10)
            self.ma2 = self.I(SMA, self.data.Close, 20)

        def next(self) -> None:
            if crossover(self.ma1, self.ma2):
                self.position.close()
                self.buy()
            elif crossover(self.ma2, self.ma1):
                self.position.close()
                self.sell()

    with pytest.warns(UserWarning):
        theirs = Backtest(GOOG, BtSmaCross, commission=0.002, exclusive_orders=True).run()
    strategy = load_strategies(entry_points_group=False).create("sma_cross", fast=10, slow=20)
    ours, _ = run_backtest(
        strategy,
        _frame(BT_DATA / "GOOG.csv"),
        symbol="GOOG",
        fill_model=FillModel(commission_pct=Decimal("0.002")),
    )
    assert theirs["# Trades"] == 93
    assert ours.stats["n_trades"] == theirs["# Trades"]
    assert ours.final_equity.quantize(Decimal("0.01")) == Decimal("56263.52")
    assert round(theirs["Equity Final [$]"], 2) == float(
        ours.final_equity.quantize(Decimal("0.01"))
    )
    their_trades = theirs["_trades"]
    assert [int(x) for x in their_trades["Size"]] == [int(t.qty) for t in ours.trades]
    assert [int(x) for x in their_trades["EntryBar"]] == [t.entry_bar for t in ours.trades]
    assert ours.stats["win_rate_pct"] == pytest.approx(theirs["Win Rate [%]"], abs=1e-9)
    assert ours.stats["max_drawdown_pct"] == pytest.approx(theirs["Max. Drawdown [%]"], abs=1e-6)

"""Statistics and the comparison/recommendation of strategies."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from sigma.engine.stats import compute_stats, drawdown
from sigma.research.backtest import run_backtest
from sigma.research.compare import compare_results
from sigma.strategies import load_strategies


def walk(n: int = 2000, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = np.round(100 * np.exp(np.cumsum(rng.normal(0.0002, 0.01, n))), 2)
    idx = pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC", name="ts")
    return pd.DataFrame(
        {"open": close, "high": close + 0.1, "low": close - 0.1, "close": close, "volume": 1.0},
        index=idx,
    )


def test_stats_on_a_known_curve() -> None:
    idx = pd.date_range("2024-01-01", periods=5, freq="1D", tz="UTC")
    equity = np.array([100.0, 110.0, 99.0, 121.0, 121.0])
    s = compute_stats(
        idx,
        np.array([1.0, 1, 1, 1, 2]),
        equity,
        np.array([0, 1, 1, 1, 0], bool),
        [],
        Decimal(100),
        Decimal(121),
        Decimal(0),
    )
    assert s["total_return_pct"] == pytest.approx(21.0)
    assert s["max_drawdown_pct"] == pytest.approx(-10.0)
    assert s["max_drawdown_duration"] == "2 days 00:00:00"
    assert s["exposure_pct"] == pytest.approx(60.0)
    assert s["buy_hold_return_pct"] == pytest.approx(100.0)
    assert s["n_trades"] == 0 and s["win_rate_pct"] is None and s["profit_factor"] is None
    np.testing.assert_allclose(drawdown(equity), [0, 0, -0.1, 0, 0])
    years = 4 / 365.25
    assert s["cagr_pct"] == pytest.approx(100 * (1.21 ** (1 / years) - 1))
    flat = compute_stats(
        idx,
        np.ones(5),
        np.full(5, 100.0),
        np.zeros(5, bool),
        [],
        Decimal(100),
        Decimal(100),
        Decimal(0),
    )
    assert flat["sharpe"] is None and flat["max_drawdown_duration"] == "0 days 00:00:00"


def test_stats_of_a_short_run_with_a_large_return_have_no_cagr() -> None:
    idx = pd.date_range("2024-01-01", periods=150, freq="1min", tz="UTC")
    equity = np.linspace(100.0, 130.0, 150)
    s = compute_stats(
        idx,
        equity,
        equity,
        np.ones(150, bool),
        [],
        Decimal(100),
        Decimal(130),
        Decimal(0),
    )
    assert s["cagr_pct"] is None and s["calmar"] is None
    assert s["total_return_pct"] == pytest.approx(30.0)


def test_backtest_stats_are_consistent_with_trades() -> None:
    reg = load_strategies(entry_points_group=False)
    res, _ = run_backtest(reg.create("sma_cross", fast=5, slow=20), walk(), symbol="W")
    s = res.stats
    wins = sum(1 for t in res.trades if t.pnl > 0)
    assert s["n_trades"] == len(res.trades) > 10
    assert s["win_rate_pct"] == pytest.approx(100 * wins / len(res.trades))
    assert s["expectancy"] == sum(t.pnl for t in res.trades) / len(res.trades)
    assert s["equity_final"] == res.final_equity
    assert s["best_trade_pct"] >= s["avg_trade_pct"] >= s["worst_trade_pct"]


def test_compare_ranks_by_sharpe_and_explains() -> None:
    reg = load_strategies(entry_points_group=False)
    bars = walk()
    results = [
        run_backtest(reg.create(n), bars, symbol="W")[0]
        for n in ("sma_cross", "rsi_reversion", "donchian_trend")
    ]
    cmp = compare_results(results)
    scores = [score for _, score in cmp.ranking]
    assert scores == sorted(scores, reverse=True)
    best = cmp.ranking[0][0]
    assert cmp.recommendation.startswith(f"Use {best}: best risk-adjusted return")
    assert "next is" in cmp.recommendation
    with pytest.raises(ValueError, match="nothing to compare"):
        compare_results([])


def test_compare_without_enough_trades_recommends_nothing() -> None:
    reg = load_strategies(entry_points_group=False)
    res, _ = run_backtest(reg.create("sma_cross", fast=50, slow=1900), walk(), symbol="W")
    cmp = compare_results([res])
    assert cmp.recommendation.startswith("No recommendation")

"""Hand-built BacktestResults for the report tests (imported by the test modules)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import numpy as np
import pandas as pd

from sigma.domain import Trade
from sigma.engine.result import BacktestResult

MALICIOUS = "<script>alert(1)</script>"


def make_bars(n: int, *, start: str = "2024-01-01", freq: str = "h") -> pd.DataFrame:
    """A deterministic random-walk OHLCV frame with a UTC `ts` index."""
    rng = np.random.default_rng(7)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    index = pd.date_range(start, periods=n, freq=freq, tz="UTC", name="ts")
    return pd.DataFrame(
        {
            "open": close,
            "high": close * 1.001,
            "low": close * 0.999,
            "close": close,
            "volume": np.full(n, 10.0),
        },
        index=index,
    )


def make_trade(bars: pd.DataFrame, entry: int, exit_: int, qty: str, pnl: str) -> Trade:
    """A round trip between two bar positions with exact Decimal fields."""
    return Trade(
        symbol="BTC/USDT",
        qty=Decimal(qty),
        entry_ts=bars.index[entry].to_pydatetime(),
        entry_price=Decimal(str(round(float(bars["close"].iloc[entry]), 2))),
        exit_ts=bars.index[exit_].to_pydatetime(),
        exit_price=Decimal(str(round(float(bars["close"].iloc[exit_]), 2))),
        fees=Decimal("0.123456789012345678"),
        pnl=Decimal(pnl),
        entry_bar=entry,
        exit_bar=exit_,
        strategy="sma_cross",
    )


def make_result(
    bars: pd.DataFrame, trades: list[Trade], *, strategy: str = "sma_cross"
) -> BacktestResult:
    """A result whose equity drifts with the close (enough for charts and exports)."""
    equity = pd.Series(10_000.0 * bars["close"].to_numpy() / 100.0, index=bars.index)
    return BacktestResult(
        strategy=strategy,
        symbol="BTC/USDT",
        params={"fast": 10, "slow": 30, "note": "a < b & c", "ratio": Decimal("0.50")},
        initial_cash=Decimal("10000"),
        final_equity=Decimal("10123.450000000000000001"),
        final_cash=Decimal("10123.45"),
        final_position=Decimal("0"),
        equity=equity,
        trades=trades,
        fills=[],
        bars=bars,
        stats={
            "total_return_pct": 1.2345,
            "max_drawdown_pct": -3.5,
            "sharpe": 1.23456,
            "trades": len(trades),
            "win_rate_pct": Decimal("50.0"),
            "profit_factor": float("nan"),
            "best_trade": Decimal("12.345678901234567890"),
            "exposure_time": timedelta(days=3, hours=4, minutes=5, seconds=6),
            "note": "ok",
            "missing": None,
        },
    )


def small_result(strategy: str = "sma_cross") -> BacktestResult:
    """48 hourly bars, one long winner and one short loser."""
    bars = make_bars(48)
    trades = [
        make_trade(bars, 2, 10, "0.5", "12.345678901234567890"),
        make_trade(bars, 20, 30, "-1.25", "-3.10"),
    ]
    return make_result(bars, trades, strategy=strategy)

"""Saving and reading backtest results."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sigma.domain import Trade
from sigma.engine.result import BacktestResult
from sigma.research.backtest import run_backtest
from sigma.store import backtests, get_backtest, list_backtests, save_backtest
from sigma.store.models import BtSummary, BtTrade
from sigma.strategies.builtin import SmaCross

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _bars(n: int = 400, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = np.round(100 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n))), 2)
    idx = pd.date_range(T0, periods=n, freq="1h", tz="UTC", name="ts")
    return pd.DataFrame(
        {"open": close, "high": close + 0.1, "low": close - 0.1, "close": close, "volume": 1.0},
        index=idx,
    )


def _result(strategy: str = "hand", symbol: str = "X", **stats: object) -> BacktestResult:
    bars = _bars(5)
    trade = Trade(
        symbol=symbol,
        qty=Decimal("-1.5"),
        entry_ts=T0,
        entry_price=Decimal("100.1234567891"),
        exit_ts=T0 + timedelta(hours=3),
        exit_price=Decimal("99.5"),
        fees=Decimal("0.2"),
        pnl=Decimal("0.7351851836"),
        entry_bar=0,
        exit_bar=3,
        strategy=strategy,
    )
    return BacktestResult(
        strategy=strategy,
        symbol=symbol,
        params={"fast": 5, "threshold": Decimal("0.25")},
        initial_cash=Decimal("10000"),
        final_equity=Decimal("10000.7351851836"),
        final_cash=Decimal("10000.7351851836"),
        final_position=Decimal(0),
        equity=pd.Series(10000.0, index=bars.index),
        trades=[trade],
        fills=[],
        bars=bars,
        stats={"sharpe": float("nan"), "total_fees": Decimal("0.2"), "n_trades": 1} | stats,
    )


def test_save_and_get_round_trip(session: Session) -> None:
    result = _result(cagr_pct=None, duration="0 days 04:00:00")
    new_id = save_backtest(session, result, report_path="var/reports/x.html", run_id="r1")
    session.commit()
    session.expunge_all()

    stored = get_backtest(session, new_id)
    assert stored is not None
    rec = stored.record
    assert (rec.id, rec.run_id, rec.strategy, rec.symbol) == (new_id, "r1", "hand", "X")
    assert rec.start == result.start and rec.end == result.end and rec.start.tzinfo is UTC
    assert rec.initial_cash == Decimal("10000")
    assert rec.final_equity == Decimal("10000.7351851836")
    assert rec.params == {"fast": 5, "threshold": "0.25"}
    assert rec.stats == {
        "sharpe": None,
        "total_fees": "0.2",
        "n_trades": 1,
        "cagr_pct": None,
        "duration": "0 days 04:00:00",
    }
    assert rec.report_path == "var/reports/x.html"
    assert rec.created_at.tzinfo is UTC
    assert stored.trades == result.trades


def test_get_unknown_backtest_is_none(session: Session) -> None:
    assert get_backtest(session, 12345) is None


def test_list_backtests_newest_first_and_filtered(session: Session) -> None:
    ids = [
        save_backtest(session, _result("a", "X")),
        save_backtest(session, _result("b", "X")),
        save_backtest(session, _result("a", "Y")),
    ]
    session.commit()
    assert [r.id for r in list_backtests(session)] == ids[::-1]
    assert [r.id for r in list_backtests(session, strategy="a")] == [ids[2], ids[0]]
    assert [r.id for r in list_backtests(session, strategy="a", symbol="X")] == [ids[0]]
    assert [r.id for r in list_backtests(session, limit=1)] == [ids[2]]
    assert list_backtests(session, symbol="none") == []


def test_real_engine_result_is_stored_json_safe(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backtests, "TRADE_BATCH", 3)  # several bulk inserts, in order
    result, _ = run_backtest(SmaCross(fast=5, slow=20), _bars(), symbol="W")
    assert len(result.trades) > 3, "the fixture should trade more than a batch"
    new_id = save_backtest(session, result)
    session.commit()
    session.expunge_all()
    stored = get_backtest(session, new_id)
    assert stored is not None
    assert stored.trades == result.trades
    assert stored.record.final_equity == result.final_equity
    assert stored.record.stats["equity_final"] == str(result.final_equity)
    assert stored.record.stats["n_trades"] == len(result.trades)
    json.dumps(stored.record.stats, allow_nan=False)


def test_deleting_a_summary_deletes_its_trades(session: Session) -> None:
    new_id = save_backtest(session, _result())
    session.commit()
    session.delete(session.get_one(BtSummary, new_id))
    session.commit()
    assert session.scalar(select(func.count()).select_from(BtTrade)) == 0

"""The `ml_tune` job on the bars the recorder keeps: per symbol, the gate model is trained on
the recorded bars of the live bar size and validated with the live strategies at their active
parameters; a symbol with too few bars, or nothing to learn, is skipped with a clear
message."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
from scheduler_helpers import FakeClock, alerts
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from sigma.config import load_settings
from sigma.research.ml_tune import TuneConfig, list_versions, load_active, train
from sigma.research.ml_validate import compare_gate
from sigma.research.select import recent_bars
from sigma.scheduler.jobs import JobRuntime
from sigma.scheduler.tasks import Alerter
from sigma.store.bars import upsert_bars
from sigma.store.db import session_scope
from sigma.store.params import set_params
from sigma.strategies import load_strategies
from sigma.strategies.builtin import RsiReversion, SmaCross
from tests.research.ml_helpers import trending_bars

FAST = TuneConfig(n_estimators=20)


def test_ml_tune_on_recorded_bars(
    db_url: str,
    engine: Engine,
    sessions: sessionmaker[Session],
    alerter: Alerter,
    clock: FakeClock,
    tmp_path: Path,
) -> None:
    settings = load_settings(
        database_url=db_url,
        var_dir=tmp_path / "var",
        symbols=["BTC", "ETH", "SOL"],
        live_strategies=["sma_cross", "rsi_reversion"],
        research_lookback_bars=600,
        report_pdf=False,
    )
    bars = trending_bars(700, freq="1min")
    bars.index = bars.index - bars.index[-1] + (clock.now - timedelta(minutes=1))
    with session_scope(sessions) as session:
        upsert_bars(session, "BTC", "1m", bars)
        upsert_bars(session, "ETH", "1m", bars.iloc[:100])
        # A market that never moved: nothing to learn, and the other symbols are still tuned.
        upsert_bars(session, "SOL", "1m", bars.iloc[:400].assign(open=5.0, high=5, low=5, close=5))
        set_params(session, "sma_cross", "BTC", {"fast": 5, "slow": 30}, "test", "ops")
    runtime = JobRuntime(settings, engine, sessions, load_strategies([]), alerter)
    runtime.ml_config = FAST
    manager = runtime.task_manager(clock)

    record = manager.run("ml_tune")

    assert record.outcome == "success", record.error
    assert record.result["ETH"] == "skipped: 100 recorded 1m bars, 300 needed"
    assert record.result["SOL"].startswith("not trained: ")
    with sessions() as session:
        (row,) = list_versions(session)
        recorded = recent_bars(session, "BTC", "1m", 600, clock.now)
    assert record.result["BTC"] == {"version": row.version, "active": row.active}
    # The newest `research_lookback_bars` recorded bars, the live strategies at their
    # active parameters: the same figures as validating by hand on those bars.
    assert list(recorded.index) == list(bars.index[-600:])
    result = train(recorded, FAST)
    assert result.metrics == {k: v for k, v in row.metrics.items() if k != "gate"}
    test = recorded.loc[recorded.index >= pd.Timestamp(result.metrics["test_start"])]
    expected = compare_gate(
        result.model,
        test,
        [lambda: SmaCross(fast=5, slow=30), RsiReversion],
        symbol="BTC",
        initial_cash=settings.trading.initial_cash,
        fill_model=runtime.fill_model,
    )
    assert row.metrics["gate"] == expected.as_json()
    assert row.active == (result.beats_baseline and expected.wins)
    with sessions() as session:
        active = load_active(session, "BTC")
    assert (active is not None) == row.active
    (sent,) = [a for a in alerts(sessions) if a.source == "ml_tune"]
    assert f"BTC model v{row.version}" in sent.message and "gated" in sent.message

"""The scheduled research runs on the bars the recorder keeps: the `bars` rows of the live bar
size (1-minute by default), and it chooses exactly as the same selection on the same bars
loaded from a file."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from scheduler_helpers import FakeClock
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from sigma.config import load_settings
from sigma.feeds.loaders import load_bars
from sigma.feeds.synthetic import generate_bars
from sigma.feeds.writers import write_csv
from sigma.research.select import select_for_symbol
from sigma.scheduler.jobs import JobRuntime
from sigma.scheduler.tasks import Alerter
from sigma.store.bars import upsert_bars
from sigma.store.db import session_scope
from sigma.store.models import TrendData
from sigma.store.params import get_active_params
from sigma.strategies import load_strategies

BARS = 400


def test_selection_on_recorded_bars_chooses_as_on_the_same_bars_from_a_file(
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
        symbols=["BTC"],
        live_strategies=["sma_cross", "rsi_reversion"],
        research_lookback_bars=BARS,
        optimize_trials=3,
        optimize_workers=1,
        report_pdf=False,
    )
    assert settings.research_bars_timeframe == "1m"  # the live strategies' bar size
    bars, _ = generate_bars(BARS, seed=3, freq="1min", start=clock.now - timedelta(minutes=BARS))
    # What the recorder keeps: the live bar size's rows; hourly rows must not be read.
    with session_scope(sessions) as session:
        upsert_bars(session, "BTC", "1m", bars)
        upsert_bars(session, "BTC", "1h", bars.iloc[:5])
    runtime = JobRuntime(settings, engine, sessions, load_strategies([]), alerter)
    manager = runtime.task_manager(clock)

    recorded = manager.run("strategy_selection")
    assert recorded.outcome == "success", recorded.error

    from_file = load_bars(str(write_csv(bars, tmp_path / "bars.csv")))
    candidates = [runtime.strategies.get(name) for name in settings.trading.live_strategies]
    with session_scope(sessions) as session:
        expected = select_for_symbol(
            session,
            "FILE",
            from_file,
            candidates,
            now=clock.now,
            n_trials=settings.research.optimize_trials,
            initial_cash=settings.trading.initial_cash,
            fill_model=runtime.fill_model,
            workers=1,
        )
    assert recorded.result == {"BTC": expected.strategy}
    assert expected.strategy is not None  # a winner, so the parameters are compared too
    with sessions() as session:
        assert get_active_params(session, expected.strategy, "BTC") == expected.params
    assert manager.run("trend_scan").result == 1
    with sessions() as session:
        assert session.scalar(select(TrendData.timeframe)) == "1m"

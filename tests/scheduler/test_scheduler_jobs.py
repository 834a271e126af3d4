"""The jobs end to end on the real database (and real Redis/RabbitMQ for health), run through
the TaskManager with a hand-moved clock: selection writes parameters and triggers the daily
summary, ML tuning versions and validates a model, trends, retention, health, reports, logs,
config sync and user checks."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from apscheduler.triggers.cron import CronTrigger
from scheduler_helpers import FakeClock, alerts
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from sigma.bootstrap import App
from sigma.config import load_settings
from sigma.feeds.synthetic import generate_bars
from sigma.ops.metrics import Metrics
from sigma.research import select as select_module
from sigma.research.ml_tune import TuneConfig
from sigma.runtime.wiring import job_runtime
from sigma.scheduler.jobs import JobRuntime, start_scheduler
from sigma.scheduler.tasks import Alerter, TaskManager
from sigma.store import heartbeats
from sigma.store.bars import upsert_bars
from sigma.store.db import session_scope
from sigma.store.models import (
    ActionLog,
    BarRecord,
    IdempotencyRecord,
    MLModel,
    NewsRecord,
    PerformanceReport,
    StrategyParam,
    StrategyParamHistory,
    TickRecord,
    TrendData,
    User,
)
from sigma.store.params import set_params
from sigma.strategies import load_strategies


@pytest.fixture
def runtime(
    db_url: str,
    engine: Engine,
    sessions: sessionmaker[Session],
    alerter: Alerter,
    tmp_path: Path,
    redis_url: str,
    amqp_url: str,
) -> JobRuntime:
    settings = load_settings(
        database_url=db_url,
        var_dir=tmp_path / "var",
        symbols=["BTC", "ETH"],
        live_strategies=["sma_cross"],
        research_lookback_bars=600,
        # Hourly live bars: the research jobs read the recorded bars of the live bar size.
        bar_seconds=3600,
        optimize_trials=3,
        redis_url=redis_url,
        amqp_url=amqp_url,
        log_max_bytes=1024,
    )
    bars, _ = generate_bars(600, seed=5, freq="1h", start="2026-02-05")
    with session_scope(sessions) as session:
        upsert_bars(session, "BTC", "1h", bars)
    runtime = JobRuntime(settings, engine, sessions, load_strategies([]), alerter, Metrics())
    runtime.ml_config = TuneConfig(n_estimators=20)
    return runtime


@pytest.fixture
def manager(runtime: JobRuntime, clock: FakeClock) -> TaskManager:
    return runtime.task_manager(clock)


def _count(sessions: sessionmaker[Session], model: type) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_selection_writes_params_and_triggers_the_daily_summary(
    manager: TaskManager, sessions: sessionmaker[Session], runtime: JobRuntime
) -> None:
    record = manager.run("strategy_selection")
    assert record.outcome == "success", record.error
    assert record.result["ETH"] == "skipped: 0 bars"
    assert record.result["BTC"] in ("sma_cross", None)
    with sessions() as session:
        kinds = set(session.scalars(select(PerformanceReport.kind)))
        who = set(session.scalars(select(StrategyParamHistory.changed_by)))
    assert {"selection", "daily"} <= kinds
    if record.result["BTC"] == "sma_cross":
        assert who == {"strategy_selector"}
    assert [r.outcome for r in manager.history("daily_summary")] == ["success"]
    assert (runtime.var_dir / "reports" / "performance" / "daily-2026-03-02.html").is_file()
    # The running instance picks the new parameters up.
    assert manager.run("config_sync").result == (1 if record.result["BTC"] else 0)


def test_selection_leaves_the_write_lock_free_during_its_search(
    manager: TaskManager, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite a transaction holds the write lock: the bot and the worker must be able to
    write while the walk-forward searches (minutes in production)."""
    search = select_module.walk_forward
    others_could_write: list[bool] = []

    def watched(*args: object, **kwargs: object) -> object:
        if engine.dialect.name == "sqlite":
            other = sqlite3.connect(str(engine.url.database), timeout=0, isolation_level=None)
            try:
                other.execute("BEGIN IMMEDIATE")  # "database is locked" at once if held
                other.rollback()
                others_could_write.append(True)
            finally:
                other.close()
        return search(*args, **kwargs)

    monkeypatch.setattr(select_module, "walk_forward", watched)
    assert manager.run("strategy_selection").outcome == "success"
    assert others_could_write == ([True] if engine.dialect.name == "sqlite" else [])


def test_trend_scan_and_retention(
    manager: TaskManager, sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    assert manager.run("trend_scan").result == 1
    assert _count(sessions, TrendData) == 1
    with session_scope(sessions) as session:
        session.add(TickRecord(symbol="BTC", ts=clock.now - timedelta(days=31), price=Decimal(1)))
        session.add(TickRecord(symbol="BTC", ts=clock.now - timedelta(days=29), price=Decimal(1)))
        for key, left in [("expired-1", -1), ("current-1", 1)]:
            session.add(
                IdempotencyRecord(
                    username="trader",
                    key=key,
                    fingerprint="f",
                    expires_at=clock.now + timedelta(minutes=left),
                )
            )
    record = manager.run("prune_data")
    assert (record.result["ticks"], record.result["idempotency_keys"]) == (1, 1)
    assert _count(sessions, TickRecord) == 1
    assert _count(sessions, IdempotencyRecord) == 1


def test_stored_trend_notes_carry_the_recent_news(
    manager: TaskManager, sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    with sessions() as session:
        last = session.scalar(select(func.max(BarRecord.ts)))
    assert last is not None
    clock.now = last + timedelta(minutes=30)  # the newest bar closed half an hour ago
    with session_scope(sessions) as session:
        # Taken in by the bot's feed poller (another process, perhaps): the job reads it back.
        session.add(
            NewsRecord(key="k1", ts=last - timedelta(minutes=20), headline="BTC exchange hacked")
        )
    assert manager.run("trend_scan").result == 1
    with sessions() as session:
        (reading,) = session.scalars(select(TrendData)).all()
    assert "News (negative" in reading.data["commentary"]
    assert "BTC exchange hacked" in reading.data["commentary"]


def test_health_reports_and_housekeeping(
    manager: TaskManager, sessions: sessionmaker[Session], runtime: JobRuntime, clock: FakeClock
) -> None:
    health = manager.run("health_check").result
    assert health == {
        "database": True,
        "feed": None,
        "worker": True,
        "disk": True,
        "memory": True,
        "heartbeat": None,
        "redis": True,
        "rabbitmq": True,
    }
    # An order worker (of any process) beats into the database; silence is noticed.
    with session_scope(sessions) as session:
        heartbeats.beat(session, "worker-1", now=clock.now)
    assert manager.run("health_check").result["heartbeat"] is True
    clock.advance(seconds=runtime.settings.scheduler.worker_stale_seconds + 1)
    assert manager.run("health_check").result["heartbeat"] is False
    weekly = manager.run("weekly_report")
    assert weekly.outcome == "success" and Path(weekly.result["html"]).is_file()
    assert Path(weekly.result["pdf"]).read_bytes().startswith(b"%PDF-")
    assert any(a.source == "weekly_report" for a in alerts(sessions))
    logs = runtime.var_dir / "logs"
    logs.mkdir()
    (logs / "sigma.log").write_text("x" * 2000)
    assert manager.run("log_rotation").result == 1
    with session_scope(sessions) as session:
        session.add(
            User(username="idle", password_hash="x", created_at=clock.now - timedelta(days=400))
        )
    assert manager.run("user_check").result["deactivated"] == ["idle"]
    assert manager.run("user_check").result == {"deactivated": [], "changes": []}
    assert any(a.source == "user_check" and "idle" in a.message for a in alerts(sessions))


def _state(sessions: sessionmaker[Session]) -> dict[str, object]:
    # What the jobs write, besides their own job_runs rows and the alerts they send.
    with sessions() as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model))
            for model in (
                ActionLog,
                MLModel,
                PerformanceReport,
                StrategyParam,
                StrategyParamHistory,
                TickRecord,
                TrendData,
                User,
            )
        } | {
            "active users": sorted(session.scalars(select(User.username).where(User.active))),
            "params": sorted(
                (p.strategy, p.symbol, p.version) for p in session.scalars(select(StrategyParam))
            ),
            "models": sorted(
                (m.symbol, m.version, m.active) for m in session.scalars(select(MLModel))
            ),
        }


def test_every_job_run_twice_leaves_the_state_of_one_run(
    manager: TaskManager, sessions: sessionmaker[Session], runtime: JobRuntime, clock: FakeClock
) -> None:
    # Something for every job to do: old ticks, an idle user, a large log.
    with session_scope(sessions) as session:
        session.add(TickRecord(symbol="BTC", ts=clock.now - timedelta(days=40), price=Decimal(1)))
        session.add(
            User(username="idle", password_hash="x", created_at=clock.now - timedelta(days=400))
        )
    logs = runtime.var_dir / "logs"
    logs.mkdir()
    (logs / "sigma.log").write_text("x" * 2000)
    for job_id in manager.specs:
        first = manager.run(job_id)
        assert first.outcome == "success", (job_id, first.error)
        after_one = _state(sessions)
        again = manager.run(job_id)
        assert again.outcome == "success", (job_id, again.error)
        assert _state(sessions) == after_one, job_id
    assert _state(sessions)["active users"] == []
    assert len(list(logs.glob("sigma.log.*.gz"))) == 1


def test_job_list_and_schedules(runtime: JobRuntime) -> None:
    assert runtime.fill_model.commission_pct == runtime.settings.trading.commission_pct
    specs = {spec.id: spec for spec in runtime.job_specs()}
    assert set(specs) == {
        "strategy_selection",
        "ml_tune",
        "prune_data",
        "health_check",
        "trend_scan",
        "weekly_report",
        "daily_summary",
        "log_rotation",
        "config_sync",
        "user_check",
    }
    selection = specs["strategy_selection"].trigger
    assert isinstance(selection, CronTrigger)
    assert "hour='3', minute='0'" in str(selection)
    assert specs["strategy_selection"].then == ("daily_summary",)
    # Daily, after the selection whose parameters its validation backtests.
    assert "hour='3', minute='30'" in str(specs["ml_tune"].trigger)
    # The time is the operator's, in the operator's time zone.
    moved = runtime.settings.with_values(
        {"selection_cron": "30 4 * * *", "scheduler_timezone": "America/New_York"}
    )
    [local] = [j.trigger for j in replace(runtime, settings=moved).job_specs() if j.then]
    assert isinstance(local, CronTrigger) and "hour='4', minute='30'" in str(local)
    first = local.get_next_fire_time(None, datetime(2026, 7, 1, tzinfo=UTC))
    assert first == datetime(2026, 7, 1, 8, 30, tzinfo=UTC)  # 04:30 EDT


def test_runtime_from_app(db_url: str, tmp_path: Path, clock: FakeClock) -> None:
    app = App(load_settings(database_url=db_url, var_dir=tmp_path, redis_url=None, amqp_url=None))
    runtime = job_runtime(app)
    try:
        names = [check(clock.now).name for check in runtime.health_checks()]
        assert names == ["database", "feed", "worker", "disk", "memory", "heartbeat"]
    finally:
        runtime.alerter.close()
        app.close()


def test_start_scheduler_for_an_app(db_url: str, tmp_path: Path) -> None:
    app = App(load_settings(database_url=db_url, var_dir=tmp_path, redis_url=None, amqp_url=None))
    applied: list[tuple[str, str]] = []
    runtime = job_runtime(app, apply_params=lambda st, sy, _p, _v: applied.append((st, sy)))
    service = start_scheduler(runtime)
    try:
        assert len(service.list_jobs()) == 10
        with session_scope(app.sessions) as session:
            set_params(session, "sma_cross", "BTC", {"fast": 5}, "test", "ops")
        service.scheduler.pause()
        assert service.manager.run("config_sync").result == 1
        assert applied == [("sma_cross", "BTC")]
    finally:
        service.shutdown()
        app.close()

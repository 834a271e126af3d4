"""The feed health check and the pruning job on what the recorder writes (SQLite and
PostgreSQL): the last tick time per symbol, ticks and bars deleted by age."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from scheduler_helpers import FakeClock
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from sigma.config import load_settings
from sigma.domain import Tick
from sigma.ops.metrics import Metrics
from sigma.scheduler.health import check_feed
from sigma.scheduler.jobs import JobRuntime
from sigma.scheduler.tasks import Alerter
from sigma.store.models import BarRecord, TickRecord
from sigma.store.recorder import MarketRecorder
from sigma.strategies import load_strategies

MINUTE = timedelta(minutes=1)


def record(engine: Engine, ticks: list[Tick]) -> None:
    recorder = MarketRecorder(engine, (MINUTE,))
    recorder.start()
    for tick in ticks:
        recorder.record(tick)
    assert recorder.close() == 0


def runtime(
    db_url: str, engine: Engine, sessions: sessionmaker[Session], alerter: Alerter, var: Path
) -> JobRuntime:
    settings = load_settings(
        database_url=db_url,
        var_dir=var,
        symbols=["BTC", "ETH"],
        tick_retention_days=30,
        bar_retention_days=60,
    )
    return JobRuntime(settings, engine, sessions, load_strategies([]), alerter, Metrics())


def test_the_feed_check_reads_the_last_recorded_tick_of_each_symbol(
    engine: Engine, clock: FakeClock
) -> None:
    now = clock.now
    check = check_feed(engine, timedelta(seconds=30), ["BTC", "ETH"])
    assert check(now).ok is None
    record(engine, [Tick("BTC", now - timedelta(seconds=s), Decimal(1)) for s in (50, 10)])
    # ETH never delivered while BTC did: its feed is broken.
    assert (check(now).ok, check(now).detail) == (False, "stale: ETH no ticks")
    record(engine, [Tick("ETH", now - timedelta(seconds=20), Decimal(2))])
    result = check(now)
    assert (result.ok, result.detail) == (True, "last tick: BTC 10s ago, ETH 20s ago")
    late = check(now + timedelta(seconds=15))
    assert (late.ok, late.detail) == (False, "stale: ETH 35s ago")  # BTC's 25 s is fine
    # Without symbols: the newest tick of all.
    assert check_feed(engine, timedelta(seconds=30))(now).detail == "last tick 10s ago"


def test_pruning_deletes_recorded_ticks_and_bars_by_age(
    db_url: str,
    engine: Engine,
    sessions: sessionmaker[Session],
    alerter: Alerter,
    clock: FakeClock,
    tmp_path: Path,
) -> None:
    jobs = runtime(db_url, engine, sessions, alerter, tmp_path / "var")
    assert any(c.__qualname__.startswith("check_feed") for c in jobs.health_checks())
    now = clock.now
    # A 1-minute bar 90, 45 and 1 day old (two ticks each), closed by a tick now.
    minute = now.replace(second=0, microsecond=0)
    old = [minute - timedelta(days=d, seconds=-s) for d in (90, 45, 1) for s in (0, 30)]
    record(engine, [Tick("BTC", ts, Decimal(1)) for ts in [*old, now]])
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(BarRecord)) == 3
    result = jobs.task_manager(clock).run("prune_data")
    assert result.outcome == "success", result.error
    assert (result.result["ticks"], result.result["bars"]) == (4, 1)
    with sessions() as s:
        oldest_tick = s.scalar(select(func.min(TickRecord.ts)))
        bars = s.scalar(select(func.count()).select_from(BarRecord))
    assert oldest_tick is not None and now - oldest_tick < timedelta(days=2)
    assert bars == 2  # 45 days is within the 60 days bars are kept

"""SchedulerService: the schedule lives in the database and survives a restart (paused jobs
stay paused), triggers are reconciled, and a restart after downtime runs a missed job once
(coalesced) or skips it when it is too late - no stampede."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.events import EVENT_JOB_MISSED
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine, inspect
from sqlalchemy.orm import Session, sessionmaker

from sigma.scheduler import service as service_module
from sigma.scheduler.service import SchedulerService, run_job
from sigma.scheduler.tasks import JobContext, JobSpec, TaskManager
from sigma.store.db import create_db_engine

NIGHTLY = CronTrigger.from_crontab("0 3 * * *", timezone="Asia/Seoul")


def _manager(sessions: sessionmaker[Session], ran: threading.Event | None = None) -> TaskManager:
    manager = TaskManager(sessions)

    def hourly(_ctx: JobContext) -> None:
        if ran is not None:
            ran.set()

    manager.register(JobSpec("hourly", hourly, IntervalTrigger(hours=1, timezone="UTC"), "hourly"))
    manager.register(JobSpec("nightly", lambda _ctx: None, NIGHTLY, "03:00 Seoul"))
    return manager


@pytest.fixture
def services() -> Iterator[list[SchedulerService]]:
    started: list[SchedulerService] = []
    yield started
    for svc in started:
        svc.shutdown(wait=False)


def _open(
    db_url: str, manager: TaskManager, services: list[SchedulerService], **kwargs: object
) -> tuple[SchedulerService, Engine]:
    # A new engine per "process", as after a restart.
    engine = create_db_engine(db_url)
    svc = SchedulerService(engine, manager, **kwargs)  # type: ignore[arg-type]
    services.append(svc)
    return svc, engine


def test_schedule_and_pause_survive_a_restart(
    db_url: str, sessions: sessionmaker[Session], services: list[SchedulerService]
) -> None:
    first, engine = _open(db_url, _manager(sessions), services)
    first.start(paused=True)
    first.sync(first.manager.specs.values())
    assert "apscheduler_jobs" in inspect(engine).get_table_names()
    jobs = {j.id: j for j in first.list_jobs()}
    assert set(jobs) == {"hourly", "nightly"}
    nightly = jobs["nightly"].next_run
    assert nightly is not None and (nightly.hour, nightly.minute) == (3, 0)
    assert nightly.utcoffset() == timedelta(hours=9)
    first.pause("hourly")
    first.shutdown()

    second, _ = _open(db_url, _manager(sessions), services)
    second.start(paused=True)
    second.sync(second.manager.specs.values())
    jobs = {j.id: j for j in second.list_jobs()}
    assert jobs["hourly"].paused
    assert jobs["nightly"].next_run == nightly
    second.resume("hourly")
    assert not {j.id: j for j in second.list_jobs()}["hourly"].paused
    with pytest.raises(KeyError, match="no scheduled job"):
        second.pause("missing")


def test_sync_updates_triggers_and_drops_unknown_jobs(
    db_url: str, sessions: sessionmaker[Session], services: list[SchedulerService]
) -> None:
    svc, _ = _open(db_url, _manager(sessions), services)
    svc.start(paused=True)
    svc.sync(svc.manager.specs.values())
    svc.pause("nightly")
    before = {j.id: j.next_run for j in svc.list_jobs()}
    # An equal interval trigger built later (another start date) is not a change.
    later = IntervalTrigger(hours=1, start_date=datetime(2030, 1, 1), timezone="UTC")
    svc.sync([JobSpec("hourly", lambda _ctx: None, later), JobSpec("nightly", print, NIGHTLY)])
    assert {j.id: j.next_run for j in svc.list_jobs()}["hourly"] == before["hourly"]
    changed = [
        JobSpec("hourly", lambda _ctx: None, IntervalTrigger(minutes=5)),
        JobSpec("nightly", lambda _ctx: None, CronTrigger.from_crontab("0 4 * * *")),
    ]
    svc.sync(changed)
    jobs = {j.id: j for j in svc.list_jobs()}
    assert "0:05:00" in jobs["hourly"].trigger
    assert jobs["nightly"].paused and "hour='4'" in jobs["nightly"].trigger
    svc.sync(changed[:1])
    assert [j.id for j in svc.list_jobs()] == ["hourly"]


def test_trigger_moves_the_next_run_to_now(
    db_url: str, sessions: sessionmaker[Session], services: list[SchedulerService]
) -> None:
    svc, _ = _open(db_url, _manager(sessions), services)
    svc.start(paused=True)
    svc.sync(svc.manager.specs.values())
    now = datetime(2026, 1, 1, tzinfo=UTC)
    svc.trigger("nightly", now)
    assert {j.id: j for j in svc.list_jobs()}["nightly"].next_run == now


def _due_in_the_past(
    db_url: str, sessions: sessionmaker[Session], services: list[SchedulerService], late: timedelta
) -> None:
    # The process was down: the stored next run of the hourly job lies `late` in the past.
    svc, _ = _open(db_url, _manager(sessions), services)
    svc.start(paused=True)
    svc.sync(svc.manager.specs.values())
    svc.trigger("hourly", datetime.now(UTC) - late)
    svc.pause("nightly")
    svc.shutdown()


def test_restart_runs_a_missed_job_once(
    db_url: str, sessions: sessionmaker[Session], services: list[SchedulerService]
) -> None:
    _due_in_the_past(db_url, sessions, services, timedelta(hours=5))
    ran = threading.Event()
    manager = _manager(sessions, ran)
    svc, _ = _open(db_url, manager, services, misfire_grace_time=6 * 3600)
    svc.start()
    assert ran.wait(20), "the missed run never happened"
    svc.shutdown(wait=True)
    runs = manager.history("hourly")
    # Five hourly runs were missed; coalescing makes them one.
    assert [r.outcome for r in runs] == ["success"]
    control, _ = _open(db_url, _manager(sessions), services)
    control.start(paused=True)
    next_run = {j.id: j for j in control.list_jobs()}["hourly"].next_run
    assert next_run is not None and next_run > datetime.now(UTC)


def test_restart_skips_a_run_older_than_the_grace_time(
    db_url: str, sessions: sessionmaker[Session], services: list[SchedulerService]
) -> None:
    _due_in_the_past(db_url, sessions, services, timedelta(hours=3, minutes=30))
    missed = threading.Event()
    manager = _manager(sessions)
    svc, _ = _open(db_url, manager, services, misfire_grace_time=60)
    svc.scheduler.add_listener(lambda _event: missed.set(), EVENT_JOB_MISSED)
    svc.start()
    assert missed.wait(20), "the late run was not reported as missed"
    svc.shutdown(wait=True)
    assert manager.history("hourly") == []


def test_start_closes_interrupted_runs_and_installs_the_manager(
    db_url: str, sessions: sessionmaker[Session], services: list[SchedulerService]
) -> None:
    manager = _manager(sessions)
    manager._open("hourly", datetime.now(UTC))
    svc, _ = _open(db_url, manager, services)
    svc.start()
    assert service_module._ACTIVE is manager
    svc.scheduler.pause()
    run_job("nightly")
    outcomes = sorted((r.job_id, r.outcome) for r in manager.history())
    assert outcomes == [("hourly", "interrupted"), ("nightly", "success")]
    svc.shutdown()
    assert service_module._ACTIVE is None
    with pytest.raises(RuntimeError, match="no scheduler"):
        run_job("nightly")


def test_the_job_store_table_is_apschedulers_and_alembic_leaves_it_alone(
    db_url: str, engine: Engine, sessions: sessionmaker[Session], services: list[SchedulerService]
) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from sigma.store.db import FOREIGN_TABLES, include_name
    from sigma.store.models import Base

    assert "apscheduler_jobs" not in inspect(engine).get_table_names()
    svc, own = _open(db_url, _manager(sessions), services)
    svc.start(paused=True)  # APScheduler creates its table outside Alembic
    assert "apscheduler_jobs" in inspect(own).get_table_names()
    assert "apscheduler_jobs" not in Base.metadata.tables and "apscheduler_jobs" in FOREIGN_TABLES

    def diff(**opts: object) -> list[object]:
        with own.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True, **opts})
            return list(compare_metadata(context, Base.metadata))

    # Without the filter autogenerate would offer to drop the job store; with it, nothing.
    assert {d[0] for d in diff()} == {"remove_index", "remove_table"}  # type: ignore[index]
    assert diff(include_name=include_name) == []
    own.dispose()

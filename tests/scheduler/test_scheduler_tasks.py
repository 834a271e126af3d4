"""TaskManager: every run recorded in job_runs with its outcome, failures alerted, progress,
cancellation, overlapping runs skipped, follow-up jobs, interrupted runs closed at start."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from apscheduler.triggers.interval import IntervalTrigger
from scheduler_helpers import FakeClock, alerts
from sqlalchemy.orm import Session, sessionmaker

from sigma.scheduler.tasks import Alerter, JobContext, JobSpec, TaskManager
from sigma.store.db import session_scope
from sigma.store.models import JobRun

EVERY_MINUTE = IntervalTrigger(minutes=1)


def _manager(sessions: sessionmaker[Session], alerter: Alerter, clock: FakeClock) -> TaskManager:
    return TaskManager(sessions, alerter=alerter, clock=clock)


def test_successful_run_is_recorded_with_start_and_end(
    sessions: sessionmaker[Session], alerter: Alerter, clock: FakeClock
) -> None:
    manager = _manager(sessions, alerter, clock)

    def job(ctx: JobContext) -> str:
        assert ctx.now == clock.now
        clock.advance(seconds=90)
        return "done"

    manager.register(JobSpec("nightly", job, EVERY_MINUTE, "a job"))
    start = clock.now
    record = manager.run("nightly")
    assert (record.outcome, record.error, record.result) == ("success", None, "done")
    [row] = manager.history("nightly")
    assert (row.outcome, row.started_at, row.ended_at) == ("success", start, clock.now)
    assert alerts(sessions) == []


def test_failure_is_recorded_and_alerted(
    sessions: sessionmaker[Session], alerter: Alerter, clock: FakeClock
) -> None:
    manager = _manager(sessions, alerter, clock)

    def broken(_ctx: JobContext) -> None:
        raise RuntimeError("exchange unreachable")

    manager.register(JobSpec("broken", broken, EVERY_MINUTE))
    record = manager.run("broken")
    assert record.outcome == "failed"
    assert record.error == "RuntimeError: exchange unreachable"
    [row] = manager.history()
    assert row.outcome == "failed" and row.error == "RuntimeError: exchange unreachable"
    [alert] = alerts(sessions)
    assert (alert.severity, alert.source) == ("error", "job:broken")
    assert "exchange unreachable" in alert.message
    assert alert.dedupe_key == "job_failed:broken"


def test_progress_and_cancellation(
    sessions: sessionmaker[Session], alerter: Alerter, clock: FakeClock
) -> None:
    manager = _manager(sessions, alerter, clock)
    seen: dict[str, Any] = {}

    def long_job(ctx: JobContext) -> None:
        ctx.report(1, 10)
        seen["running"] = manager.running()
        assert manager.cancel("long")
        ctx.report(2, 10)

    manager.register(JobSpec("long", long_job, EVERY_MINUTE))
    record = manager.run("long")
    assert seen["running"] == {"long": (1, 10)}
    assert record.outcome == "cancelled"
    assert record.error == "long cancelled at 2/10"
    assert manager.running() == {}
    assert not manager.cancel("long")
    assert alerts(sessions) == []


def test_overlapping_run_is_skipped(
    sessions: sessionmaker[Session], alerter: Alerter, clock: FakeClock
) -> None:
    manager = _manager(sessions, alerter, clock)
    inner: list[str] = []

    def job(_ctx: JobContext) -> None:
        inner.append(manager.run("again").outcome)

    manager.register(JobSpec("again", job, EVERY_MINUTE))
    assert manager.run("again").outcome == "success"
    assert inner == ["skipped"]
    outcomes = sorted(r.outcome for r in manager.history("again"))
    assert outcomes == ["skipped", "success"]


def test_a_run_that_could_not_be_recorded_does_not_block_the_next(
    sessions: sessionmaker[Session],
    alerter: Alerter,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    manager = _manager(sessions, alerter, clock)
    manager.register(JobSpec("often", lambda _ctx: "done", EVERY_MINUTE))
    record_run = manager._open

    def locked(job_id: str, started: Any) -> int:
        monkeypatch.setattr(manager, "_open", record_run)
        raise RuntimeError("database is locked")

    monkeypatch.setattr(manager, "_open", locked)
    with pytest.raises(RuntimeError, match="locked"):
        manager.run("often")
    # Not "skipped: already running" for ever after.
    assert manager.run("often").outcome == "success"


def test_follow_up_jobs_run_only_after_success(
    sessions: sessionmaker[Session], alerter: Alerter, clock: FakeClock
) -> None:
    manager = _manager(sessions, alerter, clock)
    ran: list[str] = []
    fail = {"first": False}

    def first(_ctx: JobContext) -> None:
        if fail["first"]:
            raise ValueError("no data")

    manager.register(JobSpec("first", first, EVERY_MINUTE, then=("report",)))
    manager.register(JobSpec("report", lambda _ctx: ran.append("report"), EVERY_MINUTE))
    manager.run("first")
    assert ran == ["report"]
    fail["first"] = True
    manager.run("first")
    assert ran == ["report"]
    last = manager.last_runs()
    assert last["first"].outcome == "failed" and last["report"].outcome == "success"


def test_registry_errors(sessions: sessionmaker[Session], clock: FakeClock) -> None:
    manager = TaskManager(sessions, clock=clock)
    manager.register(JobSpec("a", lambda _ctx: None, EVERY_MINUTE))
    with pytest.raises(ValueError, match="already registered"):
        manager.register(JobSpec("a", lambda _ctx: None, EVERY_MINUTE))
    with pytest.raises(KeyError, match="unknown job 'b'; known: a"):
        manager.run("b")
    assert list(manager.specs) == ["a"]


def test_runs_left_running_by_a_dead_process_are_closed(
    sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    with session_scope(sessions) as session:
        session.add(JobRun(job_id="x", started_at=clock.now, outcome="running"))
        session.add(JobRun(job_id="y", started_at=clock.now, outcome="success"))
    manager = TaskManager(sessions, clock=clock)
    assert manager.mark_interrupted() == 1
    outcomes = {r.job_id: r.outcome for r in manager.history()}
    assert outcomes == {"x": "interrupted", "y": "success"}


def test_alerter_without_service_logs(caplog: pytest.LogCaptureFixture) -> None:
    alerter = Alerter()
    with caplog.at_level(logging.WARNING):
        alerter.send("error", "job:x", "boom")
    assert "boom" in caplog.text
    alerter.close()


def test_alerter_survives_a_broken_service(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        async def notify(self, *_args: Any, **_kwargs: Any) -> None:
            raise OSError("smtp down")

        async def aclose(self) -> None:
            return None

    alerter = Alerter(Broken())  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR):
        alerter.send("error", "job:x", "boom")
    assert "sending alert from job:x failed" in caplog.text
    alerter.close()
    alerter.close()

"""The scheduler's loop survives a locked database, and a loop thread that ends anyway is seen
and started again (APScheduler 3 would silently run no job after either)."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from apscheduler.job import Job
from apscheduler.triggers.interval import IntervalTrigger

from sigma.scheduler.guard import SchedulerDied, watch
from sigma.scheduler.service import SchedulerService
from sigma.scheduler.tasks import JobContext, JobSpec, TaskManager
from sigma.store.db import init_db, session_factory

EVERY = 0.2  # seconds between runs of the test job


class Runs:
    """Counts the test job's runs; `wait_for(n)` waits (with a deadline) for the n-th."""

    def __init__(self) -> None:
        self.count = 0
        self._cond = threading.Condition()

    def job(self, _ctx: JobContext) -> None:
        with self._cond:
            self.count += 1
            self._cond.notify_all()

    def wait_for(self, n: int, timeout: float = 20.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.count >= n, timeout)


@pytest.fixture
def scheduled(tmp_path: Path) -> Iterator[tuple[SchedulerService, Runs, Path]]:
    """A started scheduler on a SQLite file whose writers give up on a lock quickly (the
    test holds the lock for longer than all their tries), running one job every EVERY s."""
    path = tmp_path / "sched.db"
    engine = init_db(f"sqlite:///{path}", busy_timeout=0.02)
    runs = Runs()
    manager = TaskManager(session_factory(engine))
    manager.register(JobSpec("often", runs.job, IntervalTrigger(seconds=EVERY), "test"))
    service = SchedulerService(engine, manager, jobstore_retry_interval=0.1)
    service.start()
    try:
        yield service, runs, path
    finally:
        service.shutdown(wait=False)
        engine.dispose()


def test_the_loop_outlives_a_write_lock_taken_while_it_handles_due_jobs(
    scheduled: tuple[SchedulerService, Runs, Path], caplog: pytest.LogCaptureFixture
) -> None:
    service, runs, path = scheduled
    assert runs.wait_for(1), "the job never ran"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    locked = threading.Event()
    release = threading.Timer(1.0, holder.rollback)
    store = service.scheduler._lookup_jobstore("default")
    get_due_jobs = store.get_due_jobs

    def then_lock(now: datetime) -> list[Job]:
        # Another writer takes the lock between the loop's read of the due jobs and its
        # update of their next run: where APScheduler's own loop thread dies.
        due: list[Job] = get_due_jobs(now)
        if due and not locked.is_set():
            holder.execute("BEGIN IMMEDIATE")
            release.start()
            locked.set()
        return due

    store.get_due_jobs = then_lock
    try:
        with caplog.at_level(logging.ERROR, "sigma.scheduler.guard"):
            assert locked.wait(20), "no job fell due"
            release.join()
        assert "could not handle its due jobs" in caplog.text
        held_until = runs.count
        # The same loop thread goes on running the job.
        assert runs.wait_for(held_until + 3), "no job ran after the lock was released"
        assert service.scheduler.alive
    finally:
        release.cancel()
        holder.close()


class _Killed(BaseException):
    """Not an Exception: goes through the loop's guard and ends its thread."""


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_loop_thread_is_seen_by_watch_and_revived(
    scheduled: tuple[SchedulerService, Runs, Path],
) -> None:
    service, runs, _ = scheduled
    scheduler = service.scheduler
    assert runs.wait_for(1)
    process_jobs = scheduler._process_jobs

    def die_once() -> float | None:
        del scheduler._process_jobs  # back to the real method for the next thread
        raise _Killed

    scheduler._process_jobs = die_once
    old = scheduler._thread
    scheduler.wakeup()
    old.join(10)
    assert not old.is_alive() and not scheduler.alive
    assert scheduler._process_jobs == process_jobs

    async def supervised() -> None:
        stop = asyncio.Event()
        with pytest.raises(SchedulerDied):
            await watch(scheduler, stop, every=0.01)  # it died before: revived first
        stop.set()
        await watch(scheduler, stop)  # returns at once when stopping

    # `watch` revives at its start, so the first call sees the thread running: make the
    # revived thread die again to see `watch` notice a death.
    scheduler._process_jobs = die_once
    asyncio.run(supervised())
    scheduler.revive()
    assert scheduler.alive
    before = runs.count
    assert runs.wait_for(before + 2), "no job ran after the revival"
    scheduler.revive()  # a no-op while the thread runs
    assert scheduler._thread.is_alive()
    service.shutdown()
    assert scheduler.alive  # stopped on purpose is not dead

"""The APScheduler side: a persistent job store in SIGMA's database, misfire policy, control.

Jobs are stored in `apscheduler_jobs` as a reference to `run_job` and the job id, so a restarted
process finds its schedule (including paused jobs) where it left it. On restart every job that
fell due while the process was down runs once (`coalesce`), and only if it is less than
`misfire_grace_time` late; older runs are skipped instead of stampeding. One scheduler runs per
database: APScheduler 3 does not coordinate several schedulers on one store.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.job import Job
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.triggers.base import BaseTrigger

from sigma.scheduler.guard import GuardedScheduler
from sigma.scheduler.tasks import JobSpec, TaskManager
from sigma.store.handles import Engine

log = logging.getLogger(__name__)

JOBS_TABLE = "apscheduler_jobs"

_ACTIVE: TaskManager | None = None


def run_job(job_id: str) -> None:
    """APScheduler's entry point: stored by reference, it runs `job_id` on the manager of the
    scheduler started in this process."""
    if _ACTIVE is None:
        raise RuntimeError("no scheduler is running in this process")
    _ACTIVE.run(job_id)


def _trigger_key(trigger: BaseTrigger) -> str:
    # The schedule without an interval trigger's start date, which is "now" whenever the
    # trigger object is built: comparing it would reschedule every interval job at each start.
    return f"{trigger}|{getattr(trigger, 'timezone', '')}"


@dataclass(frozen=True, slots=True)
class JobInfo:
    """A scheduled job as `list_jobs` shows it."""

    id: str
    description: str
    trigger: str
    next_run: datetime | None
    last_outcome: str | None
    last_started: datetime | None

    @property
    def paused(self) -> bool:
        """A paused job has no next run."""
        return self.next_run is None


class SchedulerService:
    """BackgroundScheduler on the database, driving a `TaskManager`'s jobs."""

    def __init__(
        self,
        engine: Engine,
        manager: TaskManager,
        *,
        timezone: str = "UTC",
        misfire_grace_time: int = 3600,
        threads: int = 2,
        jobstore_retry_interval: float = 10.0,
    ) -> None:
        self.manager = manager
        self.misfire_grace_time = misfire_grace_time
        # Guarded: an error of the job store (a locked database) must not end the loop.
        self.scheduler = GuardedScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=engine, tablename=JOBS_TABLE)},
            executors={"default": ThreadPoolExecutor(threads)},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": misfire_grace_time,
            },
            timezone=timezone,
            jobstore_retry_interval=jobstore_retry_interval,
        )

    def start(self, *, paused: bool = False) -> None:
        """Open the job store, reconcile it with the registered jobs and start running them.

        `paused` opens the store without running anything (for control commands)."""
        global _ACTIVE
        self.scheduler.start(paused=True)
        if paused:
            return
        _ACTIVE = self.manager
        closed = self.manager.mark_interrupted()
        if closed:
            log.warning("%d job run(s) were interrupted by the last stop", closed)
        self.sync(self.manager.specs.values())
        self.scheduler.resume()

    def sync(self, specs: Iterable[JobSpec]) -> None:
        """Add new jobs, update changed triggers (keeping paused jobs paused and the next run
        of unchanged ones) and the misfire grace time, and drop jobs no longer registered."""
        wanted = {spec.id: spec for spec in specs}
        for job in self.scheduler.get_jobs():
            if job.id not in wanted:
                job.remove()
        for spec in wanted.values():
            job = self.scheduler.get_job(spec.id)
            if job is None:
                self.scheduler.add_job(
                    run_job,
                    spec.trigger,
                    args=[spec.id],
                    id=spec.id,
                    name=spec.description or spec.id,
                )
                continue
            if job.misfire_grace_time != self.misfire_grace_time:
                # Stored jobs keep the policy they were added with; the setting wins.
                job.modify(misfire_grace_time=self.misfire_grace_time)
            if _trigger_key(job.trigger) != _trigger_key(spec.trigger):
                if job.next_run_time is None:
                    job.modify(trigger=spec.trigger)
                else:
                    job.reschedule(spec.trigger)

    def shutdown(self, *, wait: bool = True) -> None:
        """Stop scheduling (with `wait`, after running jobs finish) and close the alerts."""
        global _ACTIVE
        if self.scheduler.running:
            # APScheduler's loop makes one last pass over due jobs after shutdown: it cannot
            # submit them any more, yet it moves their next run on, losing the run that a
            # restart should make up. Detaching the store first leaves that pass nothing.
            self.scheduler.remove_jobstore("default")
            self.scheduler.shutdown(wait=wait)
        if _ACTIVE is self.manager:
            _ACTIVE = None
        self.manager.alerter.close()

    def _job(self, job_id: str) -> Job:
        job = self.scheduler.get_job(job_id)
        if job is None:
            raise KeyError(f"no scheduled job {job_id!r}")
        return job

    def pause(self, job_id: str) -> None:
        """Stop scheduling `job_id` until resumed (kept across restarts)."""
        self._job(job_id).pause()

    def resume(self, job_id: str) -> None:
        """Schedule `job_id` again from now."""
        self._job(job_id).resume()

    def trigger(self, job_id: str, now: datetime) -> None:
        """Make the scheduler run `job_id` at its next wake-up, keeping its schedule after."""
        self._job(job_id).modify(next_run_time=now)
        self.scheduler.wakeup()

    def list_jobs(self) -> list[JobInfo]:
        """Stored jobs with their next run and last recorded outcome, by id."""
        last = self.manager.last_runs()
        infos = []
        for job in sorted(self.scheduler.get_jobs(), key=lambda j: j.id):
            run = last.get(job.id)
            infos.append(
                JobInfo(
                    job.id,
                    job.name,
                    str(job.trigger),
                    job.next_run_time,
                    run.outcome if run else None,
                    run.started_at if run else None,
                )
            )
        return infos

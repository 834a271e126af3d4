"""TaskManager: runs jobs by id and records every run in `job_runs`.

A run is one `job_runs` row: inserted as ``running`` when the job starts and closed with
``success``, ``failed`` (with the error), ``cancelled`` or ``skipped`` (the job was already
running in this process). A failure raises an error alert. Jobs report progress and watch a
cancel event, so a long optimisation can be followed and stopped from outside.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import traceback
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from apscheduler.triggers.base import BaseTrigger

from sigma.engine.engine import Cancelled
from sigma.notify.alert import Alert, Severity
from sigma.notify.channels import Attachment
from sigma.notify.service import NotificationService, SendResult
from sigma.store import job_runs
from sigma.store.db import session_scope
from sigma.store.handles import SessionFactory
from sigma.store.models import JobRun

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

RUNNING, SUCCESS, FAILED, CANCELLED, SKIPPED, INTERRUPTED = (
    "running",
    "success",
    "failed",
    "cancelled",
    "skipped",
    "interrupted",
)
# The error column is TEXT, but an alert or a table cell wants the gist, not a 200-line trace.
_MAX_ERROR = 4000


def utc_now() -> datetime:
    """The current time, aware UTC (the default clock)."""
    return datetime.now(UTC)


class Alerter:
    """Sends alerts from worker threads through a NotificationService (which is async).

    The service's channels may hold connections bound to one event loop, so every alert goes
    through the same private loop, running in a daemon thread. Without a service, alerts are
    only logged.
    """

    def __init__(self, service: NotificationService | None = None, timeout: float = 30.0) -> None:
        self.service = service
        self._timeout = timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def _run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                threading.Thread(
                    target=self._loop.run_forever, name="sigma-alerts", daemon=True
                ).start()
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(self._timeout)

    def send(
        self,
        severity: Severity,
        source: str,
        message: str,
        *,
        dedupe_key: str | None = None,
        **details: Any,
    ) -> None:
        """Deliver (and record) an alert; never raises, a broken channel is only logged."""
        if self.service is None:
            log.warning("alert %s %s: %s", severity, source, message)
            return
        try:
            self._run(
                self.service.notify(severity, source, message, dedupe_key=dedupe_key, **details)
            )
        except Exception:
            log.exception("sending alert from %s failed", source)

    def report(
        self,
        source: str,
        message: str,
        attachments: Sequence[Attachment] = (),
        *,
        severity: Severity = "info",
        details: Mapping[str, Any] | None = None,
    ) -> SendResult | None:
        """Distribute a report (`NotificationService.report`: the report-only channels such as
        the summary e-mail whatever their alert threshold, files attached); None when there
        is no service or it broke (logged)."""
        if self.service is None:
            log.info("report %s: %s", source, message)
            return None
        alert = Alert(severity, source, message, details=dict(details or {}))
        try:
            result: SendResult = self._run(self.service.report(alert, attachments))
        except Exception:
            log.exception("sending report from %s failed", source)
            return None
        return result

    def close(self) -> None:
        """Close the service's channels and stop the alert loop."""
        if self._loop is None:
            return
        if self.service is not None:
            self._run(self.service.aclose())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._loop = None


@dataclass
class JobContext:
    """What a running job gets: its id, the clock, progress reporting and the cancel flag."""

    job_id: str
    now: datetime
    sessions: SessionFactory
    alerter: Alerter
    cancel: threading.Event = field(default_factory=threading.Event)
    progress: tuple[int, int] = (0, 0)

    def report(self, done: int, total: int) -> None:
        """Record progress; raises `Cancelled` once cancellation was asked for."""
        self.progress = (done, total)
        self.check_cancel()

    def check_cancel(self) -> None:
        """Raise `Cancelled` when someone asked this run to stop."""
        if self.cancel.is_set():
            raise Cancelled(f"{self.job_id} cancelled at {self.progress[0]}/{self.progress[1]}")


JobFn = Callable[[JobContext], Any]


@dataclass(frozen=True)
class JobSpec:
    """A job: its function, when it runs, and the jobs to run after it succeeds."""

    id: str
    fn: JobFn
    trigger: BaseTrigger
    description: str = ""
    then: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A finished run as returned by `TaskManager.run`."""

    job_id: str
    run_id: int
    outcome: str
    error: str | None
    result: Any = None


class TaskManager:
    """The seed's TaskManager: registry of jobs, runs with records, alerts, cancellation."""

    def __init__(
        self,
        sessions: SessionFactory,
        *,
        alerter: Alerter | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.sessions = sessions
        self.alerter = alerter or Alerter()
        self.clock = clock
        self._specs: dict[str, JobSpec] = {}
        self._running: dict[str, JobContext] = {}
        self._lock = threading.Lock()

    def register(self, spec: JobSpec) -> None:
        """Add a job; ids are unique."""
        if spec.id in self._specs:
            raise ValueError(f"job {spec.id!r} is already registered")
        self._specs[spec.id] = spec

    @property
    def specs(self) -> dict[str, JobSpec]:
        """Registered jobs by id."""
        return dict(self._specs)

    def spec(self, job_id: str) -> JobSpec:
        """The job `job_id`; KeyError naming the known jobs otherwise."""
        try:
            return self._specs[job_id]
        except KeyError:
            known = ", ".join(sorted(self._specs))
            raise KeyError(f"unknown job {job_id!r}; known: {known}") from None

    def running(self) -> dict[str, tuple[int, int]]:
        """Jobs running in this process and their progress (done, total)."""
        with self._lock:
            return {job_id: ctx.progress for job_id, ctx in self._running.items()}

    def cancel(self, job_id: str) -> bool:
        """Ask a running job to stop at its next progress report; False if it is not running."""
        with self._lock:
            ctx = self._running.get(job_id)
        if ctx is None:
            return False
        ctx.cancel.set()
        return True

    def mark_interrupted(self) -> int:
        """Close `running` rows left by a process that died (call once at scheduler start:
        one scheduler runs per database). Returns how many were closed."""
        with session_scope(self.sessions) as session:
            return job_runs.close_all(
                session, RUNNING, INTERRUPTED, self.clock(), error="process stopped"
            )

    def run(self, job_id: str) -> RunRecord:
        """Run the job now in this thread, record it, alert on failure, then run its `then`
        jobs if it succeeded. Never raises for a job's own failure."""
        spec = self.spec(job_id)
        started = self.clock()
        ctx = JobContext(job_id, started, self.sessions, self.alerter)
        with self._lock:
            busy = job_id in self._running
            if not busy:
                self._running[job_id] = ctx
        if busy:
            # Overlapping runs would race on the same rows; the earlier run will finish the work.
            return self._finish(self._open(job_id, started), SKIPPED, "already running")
        try:
            # Inside: a run that could not even be recorded (a locked database) must not
            # leave the job marked running, or every later run would be skipped.
            record = self._execute(spec, ctx, self._open(job_id, started))
        finally:
            with self._lock:
                self._running.pop(job_id, None)
        if record.outcome == SUCCESS:
            for follower in spec.then:
                self.run(follower)
        return record

    def _execute(self, spec: JobSpec, ctx: JobContext, run_id: int) -> RunRecord:
        """Run `spec` as run `run_id` and record its outcome."""
        try:
            result = spec.fn(ctx)
        except Cancelled as exc:
            return self._finish(run_id, CANCELLED, str(exc))
        except Exception as exc:
            error = "".join(traceback.format_exception_only(exc)).strip()
            log.exception("job %s failed", spec.id)
            record = self._finish(run_id, FAILED, error)
            self.alerter.send(
                "error",
                f"job:{spec.id}",
                f"scheduled job {spec.id} failed: {error[:300]}",
                dedupe_key=f"job_failed:{spec.id}",
                run_id=run_id,
            )
            return record
        return self._finish(run_id, SUCCESS, None, result)

    def _open(self, job_id: str, started: datetime) -> int:
        with session_scope(self.sessions) as session:
            return job_runs.open_run(session, job_id, started, RUNNING)

    def _finish(
        self, run_id: int, outcome: str, error: str | None, result: Any = None
    ) -> RunRecord:
        kept = None if error is None else error[:_MAX_ERROR]
        with session_scope(self.sessions) as session:
            job_id = job_runs.close_run(session, run_id, outcome, self.clock(), kept)
        return RunRecord(job_id, run_id, outcome, error, result)

    def history(self, job_id: str | None = None, limit: int = 20) -> list[JobRun]:
        """The newest runs (of one job, or all), newest first."""
        with self.sessions() as session:
            return job_runs.newest_runs(session, job_id, limit)

    def last_runs(self) -> dict[str, JobRun]:
        """The newest run of every job that has run."""
        with self.sessions() as session:
            return job_runs.last_run_per_job(session)

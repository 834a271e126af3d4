"""Background backtest jobs: queued on a small thread pool, with progress and cancellation.

Jobs live in memory (they are short; the result is a stored backtest). The pool is small on
purpose: a backtest takes a whole core, and the API must stay responsive next to the bot.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from sigma.engine.engine import Cancelled

log = logging.getLogger(__name__)

JobStatus = Literal["queued", "running", "done", "failed", "cancelled"]
ProgressFn = Callable[[int, int], None]
JobFn = Callable[[ProgressFn, threading.Event], int]
"""The work: reports progress, honours the cancel event, returns the stored backtest id."""


class JobStateError(Exception):
    """The job is finished and cannot be cancelled any more."""


class JobLimitError(Exception):
    """Too many backtests at once: the queue of one user, or the runs inside requests."""


@dataclass(slots=True)
class Job:
    """One background backtest."""

    id: str
    strategy: str
    symbol: str
    user: str
    status: JobStatus = "queued"
    progress: float = 0.0
    backtest_id: int | None = None
    error: str | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None
    cancel_event: threading.Event = field(default_factory=threading.Event)
    future: Future[None] | None = None

    @property
    def finished(self) -> bool:
        """True once done, failed or cancelled."""
        return self.status in ("done", "failed", "cancelled")


class JobRunner:
    """Runs jobs on `workers` threads and remembers the latest `keep` of them.

    A user may have at most `per_user` jobs queued or running: the queue is memory, and one
    client looping on submit would otherwise hold the pool for hours. At most `inline`
    backtests run inside requests at once (`inline_slot`): each holds one of the server's
    few request threads and a core while it runs."""

    def __init__(
        self, workers: int = 1, keep: int = 200, per_user: int = 5, inline: int = 2
    ) -> None:
        self._workers = workers
        self._per_user = per_user
        self._inline_limit = inline
        self._inline = threading.BoundedSemaphore(inline)
        # Made on first use and dropped by `shutdown`, so an API restarted in the same process
        # (tests, reloads) gets a fresh pool.
        self._executor: ThreadPoolExecutor | None = None
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._keep = keep
        self._lock = threading.Lock()

    def submit(self, fn: JobFn, *, strategy: str, symbol: str, user: str) -> Job:
        """Queue `fn` as a new job."""
        job = Job(id=uuid.uuid4().hex, strategy=strategy, symbol=symbol, user=user)
        with self._lock:
            pending = sum(1 for j in self._jobs.values() if j.user == user and not j.finished)
            if pending >= self._per_user:
                raise JobLimitError(
                    f"user {user!r} already has {pending} backtests queued or running "
                    f"(at most {self._per_user}); wait for one or cancel it"
                )
            self._jobs[job.id] = job
            self._forget_old()
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self._workers, thread_name_prefix="backtest")
        job.future = self._executor.submit(self._run, job, fn)
        return job

    def _forget_old(self) -> None:
        finished = [j.id for j in self._jobs.values() if j.finished]
        for job_id in finished[: max(0, len(self._jobs) - self._keep)]:
            del self._jobs[job_id]

    def _run(self, job: Job, fn: JobFn) -> None:
        with self._lock:  # against `cancel` finishing it as it starts
            if job.cancel_event.is_set():  # cancelled while queued
                if not job.finished:
                    self._finish(job, "cancelled")
                return
            job.status = "running"

        def progress(done: int, total: int) -> None:
            job.progress = done / total if total else 1.0

        try:
            job.backtest_id = fn(progress, job.cancel_event)
        except Cancelled:
            self._finish(job, "cancelled")
        except Exception as exc:
            log.exception("backtest job %s failed", job.id)
            # Every viewer reads this: a ValueError says what was wrong with the run; the
            # text of any other error may name SQL, files or hosts, and stays in the log.
            job.error = (
                f"{type(exc).__name__}: {exc}"
                if isinstance(exc, ValueError)
                else f"{type(exc).__name__} (see the server log)"
            )
            self._finish(job, "failed")
        else:
            job.progress = 1.0
            self._finish(job, "done")

    @staticmethod
    def _finish(job: Job, status: JobStatus) -> None:
        job.status = status
        job.finished_at = datetime.now(UTC)

    @contextmanager
    def inline_slot(self) -> Iterator[None]:
        """Hold one of the `inline` slots for a backtest run inside a request; JobLimitError
        at once when all are taken (the caller can queue a job instead)."""
        if not self._inline.acquire(blocking=False):
            raise JobLimitError(
                f"{self._inline_limit} backtests are already running in requests; "
                "queue this one with POST /api/backtests/jobs"
            )
        try:
            yield
        finally:
            self._inline.release()

    def get(self, job_id: str) -> Job | None:
        """The job, or None if unknown (or long forgotten)."""
        return self._jobs.get(job_id)

    def list(self) -> list[Job]:
        """Known jobs, newest first."""
        return list(reversed(self._jobs.values()))

    def cancel(self, job_id: str) -> Job | None:
        """Ask the job to stop (a queued job never starts); None if unknown. JobStateError
        when it already finished."""
        job = self._jobs.get(job_id)
        if job is None:
            return None
        with self._lock:
            if job.finished:
                raise JobStateError(f"job {job_id} already {job.status}")
            job.cancel_event.set()
            # A queued job is over now: it no longer counts against its user's limit.
            if job.status == "queued":
                self._finish(job, "cancelled")
        return job

    def shutdown(self) -> None:
        """Cancel everything and wait for the running jobs to stop."""
        for job in list(self._jobs.values()):
            job.cancel_event.set()
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

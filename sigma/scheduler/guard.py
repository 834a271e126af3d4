"""APScheduler's loop made to outlive its job store's errors, and watched for the rest.

APScheduler 3 runs its loop in one thread. An error of the job store while it handles due
jobs (`update_job` or `get_next_run_time`; e.g. "database is locked" on SQLite) ends that
thread: no job runs again, and the scheduler still says it is running. `GuardedScheduler`
catches such an error and tries again after `jobstore_retry_interval`, as APScheduler itself
does when `get_due_jobs` fails; `watch` notices a loop thread that ended anyway, so the
supervisor reports it and starts a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from threading import Thread

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_STOPPED

log = logging.getLogger(__name__)


class SchedulerDied(RuntimeError):
    """The scheduler's loop thread ended while the scheduler was meant to run."""


class GuardedScheduler(BackgroundScheduler):  # type: ignore[misc]  # APScheduler is untyped
    """BackgroundScheduler whose loop survives an error of its job store."""

    def _process_jobs(self) -> float | None:
        try:
            wait: float | None = super()._process_jobs()
        except Exception:
            # A job whose next run could not be stored is found due again then and runs
            # once more (coalesced): better than no job ever running again.
            log.exception(
                "the scheduler could not handle its due jobs; trying again in %ss",
                self.jobstore_retry_interval,
            )
            return float(self.jobstore_retry_interval)
        return wait

    @property
    def alive(self) -> bool:
        """False when the scheduler was started and its loop thread has ended."""
        if self.state == STATE_STOPPED:
            return True
        thread: Thread | None = self._thread
        return thread is not None and thread.is_alive()

    def revive(self) -> None:
        """Start a new loop thread in place of one that ended (a no-op while it runs)."""
        if self.alive:
            return
        log.warning("starting a new scheduler loop thread")
        self._thread = Thread(target=self._main_loop, name="APScheduler", daemon=self._daemon)
        self._thread.start()
        self.wakeup()  # the new loop would otherwise sleep until the next change of a job


async def watch(scheduler: GuardedScheduler, stop: asyncio.Event, every: float = 1.0) -> None:
    """Revive `scheduler`'s loop if it ended, then check it every `every` seconds until
    `stop`; raises `SchedulerDied` when the loop ended (the supervisor's cue)."""
    scheduler.revive()
    while not stop.is_set():
        if not scheduler.alive:
            raise SchedulerDied("the scheduler's loop thread ended: no job would run")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)

"""Supervision of the long-running components of a process: started, they are waited for
until each listens (`until_subscribed`); running, a component that dies is alerted, shown as
down, and started again after a backoff (`Supervisor`), and one whose supervision ends
anyway stops the process (`watch`); stopping, each is given a grace period (`finish`).

A death is the component's coroutine raising, or returning while the process is not
stopping. The pause before the next start doubles with each death (from `Backoff.first` up
to `Backoff.cap`); a component that then stays up for `Backoff.healthy_after` seconds
counts as healthy again, so its next death waits `Backoff.first` once more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sigma.ops.components import ComponentState, ComponentStatus

log = logging.getLogger(__name__)

Alert = Callable[[str], Awaitable[object]]
"""`alert(message)`: how a death is reported (a critical notification)."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """Pauses before a dead component is started again, in seconds."""

    first: float = 1.0
    factor: float = 2.0
    cap: float = 60.0
    healthy_after: float = 60.0

    def pause(self, deaths: int) -> float:
        """The pause after the `deaths`-th death in a row (1 for the first)."""
        return float(min(self.cap, self.first * self.factor ** (deaths - 1)))


class Supervisor:
    """Runs components in tasks, restarts the ones that die and keeps their status."""

    def __init__(
        self,
        alert: Alert,
        backoff: Backoff = Backoff(),
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.alert = alert
        self.backoff = backoff
        self._clock = clock
        self._status: dict[str, ComponentStatus] = {}
        self._started_at: dict[str, float] = {}

    def start(
        self, name: str, run: Callable[[], Awaitable[None]], stop: asyncio.Event
    ) -> asyncio.Task[None]:
        """Run `run()` as component `name` until `stop`, starting it again each time it dies.

        The task ends when `stop` is set and the component has returned; an error it raises
        then is raised by the task (it is not a death: the process is stopping)."""
        self._set(name, "running")
        return asyncio.create_task(self._supervise(name, run, stop), name=f"sigma:{name}")

    def statuses(self) -> list[ComponentStatus]:
        """Every supervised component, by name. A restarted component that has been up for
        the healthy period shows as running."""
        for name, status in self._status.items():
            if status.state == "restarting" and self._healthy(name):
                self._status[name] = replace(status, state="running", since=_now())
        return [self._status[name] for name in sorted(self._status)]

    def _healthy(self, name: str) -> bool:
        return self._clock() - self._started_at[name] >= self.backoff.healthy_after

    def _set(self, name: str, state: ComponentState, error: str | None = None) -> None:
        old = self._status.get(name)
        restarts = old.restarts if old is not None else 0
        if state == "restarting":
            restarts += 1
        if state != "down":
            self._started_at[name] = self._clock()
        last_error = error if error is not None else (old.last_error if old else None)
        self._status[name] = ComponentStatus(name, state, _now(), restarts, last_error)

    async def _supervise(
        self, name: str, run: Callable[[], Awaitable[None]], stop: asyncio.Event
    ) -> None:
        deaths = 0  # in a row, without a healthy period between them
        while True:
            error: Exception | None = None
            try:
                await run()
            except Exception as exc:
                error = exc
            if stop.is_set():
                if error is not None:
                    raise error
                return
            deaths = 1 if self._healthy(name) else deaths + 1
            pause = self.backoff.pause(deaths)
            # str, not repr: some errors' repr drops the message that says where (redis-py's
            # ConnectionError reads "network:ConnectionError").
            what = "it returned" if error is None else f"{type(error).__name__}: {error}"
            self._set(name, "down", what)
            message = f"component {name} died ({what}); restarting it in {pause:.1f}s"
            log.error(message, exc_info=error)
            try:
                await self.alert(message)
            except Exception:  # the alert channel's own failure must not end supervision
                log.exception("could not alert that %s died", name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)
            if stop.is_set():
                return
            self._set(name, "restarting")
            log.warning("component %s restarting (restart %d)", name, self._status[name].restarts)


def _now() -> datetime:
    return datetime.now(UTC)


async def until_subscribed(
    events: list[asyncio.Event], tasks: dict[str, asyncio.Task[None]], stop: asyncio.Event
) -> None:
    """Wait until every consumer listens (`events`), so nothing published after the process
    says it is ready is missed; a component that ends first raises its error. Asked to
    `stop` meanwhile (Ctrl-C while a server it needs is still away), it returns: the
    components end because they were told to, not because one failed."""
    for event in events:
        waiter = asyncio.create_task(event.wait())
        await asyncio.wait({waiter, *tasks.values()}, return_when=asyncio.FIRST_COMPLETED)
        if not waiter.done():
            waiter.cancel()
            for task in tasks.values():
                if task.done() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            if stop.is_set():
                return
            raise RuntimeError("a component ended before it subscribed")


async def watch(tasks: dict[str, asyncio.Task[None]], stop: asyncio.Event, alert: Alert) -> None:
    """Wait for `stop`. A component that dies is restarted by its `Supervisor`; one whose
    supervision ends anyway (a BaseException, e.g. SystemExit) is reported and stops the
    process."""
    stopper = asyncio.create_task(stop.wait())
    try:
        pending: set[asyncio.Future[Any]] = {stopper, *tasks.values()}
        done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for name, task in tasks.items():
            if task in done and not stop.is_set():
                error = task.exception()
                message = f"component {name} stopped: {error!r}"
                log.error(message)
                await alert(message)
                if error is not None:
                    raise error
    finally:
        stopper.cancel()


async def finish(task: asyncio.Task[None] | None, grace: float = 5.0) -> None:
    """Let a component that saw `stop` end by itself for up to `grace` seconds, then cancel."""
    if task is None:
        return
    await asyncio.wait({task}, timeout=grace)
    if not task.done():
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    if not task.cancelled() and task.exception() is not None:
        log.error("component ended with an error", exc_info=task.exception())

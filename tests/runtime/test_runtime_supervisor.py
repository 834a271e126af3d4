"""The supervisor: a component that dies is alerted, shown as down, started again after a
growing pause, and counted healthy again after a healthy period; stopping is not a death."""

from __future__ import annotations

import asyncio

import pytest

from sigma.runtime.supervisor import Backoff, Supervisor, until_subscribed
from tests.runtime.pipeline_helpers import wait_for

FAST = Backoff(first=0.05, factor=2.0, cap=0.2, healthy_after=0.3)


class Flaky:
    """A component whose first `fail` runs raise when `go` is set; later runs last until stop."""

    def __init__(self, stop: asyncio.Event, fail: int) -> None:
        self.stop = stop
        self.fail = fail
        self.starts = 0
        self.go = asyncio.Event()

    async def run(self) -> None:
        self.starts += 1
        if self.starts > self.fail:
            await self.stop.wait()
            return
        await self.go.wait()
        self.go.clear()
        raise ValueError(f"boom {self.starts}")


async def test_a_dying_component_is_alerted_shown_down_and_restarted() -> None:
    alerts: list[str] = []

    async def alert(message: str) -> None:
        alerts.append(message)

    stop = asyncio.Event()
    # Slow enough to watch the down state: the restart waits 0.3 s.
    supervisor = Supervisor(alert, Backoff(first=0.3, healthy_after=0.3))
    flaky = Flaky(stop, fail=1)
    task = supervisor.start("bot", flaky.run, stop)
    [status] = supervisor.statuses()
    assert (status.name, status.state, status.restarts, status.last_error) == (
        "bot",
        "running",
        0,
        None,
    )
    flaky.go.set()
    await wait_for(lambda: supervisor.statuses()[0].state == "down", 5, "down")
    down = supervisor.statuses()[0]
    assert not down.up
    assert down.last_error == "ValueError: boom 1"
    assert alerts == ["component bot died (ValueError: boom 1); restarting it in 0.3s"]
    await wait_for(lambda: flaky.starts == 2, 5, "restart")
    back = supervisor.statuses()[0]
    assert (back.state, back.restarts, back.up) == ("restarting", 1, True)
    assert back.since > down.since
    # Up for the healthy period: running again.
    await wait_for(lambda: supervisor.statuses()[0].state == "running", 5, "healthy")
    assert supervisor.statuses()[0].restarts == 1
    stop.set()
    await asyncio.wait_for(task, 5)


async def test_the_pause_grows_with_deaths_in_a_row_up_to_the_cap_and_resets_when_healthy() -> None:
    pauses: list[str] = []

    async def alert(message: str) -> None:
        pauses.append(message.rsplit(" in ", 1)[1])

    stop = asyncio.Event()
    supervisor = Supervisor(alert, FAST)
    flaky = Flaky(stop, fail=5)
    task = supervisor.start("worker", flaky.run, stop)
    for starts in range(1, 5):
        await wait_for(lambda s=starts: flaky.starts == s, 5, f"start {starts}")
        flaky.go.set()
    # Four deaths in a row: 0.05, 0.1, 0.2, then capped at 0.2.
    await wait_for(lambda: len(pauses) == 4, 5, "four deaths")
    assert pauses == ["0.1s", "0.1s", "0.2s", "0.2s"]  # one decimal: 0.05 shows as 0.1
    await wait_for(lambda: flaky.starts == 5, 5, "fifth start")
    await asyncio.sleep(FAST.healthy_after)  # a healthy period passes (what is tested)
    flaky.go.set()
    await wait_for(lambda: len(pauses) == 5, 5, "fifth death")
    assert pauses[-1] == "0.1s"  # back to the first pause
    assert supervisor.statuses()[0].restarts == 4
    stop.set()
    await asyncio.wait_for(task, 5)


async def test_returning_before_stop_is_a_death_and_stopping_is_not() -> None:
    alerts: list[str] = []

    async def alert(message: str) -> None:
        alerts.append(message)

    stop = asyncio.Event()
    supervisor = Supervisor(alert, FAST)
    runs = 0

    async def returns_once() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            return
        await stop.wait()

    task = supervisor.start("sim", returns_once, stop)
    await wait_for(lambda: runs == 2, 5, "restart")
    assert alerts == ["component sim died (it returned); restarting it in 0.1s"]
    stop.set()
    await asyncio.wait_for(task, 5)
    assert len(alerts) == 1


async def test_an_error_while_stopping_is_raised_not_restarted() -> None:
    async def alert(message: str) -> None:
        raise AssertionError(f"no alert expected: {message}")

    stop = asyncio.Event()
    supervisor = Supervisor(alert, FAST)

    async def fails_at_stop() -> None:
        await stop.wait()
        raise RuntimeError("could not flush")

    task = supervisor.start("recorder", fails_at_stop, stop)
    stop.set()
    with pytest.raises(RuntimeError, match="could not flush"):
        await asyncio.wait_for(task, 5)


async def test_a_failing_alert_does_not_end_supervision_and_stop_ends_the_pause() -> None:
    async def alert(message: str) -> None:
        raise ConnectionError("webhook down")

    stop = asyncio.Event()
    supervisor = Supervisor(alert, Backoff(first=60))
    flaky = Flaky(stop, fail=1)
    task = supervisor.start("prices", flaky.run, stop)
    flaky.go.set()
    await wait_for(lambda: supervisor.statuses()[0].state == "down", 5, "down")
    stop.set()  # during the 60 s pause: the supervisor ends at once
    await asyncio.wait_for(task, 5)
    assert flaky.starts == 1


async def test_stopping_before_every_component_subscribed_is_no_failure() -> None:
    """Ctrl-C while a component still waits for its server (Redis away at start): the wait
    for the subscriptions ends quietly; a component that ends on its own is still an error."""
    stop, never = asyncio.Event(), asyncio.Event()
    supervisor = Supervisor(lambda message: asyncio.sleep(0), FAST)
    waiting = supervisor.start("bot", stop.wait, stop)
    waiter = asyncio.create_task(until_subscribed([never], {"bot": waiting}, stop))
    await asyncio.sleep(0)
    assert not waiter.done()
    stop.set()
    await asyncio.wait_for(waiter, 5)  # returns, raises nothing

    ended = asyncio.create_task(asyncio.sleep(0))
    with pytest.raises(RuntimeError, match="a component ended before it subscribed"):
        await until_subscribed([asyncio.Event()], {"bot": ended}, asyncio.Event())

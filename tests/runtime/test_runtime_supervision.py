"""`sigma up` keeps its components alive: each one is made to raise inside its running loop,
is shown down, comes back (restarted by the supervisor) and works again, while the others
go on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sigma.api.auth import TokenService, load_jwt_secret
from sigma.api.server import serve_embedded
from sigma.bus.base import QUEUE_ORDERS
from sigma.ops.components import ComponentStatus
from sigma.runtime.services import Services
from sigma.runtime.supervisor import Backoff
from sigma.store.auth_sessions import start_family
from sigma.store.db import session_scope
from sigma.store.queries.users import add_user, get_user
from tests.integration.private_servers import free_port
from tests.runtime.pipeline_helpers import make_app, running, wait_for

COMPONENTS = ("market", "prices", "bot", "recorder", "worker", "sim", "scheduler", "api")


class Killed(Exception):
    """Raised inside a component by the test."""


class ThreadKilled(BaseException):
    """Ends the scheduler's loop thread: passes its guard, which catches Exception."""


def raising_once(real: Callable[..., Any], name: str) -> Callable[..., Any]:
    """`real`, except that its first call raises `Killed(name)`."""
    calls = 0

    def once(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise Killed(name)
        return real(*args, **kwargs)

    return once


def viewer_token(system: Services) -> str:
    """An access token of a viewer the store knows, signed in (a login family of its own):
    the API admits no other to its health details."""
    tokens = TokenService(
        load_jwt_secret(system.app.settings), timedelta(minutes=5), timedelta(minutes=5)
    )
    with session_scope(system.app.sessions) as session:
        user = get_user(session, "viewer") or add_user(session, "viewer", "x", "viewer")
        session.flush()
        family = start_family(session, user.id, datetime.now(UTC) + timedelta(minutes=5))
        token, _ = tokens.issue(
            user.username, user.role, version=user.token_version, family=family.id
        )
    return token


async def get_health(system: Services) -> dict[str, Any]:
    """`/api/health` as a signed-in caller sees it (an anonymous one gets the status alone)."""
    token = viewer_token(system)
    async with (
        aiohttp.ClientSession() as client,
        client.get(
            f"{system.api_url}/api/health", headers={"Authorization": f"Bearer {token}"}
        ) as response,
    ):
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        return body


def status(system: Services, name: str) -> ComponentStatus:
    return next(s for s in system.supervisor.statuses() if s.name == name)


async def kill_and_watch_it_come_back(
    system: Services,
    name: str,
    kill: Callable[[], None],
    works: Callable[[], int],
    error: str | None = None,
) -> None:
    """`kill()` makes component `name` raise inside; it must be shown down with `error`
    (default: the `Killed` raised), restarted, and then `works()` (a count of what it does)
    must go up again."""
    restarts = status(system, name).restarts
    kill()
    await wait_for(lambda: status(system, name).state == "down", 30, f"{name} down")
    health = await get_health(system)
    down = status(system, name)
    assert down.last_error == (error or f"Killed: {name}")
    others = [s for s in system.supervisor.statuses() if s.name != name]
    assert all(s.up for s in others), others
    # What the API says meanwhile (the pause before the restart is 0.3 s).
    assert health["status"] == "degraded"
    assert health["components"][name]["state"] == "down"
    await wait_for(lambda: status(system, name).up, 30, f"{name} back")
    assert status(system, name).restarts == restarts + 1
    back = (await get_health(system))["components"][name]
    assert (back["state"], back["restarts"]) == ("restarting", restarts + 1)
    done = works()
    await wait_for(lambda: works() > done, 30, f"{name} working again")


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
async def test_each_component_that_dies_is_restarted(tmp_path: Path) -> None:
    app = make_app(
        f"sqlite:///{tmp_path / 'sigma.db'}",
        api_port=free_port(),
        var_dir=tmp_path / "var",
        worker_prefetch=1,
        feed_speed=240.0,  # a 1-minute bar every 0.25 s: the bot and the sim see bars soon
    )
    system = Services(app, COMPONENTS, serve_embedded)
    # Long enough a pause to see each component down; short enough for the test.
    system.supervisor.backoff = Backoff(first=0.3, healthy_after=60)
    alerts: list[str] = []

    async def alert(message: str) -> None:
        alerts.append(message)

    system.supervisor.alert = alert
    async with running(system):
        prices, bot, recorder = system.prices, system.bot, system.recorder
        worker, sim, scheduler = system.worker, system.sim, system.scheduler
        assert prices and bot and recorder and worker and sim and scheduler

        def kill_prices() -> None:
            # A session that fails, then a failure in the reconnect path: the loop ends.
            prices.cleaner.clean = raising_once(prices.cleaner.clean, "session")
            prices.backoff.next_delay = raising_once(prices.backoff.next_delay, "prices")

        await kill_and_watch_it_come_back(system, "prices", kill_prices, lambda: prices.received)

        def kill_bot() -> None:
            bot.decode = raising_once(bot.decode, "bot")

        await kill_and_watch_it_come_back(system, "bot", kill_bot, lambda: bot.counters.ticks)

        def kill_recorder() -> None:
            recorder.decode = raising_once(recorder.decode, "recorder")

        await kill_and_watch_it_come_back(
            system, "recorder", kill_recorder, lambda: recorder.recorder.writer.written
        )

        def kill_sim() -> None:
            sim.bar_closed = raising_once(sim.bar_closed, "sim")

        await kill_and_watch_it_come_back(system, "sim", kill_sim, lambda: sim.bars_seen)

        handled = 0

        async def handle(_delivery: Any) -> None:
            nonlocal handled
            handled += 1

        async def publish() -> None:
            while True:
                await system.queue.publish(QUEUE_ORDERS, b"{}")
                await asyncio.sleep(0.05)

        def kill_worker() -> None:
            # The order queue's consumer fails while it handles a failed message: its one
            # consumer (prefetch 1) ends, and with it the worker's consumption.
            queue: Any = system.queue
            queue._failed = raising_once(queue._failed, "worker")
            worker.handle = raising_once(handle, "handler")

        feeder = asyncio.create_task(publish())
        try:
            await kill_and_watch_it_come_back(
                # The queue's consumer swallows its consumers' errors: it just returns.
                system,
                "worker",
                kill_worker,
                lambda: handled,
                "it returned",
            )
        finally:
            feeder.cancel()

        loop = scheduler.scheduler

        def kill_scheduler() -> None:
            def die() -> None:
                del loop._process_jobs  # the revived thread runs the real one
                raise ThreadKilled

            loop._process_jobs = die
            loop.wakeup()

        def config_syncs() -> int:
            # Runs of a cheap job, made due now: only a live loop runs them.
            scheduler.trigger("config_sync", datetime.now(UTC))
            return sum(r.outcome == "success" for r in scheduler.manager.history("config_sync"))

        await kill_and_watch_it_come_back(
            system,
            "scheduler",
            kill_scheduler,
            config_syncs,
            "SchedulerDied: the scheduler's loop thread ended: no job would run",
        )
        assert loop.alive
    died = [a.split(" (")[0] for a in alerts]
    order = ("prices", "bot", "recorder", "sim", "worker", "scheduler")
    assert died == [f"component {n} died" for n in order]

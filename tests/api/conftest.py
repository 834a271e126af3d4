"""API fixtures: a migrated SQLite (or PostgreSQL schema) database, the API on an in-process
bus, and one user per role."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import uvicorn
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, make_url, text

from sigma.api import api_deps, create_api
from sigma.api.context import ApiContext
from sigma.api.server import api_server
from sigma.api.users import create_user, get_user
from sigma.bootstrap import App
from sigma.bus.memory import InMemoryPubSub
from sigma.config import load_settings
from sigma.regime.news import NewsHandler
from sigma.runtime import operator
from sigma.scheduler.service import SchedulerService
from sigma.scheduler.tasks import JobContext, JobSpec, TaskManager
from sigma.store.auth_sessions import start_family
from sigma.store.db import session_scope

PASSWORD = "correct-horse-battery"
ROLES = ("viewer", "trader", "admin")


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_app(database_url: str, var_dir: Path, **overrides: object) -> App:
    """An App on `database_url` with cheap password hashing."""
    return App(
        load_settings(database_url=database_url, var_dir=var_dir, bcrypt_rounds=4, **overrides)
    )


@contextlib.contextmanager
def serving(app: App) -> Iterator[tuple[int, FastAPI, uvicorn.Server]]:
    """The API of `app` behind the uvicorn server `sigma api` runs, in a thread, on a port of
    the system's choice: the port, the app and the server."""
    api = create_api(api_deps(app), InMemoryPubSub(), static_dir=None)
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    server = api_server(app.settings, api)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    try:
        yield listening.getsockname()[1], api, server
    finally:
        server.should_exit = True
        thread.join(30)
        listening.close()


def add_users(app: App) -> None:
    """One user per role, named after it."""
    with session_scope(app.sessions) as session:
        for role in ROLES:
            create_user(session, role, PASSWORD, role, rounds=4)


@pytest.fixture(autouse=True)
def _no_bot_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """No bot answers commands in these tests: do not wait seconds for one."""
    monkeypatch.setattr(operator, "ACK_TIMEOUT", 0.05)


@pytest.fixture
def sigma_app(tmp_path: Path) -> Iterator[App]:
    """A migrated SQLite database with the three users."""
    app = make_app(f"sqlite:///{tmp_path / 'sigma.db'}", tmp_path / "var")
    add_users(app)
    yield app
    app.close()


@pytest.fixture
def pg_app(pg_url: str, tmp_path: Path) -> Iterator[App]:
    """The same on a fresh schema of the session's PostgreSQL database."""
    base = make_url(pg_url)
    schema = f"api_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = base.update_query_dict({"options": f"-csearch_path={schema}"})
    app = make_app(url.render_as_string(hide_password=False), tmp_path / "var")
    add_users(app)
    try:
        yield app
    finally:
        app.close()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def pubsub() -> InMemoryPubSub:
    """The in-process bus the API relays to WebSocket clients."""
    return InMemoryPubSub()


@pytest.fixture
def clock() -> FakeClock:
    """The login throttle's clock."""
    return FakeClock()


@pytest.fixture
def slow_started() -> threading.Event:
    """Set once the scheduler's `slow` job is running."""
    return threading.Event()


@pytest.fixture
def scheduler(sigma_app: App, slow_started: threading.Event) -> Iterator[SchedulerService]:
    """A scheduler with three jobs whose store is open but which runs nothing by itself;
    `slow` reports half-way, then waits to be cancelled."""

    def slow_job(ctx: JobContext) -> None:
        ctx.report(1, 2)
        slow_started.set()
        ctx.cancel.wait(30)
        ctx.check_cancel()

    manager = TaskManager(sigma_app.sessions)
    manager.register(JobSpec("hourly", lambda ctx: 1, IntervalTrigger(hours=1), "every hour"))
    manager.register(
        JobSpec("nightly", lambda ctx: None, CronTrigger.from_crontab("0 3 * * *"), "03:00")
    )
    manager.register(JobSpec("slow", slow_job, IntervalTrigger(days=1), "waits"))
    service = SchedulerService(sigma_app.db, manager, timezone="UTC")
    service.start(paused=True)
    service.sync(manager.specs.values())
    yield service
    service.shutdown(wait=False)


@pytest.fixture
def api(
    sigma_app: App, pubsub: InMemoryPubSub, clock: FakeClock, scheduler: SchedulerService
) -> FastAPI:
    """The API as `sigma up` runs it (news handler, scheduler), without a dashboard build."""
    return create_api(
        api_deps(sigma_app),
        pubsub,
        static_dir=None,
        clock=clock,
        news=NewsHandler(),
        scheduler=scheduler,
    )


@pytest.fixture
def client(api: FastAPI) -> Iterator[TestClient]:
    """A client with the lifespan (WebSocket relay) running."""
    with TestClient(api) as test_client:
        yield test_client


def issue_token(api: FastAPI, username: str) -> str:
    """A valid access token of `username` without a login (no throttle, no bcrypt): a new
    login family in the store and a token of the user's current version."""
    ctx: ApiContext = api.state.ctx
    with session_scope(ctx.deps.sessions) as session:
        user = get_user(session, username)
        assert user is not None, username
        family = start_family(session, user.id, ctx.tokens.expiry("refresh"))
        token, _ = ctx.tokens.issue(
            user.username, user.role, version=user.token_version, family=family.id
        )
    return token


def login(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    """Authorization headers from a real login."""
    response = client.post("/api/auth/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture
def auth(client: TestClient) -> Callable[[str], dict[str, str]]:
    """Headers of the user with the given role (logged in once each)."""
    cache: dict[str, dict[str, str]] = {}

    def headers(role: str) -> dict[str, str]:
        if role not in cache:
            cache[role] = login(client, role)
        return cache[role]

    return headers

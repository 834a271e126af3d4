"""Shared fixtures: a throwaway PostgreSQL database per test session, a fresh database per test
on SQLite and PostgreSQL (each test its own schema), real Redis/RabbitMQ URLs."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.orm import Session

from sigma.store import init_db, session_factory

PG_ADMIN_URL = os.environ.get(
    "SIGMA_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _sqlalchemy_url(dbname: str) -> str:
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{dbname}"


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped afterwards.

    Fails (never skips) when the server is unreachable: the real database is part of the suite.
    """
    name = f"sigma_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:  # pragma: no cover - depends on the machine
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _sqlalchemy_url(name)
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


REDIS_URL = os.environ.get("SIGMA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("SIGMA_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The real Redis server; fails (never skips) when it is unreachable."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:  # pragma: no cover - depends on the machine
        pytest.fail(f"Redis is not reachable at {REDIS_URL}: {exc}")
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture(scope="session")
def amqp_url() -> str:
    """The real RabbitMQ server; fails (never skips) when it is unreachable."""
    import socket
    from urllib.parse import urlparse

    parsed = urlparse(AMQP_URL)
    try:
        socket.create_connection((parsed.hostname, parsed.port or 5672), timeout=5).close()
    except OSError as exc:  # pragma: no cover - depends on the machine
        pytest.fail(f"RabbitMQ is not reachable at {AMQP_URL}: {exc}")
    return AMQP_URL


@pytest.fixture
def bus_prefix() -> str:
    """A unique prefix for channel and queue names, so tests never see each other's traffic."""
    return f"t{uuid.uuid4().hex[:10]}."


@contextlib.contextmanager
def _pg_schema(pg_url: str) -> Iterator[str]:
    """A fresh schema in the session database and a URL whose search_path points at it."""
    base = make_url(pg_url)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = base.update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("pg", marks=pytest.mark.pg)])
def db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """URL of an empty database (SQLite file in a folder that does not exist yet, or PG schema)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('store') / 'nested' / 'sigma.db'}"
        return
    with _pg_schema(request.getfixturevalue("pg_url")) as url:
        yield url


@pytest.fixture
def pg_schema_url(pg_url: str) -> Iterator[str]:
    """URL of an empty PostgreSQL schema of its own (PostgreSQL-only tests)."""
    with _pg_schema(pg_url) as url:
        yield url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A migrated engine."""
    eng = init_db(db_url)
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session on the migrated database; whatever it leaves uncommitted is rolled back."""
    with session_factory(engine)() as s:
        yield s
        s.rollback()

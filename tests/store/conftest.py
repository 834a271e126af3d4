"""Store fixtures: every test runs on a fresh SQLite file and on a fresh PostgreSQL schema.

PostgreSQL isolation: the session database from `pg_url` is shared, so each test gets its own
schema and a URL whose `search_path` points at it - as fresh as a new SQLite file.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.orm import Session

from sigma.store import init_db, session_factory


@pytest.fixture(params=["sqlite", pytest.param("pg", marks=pytest.mark.pg)])
def db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """URL of an empty database (SQLite file in a folder that does not exist yet, or PG schema)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('store') / 'nested' / 'sigma.db'}"
        return
    base = make_url(request.getfixturevalue("pg_url"))
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

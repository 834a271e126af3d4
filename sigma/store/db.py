"""Engines, migrations and sessions.

`init_db(url)` is what the application calls at start: it builds the engine and brings the
schema to the newest Alembic revision (a no-op when it is already there).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, create_engine, inspect, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session, sessionmaker

from sigma.store.revision import MIGRATIONS_DIR, shipped_head
from sigma.store.sqlite import (
    BUSY_TIMEOUT,
    DatabaseFileError,
    configure_reader,
    configure_writer,
)
from sigma.store.timescale import enable_timescale

if TYPE_CHECKING:
    from alembic.config import Config

# Arbitrary constant: serialises concurrent `migrate` calls from several processes on PostgreSQL.
_MIGRATION_LOCK_KEY = 0x5167_0001
log = logging.getLogger(__name__)


def normalize_url(url: str | URL) -> URL:
    """Parse `url`; a bare postgresql:// URL gets the psycopg (v3) driver SIGMA ships with."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _sqlite_file(url: URL) -> Path | None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def create_db_engine(
    url: str | URL, *, echo: bool = False, busy_timeout: float = BUSY_TIMEOUT
) -> Engine:
    """An engine for a SQLite or PostgreSQL URL.

    SQLite: the database file's folder is created, foreign keys are enforced, WAL journaling
    is on, transactions include DDL and take the write lock up front (waiting up to
    `busy_timeout` seconds, then retried: `sigma.store.sqlite`); a file SQLite cannot use
    (no database, damaged, not writable, its disk full) raises `DatabaseFileError` naming
    it. PostgreSQL: connections are pinged before use so a restarted server does not surface
    as errors.
    """
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = _sqlite_file(parsed)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DatabaseFileError(
                    f"SQLite database {path}: cannot make its folder {path.parent}: "
                    f"{exc.strerror or exc}"
                ) from exc
        engine = create_engine(parsed, echo=echo)
        configure_writer(engine, busy_timeout=busy_timeout)
        return engine
    return create_engine(parsed, echo=echo, pool_pre_ping=True)


def read_engine(engine: Engine, *, busy_timeout: float = BUSY_TIMEOUT) -> Engine:
    """An engine for read-only work on `engine`'s database.

    On a SQLite file: an engine of its own whose connections are query-only and whose
    transactions never take the write lock, so reads neither wait for writers nor hold them
    up. Elsewhere (PostgreSQL, where readers never block writers; an in-memory SQLite
    database, which exists once per connection pool): `engine` itself.
    """
    if engine.dialect.name != "sqlite" or _sqlite_file(engine.url) is None:
        return engine
    reader = create_engine(engine.url, echo=engine.echo)
    configure_reader(reader, busy_timeout=busy_timeout)
    return reader


# Tables other libraries create and migrate themselves in SIGMA's database: APScheduler's job
# store (made by `SQLAlchemyJobStore` when a scheduler starts). Alembic's autogenerate must not
# offer to drop them. (optuna's tables never share SIGMA's schema: see
# `sigma.store.optuna_storage`.)
FOREIGN_TABLES = frozenset({"apscheduler_jobs"})


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's filter: leave the `FOREIGN_TABLES` out of autogenerate's comparison."""
    return not (type_ == "table" and name in FOREIGN_TABLES)


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic configuration pointing into the package; no alembic.ini is needed.

    With `connection`, Alembic commands run on it (inside its transaction).
    """
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision shipped in `sigma/store/migrations/versions`."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the migrations folder has no revisions"
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None before the first migration."""
    with engine.connect() as conn:
        return _revision_of(conn)


def _revision_of(conn: Connection) -> str | None:
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def migrate(engine: Engine) -> None:
    """Upgrade the schema to head, then enable TimescaleDB hypertables where available.

    Safe to call at every start: an up-to-date database is left untouched. All steps run in one
    transaction; on PostgreSQL an advisory lock keeps concurrent starts from racing.
    """
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
        before = _revision_of(conn)
        if before != shipped_head():
            with _quiet_alembic():
                from alembic import command  # its plugins log as they load

                command.upgrade(alembic_config(conn), "head")
            log.info("database schema upgraded from %s to %s", before or "empty", shipped_head())
        enable_timescale(conn)


@contextmanager
def _quiet_alembic() -> Iterator[None]:
    """Alembic's INFO records (its plugins, then each revision's whole docstring) are one line
    here instead: on a fresh store they were 40 lines on the stderr of the first `sigma
    backtest`, above its result or its one-line error."""
    alembic = logging.getLogger("alembic")
    level = alembic.level
    alembic.setLevel(max(logging.WARNING, level))
    try:
        yield
    finally:
        alembic.setLevel(level)


def init_db(url: str | URL, *, echo: bool = False, busy_timeout: float = BUSY_TIMEOUT) -> Engine:
    """Create the engine for `url` (see `create_db_engine`) and migrate its schema to head."""
    engine = create_db_engine(url, echo=echo, busy_timeout=busy_timeout)
    migrate(engine)
    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions bound to `engine`. Objects stay readable after commit (no expire)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A unit of work: one session and transaction, committed on success, rolled back on error.

    >>> with session_scope(factory) as session:  # doctest: +SKIP
    ...     save_backtest(session, result)
    """
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()

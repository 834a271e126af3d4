"""Engines, migrations and sessions.

`init_db(url)` is what the application calls at start: it builds the engine and brings the
schema to the newest Alembic revision (a no-op when it is already there).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session, sessionmaker

from sigma.store.timescale import enable_timescale

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# Arbitrary constant: serialises concurrent `migrate` calls from several processes on PostgreSQL.
_MIGRATION_LOCK_KEY = 0x5167_0001


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


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own transaction handling skips BEGIN before DDL; turning it off and
        # emitting BEGIN ourselves (below) makes migrations and savepoints transactional.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            # WAL lets the API read while the engine writes.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=5000")
            # In WAL mode NORMAL syncs at checkpoints, not at every commit: a committed order
            # survives a crash of the process (only an OS crash or power loss can lose the
            # last commits). FULL costs an fsync per order, which caps the embedded default
            # at a few dozen orders per second on ordinary disks.
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # IMMEDIATE takes the write lock up front: a deferred transaction that reads and then
        # writes fails at once with "database is locked" when another writer got in between
        # (busy_timeout cannot help there), while IMMEDIATE simply waits its turn.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_db_engine(url: str | URL, *, echo: bool = False) -> Engine:
    """An engine for a SQLite or PostgreSQL URL.

    SQLite: the database file's folder is created, foreign keys are enforced, WAL journaling
    is on and transactions include DDL. PostgreSQL: connections are pinged before use so a
    restarted server does not surface as errors.
    """
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = _sqlite_file(parsed)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, echo=echo)
        _configure_sqlite(engine)
        return engine
    return create_engine(parsed, echo=echo, pool_pre_ping=True)


# Tables other libraries create and migrate themselves in SIGMA's database: APScheduler's job
# store (made by `SQLAlchemyJobStore` when a scheduler starts). Alembic's autogenerate must not
# offer to drop them. (optuna's tables never share SIGMA's schema: see
# `sigma.research.optimize.study_storage`.)
FOREIGN_TABLES = frozenset({"apscheduler_jobs"})


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's filter: leave the `FOREIGN_TABLES` out of autogenerate's comparison."""
    return not (type_ == "table" and name in FOREIGN_TABLES)


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic configuration pointing into the package; no alembic.ini is needed.

    With `connection`, Alembic commands run on it (inside its transaction).
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision shipped in `sigma/store/migrations/versions`."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the migrations folder has no revisions"
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None before the first migration."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def migrate(engine: Engine) -> None:
    """Upgrade the schema to head, then enable TimescaleDB hypertables where available.

    Safe to call at every start: an up-to-date database is left untouched. All steps run in one
    transaction; on PostgreSQL an advisory lock keeps concurrent starts from racing.
    """
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
        command.upgrade(alembic_config(conn), "head")
        enable_timescale(conn)


def init_db(url: str | URL, *, echo: bool = False) -> Engine:
    """Create the engine for `url` and migrate its schema to head."""
    engine = create_db_engine(url, echo=echo)
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

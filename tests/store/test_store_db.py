"""Engines, migrations and the unit of work."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Engine, Integer, MetaData, Table, inspect, select, text
from sqlalchemy.exc import OperationalError

from sigma.store import (
    create_db_engine,
    current_revision,
    has_timescale,
    head_revision,
    init_db,
    migrate,
    session_factory,
    session_scope,
)
from sigma.store.db import alembic_config, normalize_url, read_engine, shipped_head
from sigma.store.models import Base, User
from sigma.store.sqlite import (
    RETRY_PAUSE,
    RETRY_PAUSE_MAX,
    WRITE_ATTEMPTS,
    DatabaseFileError,
    is_lock_error,
    retry_pause,
)
from sigma.store.sqlite_file import file_problem
from sigma.store.timescale import enable_timescale


def _diff(engine: Engine, metadata: MetaData) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, metadata))


def test_migrated_schema_matches_the_models(engine: Engine) -> None:
    assert _diff(engine, Base.metadata) == []


def test_compare_metadata_does_see_drift(engine: Engine) -> None:
    # Guards the test above against comparing nothing: an extra table must show up.
    drifted = MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(drifted)
    Table("not_migrated", drifted, Column("id", Integer, primary_key=True))
    assert [d[0] for d in _diff(engine, drifted)] == ["add_table"]


def test_migrate_from_empty_then_again_is_a_noop(db_url: str) -> None:
    engine = create_db_engine(db_url)
    try:
        assert current_revision(engine) is None
        migrate(engine)
        assert current_revision(engine) == head_revision()
        tables = set(inspect(engine).get_table_names())
        assert set(Base.metadata.tables) | {"alembic_version"} == tables
        with session_scope(session_factory(engine)) as s:
            s.add(User(username="kept", password_hash="x"))
        migrate(engine)
        assert current_revision(engine) == head_revision()
        assert set(inspect(engine).get_table_names()) == tables
        with session_factory(engine)() as s:
            assert s.scalars(select(User.username)).all() == ["kept"]
    finally:
        engine.dispose()


def test_downgrade_to_base_and_back(engine: Engine) -> None:
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    assert current_revision(engine) is None
    migrate(engine)
    assert _diff(engine, Base.metadata) == []


def test_init_db_is_safe_at_every_start(db_url: str) -> None:
    for _ in range(2):
        engine = init_db(db_url)
        assert current_revision(engine) == head_revision()
        engine.dispose()


def test_sqlite_engine_creates_folder_and_sets_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "sigma.db"
    engine = create_db_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert path.parent.is_dir()
    finally:
        engine.dispose()


def test_sqlite_memory_engine_needs_no_folder() -> None:
    engine = init_db("sqlite://")
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_sqlite_ddl_is_transactional(tmp_path: Path) -> None:
    # A failed migration must not leave half a schema behind.
    engine = create_db_engine(f"sqlite:///{tmp_path / 'tx.db'}")
    try:
        with pytest.raises(RuntimeError), engine.begin() as conn:
            conn.execute(text("CREATE TABLE half (id INTEGER)"))
            raise RuntimeError("boom")
        assert "half" not in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_bare_postgresql_url_gets_psycopg_driver() -> None:
    assert normalize_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("sqlite:///x.db").drivername == "sqlite"


def test_postgresql_engine_pings_its_pool() -> None:
    engine = create_db_engine("postgresql://u@127.0.0.1:1/none")
    assert engine.pool._pre_ping  # type: ignore[attr-defined]
    engine.dispose()


def test_alembic_config_points_into_the_package() -> None:
    location = Path(alembic_config().get_main_option("script_location") or "")
    assert (location / "env.py").is_file()
    assert (location / "versions" / "0001_initial.py").is_file()


def test_session_scope_commits_or_rolls_back(engine: Engine) -> None:
    factory = session_factory(engine)
    with session_scope(factory) as s:
        s.add(User(username="alice", password_hash="h"))
    with pytest.raises(RuntimeError), session_scope(factory) as s:
        s.add(User(username="bob", password_hash="h"))
        s.flush()
        raise RuntimeError("abort the unit of work")
    with session_scope(factory) as s:
        assert s.scalars(select(User.username)).all() == ["alice"]


def test_timescale_only_when_the_server_has_it(engine: Engine) -> None:
    with engine.connect() as conn:
        available = conn.dialect.name == "postgresql" and (
            conn.execute(
                text("SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'")
            ).scalar()
            == 1
        )
    assert has_timescale(engine) is available
    with engine.begin() as conn:
        assert enable_timescale(conn) is available
        if available:  # pragma: no cover - only on a server with timescaledb
            tables = conn.execute(
                text("SELECT hypertable_name FROM timescaledb_information.hypertables")
            ).scalars()
            assert {"ticks", "bars"} <= set(tables)


def _hold_write_lock(path: Path) -> sqlite3.Connection:
    """Another process's writer, in the middle of a transaction."""
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute(
        "INSERT INTO users (username, password_hash, role, active, created_at)"
        " VALUES ('holder', 'x', 'viewer', 1, '2024-01-01 00:00:00')"
    )
    return holder


def test_sqlite_reads_neither_take_nor_wait_for_the_write_lock(tmp_path: Path) -> None:
    writer = init_db(f"sqlite:///{tmp_path / 'wal.db'}", busy_timeout=0.05)
    reader = read_engine(writer, busy_timeout=0.05)
    try:
        with session_scope(session_factory(writer)) as s:
            s.add(User(username="kept", password_hash="x"))
        holder = _hold_write_lock(tmp_path / "wal.db")
        try:
            started = time.monotonic()
            with session_factory(reader)() as s:
                # The committed row, not the holder's uncommitted one, and at once.
                assert s.scalars(select(User.username)).all() == ["kept"]
            assert time.monotonic() - started < 0.5
            # ...while a writer of this process does wait for the lock.
            with (
                pytest.raises(OperationalError, match="database is locked"),
                writer.begin() as conn,
            ):
                conn.execute(text("SELECT 1"))
        finally:
            holder.rollback()
            holder.close()
        with reader.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            with pytest.raises(OperationalError, match="readonly"):
                conn.execute(text("DELETE FROM users"))
    finally:
        reader.dispose()
        writer.dispose()


def test_read_engine_is_the_engine_itself_where_readers_never_block(db_url: str) -> None:
    memory = create_db_engine("sqlite://")
    engine = create_db_engine(db_url)
    try:
        assert read_engine(memory) is memory
        assert (read_engine(engine) is engine) == (engine.dialect.name == "postgresql")
    finally:
        memory.dispose()
        engine.dispose()


def test_a_sqlite_writer_retries_a_held_lock_and_logs_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    writer = init_db(f"sqlite:///{tmp_path / 'retry.db'}", busy_timeout=0.05)
    holder = _hold_write_lock(tmp_path / "retry.db")
    # The lock goes after the first tries have failed; a later try gets it.
    release = threading.Timer(0.12, holder.commit)
    release.start()
    try:
        with (
            caplog.at_level(logging.WARNING, "sigma.store.sqlite"),
            session_scope(session_factory(writer)) as s,
        ):
            s.add(User(username="after", password_hash="x"))
        with session_factory(writer)() as s:
            assert sorted(s.scalars(select(User.username))) == ["after", "holder"]
        assert "database is locked: BEGIN IMMEDIATE retried" in caplog.text
    finally:
        release.join()
        holder.close()
        writer.dispose()


def test_a_sqlite_writer_gives_up_after_its_tries(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    writer = init_db(f"sqlite:///{tmp_path / 'busy.db'}", busy_timeout=0.01)
    holder = _hold_write_lock(tmp_path / "busy.db")
    try:
        with (
            caplog.at_level(logging.WARNING, "sigma.store.sqlite"),
            pytest.raises(OperationalError) as raised,
            writer.begin() as conn,
        ):
            conn.execute(text("SELECT 1"))
        assert is_lock_error(raised.value)
        assert caplog.text.count("BEGIN IMMEDIATE retried") == WRITE_ATTEMPTS - 1
    finally:
        holder.rollback()
        holder.close()
        writer.dispose()


def test_only_lock_errors_are_retried() -> None:
    assert not is_lock_error(sqlite3.OperationalError("no such table: x"))
    assert not is_lock_error(ValueError("database is locked"))
    assert [retry_pause(n) for n in (1, 2, 3)] == [RETRY_PAUSE, 2 * RETRY_PAUSE, 4 * RETRY_PAUSE]
    assert retry_pause(50) == RETRY_PAUSE_MAX


def test_the_shipped_head_read_from_the_files_is_alembics() -> None:
    assert shipped_head() == head_revision()


def test_a_database_one_revision_behind_is_brought_to_head(engine: Engine) -> None:
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "-1")
    assert current_revision(engine) not in (None, head_revision())
    migrate(engine)
    assert current_revision(engine) == head_revision()
    assert _diff(engine, Base.metadata) == []


# A fresh interpreter: this one has imported Alembic for the tests above.
START_AT_HEAD = """
import sys
from sigma.store.db import init_db

init_db(sys.argv[1]).dispose()
assert "alembic" not in sys.modules, "a database at head loaded Alembic"
"""


def test_a_start_on_a_database_at_head_does_not_load_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sigma.db'}"
    init_db(url).dispose()
    done = subprocess.run(
        [sys.executable, "-c", START_AT_HEAD, url], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def test_migrating_logs_one_line_not_alembic_s_steps(db_url: str) -> None:
    # A process of its own: alembic logs its plugins when first imported.
    script = (
        "import logging, sys; logging.basicConfig(level='INFO', format='%(name)s: %(message)s')\n"
        "from sigma.store.db import create_db_engine, migrate\n"
        "engine = create_db_engine(sys.argv[1]); migrate(engine); migrate(engine)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, db_url], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        f"sigma.store.db: database schema upgraded from empty to {head_revision()}"
    ]


# --- a database file SQLite cannot use ------------------------------------------------------
RESTORE = "restore it from a backup, or move it aside to start an empty one"


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("header", "file is not a database (SQLITE_NOTADB)"),
        ("truncated", "database disk image is malformed (SQLITE_CORRUPT)"),
    ],
)
def test_a_damaged_database_file_is_named_at_start_and_left_as_it_was(
    tmp_path: Path, damage: str, reason: str
) -> None:
    """A file overwritten at its start, or cut short (a copy that never finished): the
    start fails with the file, SQLite's reason and what to do, and the file is untouched
    (nothing is migrated over it)."""
    path = tmp_path / "sigma.db"
    init_db(f"sqlite:///{path}").dispose()
    data = path.read_bytes()
    damaged = b"not SQLite" + data[10:] if damage == "header" else data[: len(data) // 3]
    path.write_bytes(damaged)
    with pytest.raises(DatabaseFileError) as raised:
        init_db(f"sqlite:///{path}")
    assert str(raised.value) == f"SQLite database {path}: {reason}; {RESTORE}"
    assert path.read_bytes() == damaged


def test_a_full_disk_names_the_file_and_keeps_what_was_committed(tmp_path: Path) -> None:
    """SQLite's "database or disk is full" (the file may not grow: `max_page_count` stands
    in for the disk) names the file; the transaction is undone and the rows committed
    before stay."""
    path = tmp_path / "sigma.db"
    engine = create_db_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE filler (b BLOB)")
            conn.exec_driver_sql("INSERT INTO filler VALUES (randomblob(100))")
        with pytest.raises(DatabaseFileError) as raised, engine.begin() as conn:
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
            conn.exec_driver_sql(f"PRAGMA max_page_count = {pages}")
            conn.exec_driver_sql("INSERT INTO filler VALUES (randomblob(100000))")
        assert str(raised.value) == (
            f"SQLite database {path}: database or disk is full (SQLITE_FULL); "
            "free space on its disk"
        )
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM filler").scalar() == 1
    finally:
        engine.dispose()


def test_a_folder_that_cannot_be_made_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where the folder should be")
    path = blocker / "sigma.db"
    with pytest.raises(DatabaseFileError, match=r"cannot make its folder") as raised:
        create_db_engine(f"sqlite:///{path}")
    assert str(raised.value).startswith(f"SQLite database {path}: cannot make its folder {blocker}")


def test_statement_and_lock_errors_stay_what_they_are(tmp_path: Path) -> None:
    """Only errors about the file are turned into DatabaseFileError: a bad statement is
    SQLAlchemy's error as before, and a lock error still reads as one (it is retried)."""
    engine = create_db_engine(f"sqlite:///{tmp_path / 'sigma.db'}")
    try:
        with pytest.raises(OperationalError, match="no such table"), engine.connect() as conn:
            conn.exec_driver_sql("SELECT * FROM nowhere")
    finally:
        engine.dispose()
    locked = sqlite3.OperationalError("database is locked")
    locked.sqlite_errorcode = sqlite3.SQLITE_BUSY  # type: ignore[attr-defined]
    assert file_problem(locked, "x.db") is None and is_lock_error(locked)
    assert file_problem(ValueError("full"), "x.db") is None
    readonly = sqlite3.OperationalError("attempt to write a readonly database")
    readonly.sqlite_errorcode = sqlite3.SQLITE_READONLY  # type: ignore[attr-defined]
    assert file_problem(readonly, "x.db", query_only=True) is None
    assert file_problem(readonly, "x.db") is not None


def test_0023_refuses_names_differing_only_in_case_and_names_them(engine: Engine) -> None:
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0022")
    with session_scope(session_factory(engine)) as s:
        s.add_all(User(username=n, password_hash="x") for n in ("admin", "bob", "Admin"))
    with pytest.raises(RuntimeError, match=r"differ only in case.*'Admin', 'admin'$"):
        migrate(engine)
    assert current_revision(engine) == "0022"
    with session_scope(session_factory(engine)) as s:
        s.execute(text("UPDATE users SET username = 'admin2' WHERE username = 'Admin'"))
    migrate(engine)
    assert current_revision(engine) == head_revision()

"""A SQLite file's writing connection as `sigma.store.sqlite` configures SQLAlchemy's, on the
standard library's `sqlite3` alone: the pragmas every connection gets and the write lock
taken up front (`BEGIN IMMEDIATE`, retried while another writer holds it). Shared by both, so
a command that writes through `sqlite3` directly (`sigma.store.backtest_file`) behaves as the
rest of SIGMA does under concurrent use, without SQLAlchemy's import.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger("sigma.store.sqlite")

BUSY_TIMEOUT = 5.0
"""Seconds a statement waits for a lock before SQLite answers "database is locked"."""
WRITE_ATTEMPTS = 4
"""Tries of `BEGIN IMMEDIATE` before the lock error reaches the caller."""
RETRY_PAUSE = 0.05
"""Seconds before the first retry; doubled after each, at most `RETRY_PAUSE_MAX`."""
RETRY_PAUSE_MAX = 1.0
# SQLITE_BUSY and SQLITE_LOCKED: the primary codes of every "database is locked/busy" error.
_LOCK_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})


class DatabaseFileError(ValueError):
    """The SQLite database file cannot be used: it is no database or a damaged one, cannot
    be opened or written, or its disk is full. The message names the file, SQLite's reason
    and what to do; retrying does not help until someone does it."""


# Primary result codes that are about the file, not the statement, and what to do about each.
_FILE_CODES = {
    sqlite3.SQLITE_NOTADB: "restore it from a backup, or move it aside to start an empty one",
    sqlite3.SQLITE_CORRUPT: "restore it from a backup, or move it aside to start an empty one",
    sqlite3.SQLITE_FULL: "free space on its disk",
    sqlite3.SQLITE_READONLY: "make the file and its folder writable for this user",
    sqlite3.SQLITE_CANTOPEN: "make the file and its folder writable for this user",
    sqlite3.SQLITE_PERM: "make the file and its folder writable for this user",
    sqlite3.SQLITE_IOERR: "check the disk it is on",
}


def file_problem(
    exc: BaseException, path: str | Path | None, *, query_only: bool = False
) -> DatabaseFileError | None:
    """What the `sqlite3` error `exc` says about the database file at `path`, as an error
    naming the file; None for errors of a statement or a lock. On a `query_only` connection
    "readonly" is the answer to a write, not a property of the file."""
    code = getattr(exc, "sqlite_errorcode", None)
    if not isinstance(exc, sqlite3.Error) or code is None:
        return None
    if query_only and code & 0xFF == sqlite3.SQLITE_READONLY:
        return None
    hint = _FILE_CODES.get(code & 0xFF)
    if hint is None:
        return None
    name = getattr(exc, "sqlite_errorname", "") or str(code)
    return DatabaseFileError(f"SQLite database {path or ':memory:'}: {exc} ({name}); {hint}")


def is_sqlite_lock_error(exc: BaseException) -> bool:
    """True when the `sqlite3` error `exc` says another connection holds the lock."""
    code = getattr(exc, "sqlite_errorcode", None)
    return (
        isinstance(exc, sqlite3.OperationalError)
        and code is not None
        and (code & 0xFF in _LOCK_CODES)
    )


def retry_pause(attempt: int) -> float:
    """Seconds to wait before try `attempt + 1` (after `attempt` failed ones)."""
    return float(min(RETRY_PAUSE_MAX, RETRY_PAUSE * 2 ** (attempt - 1)))


def set_pragmas(
    dbapi_connection: sqlite3.Connection, busy_timeout: float, *, query_only: bool
) -> None:
    """Configure a new `sqlite3` connection: transactions begun by the caller (pysqlite's
    own handling skips BEGIN before DDL), foreign keys enforced, `busy_timeout`, WAL."""
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        # WAL lets readers go on while a writer writes.
        cursor.execute("PRAGMA journal_mode=WAL")
        # In WAL mode NORMAL syncs at checkpoints, not at every commit: a committed order
        # survives a crash of the process (only an OS crash or power loss can lose the
        # last commits). FULL costs an fsync per order, which caps the embedded default
        # at a few dozen orders per second on ordinary disks.
        cursor.execute("PRAGMA synchronous=NORMAL")
        if query_only:
            cursor.execute("PRAGMA query_only=ON")
    finally:
        cursor.close()


def begin_immediate(
    execute: Callable[[str], object], is_lock_error: Callable[[BaseException], bool]
) -> None:
    """`BEGIN IMMEDIATE` through `execute`, tried again (logged) while `is_lock_error` says
    another writer holds the lock, at most WRITE_ATTEMPTS times: safe, as nothing of the
    transaction has run yet."""
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        try:
            execute("BEGIN IMMEDIATE")
            return
        except Exception as exc:
            if attempt == WRITE_ATTEMPTS or not is_lock_error(exc):
                raise
            pause = retry_pause(attempt)
            log.warning(
                "database is locked: BEGIN IMMEDIATE retried in %.2fs (try %d of %d)",
                pause,
                attempt + 1,
                WRITE_ATTEMPTS,
            )
            time.sleep(pause)


@contextmanager
def file_errors_named(path: Path) -> Iterator[None]:
    """Raise SQLite's errors about the file `path` (see `file_problem`) from inside as
    `DatabaseFileError` naming it; others as they are."""
    try:
        yield
    except sqlite3.Error as exc:
        problem = file_problem(exc, path)
        if problem is None:
            raise
        raise problem from exc


def connect_writer(path: Path, *, busy_timeout: float = BUSY_TIMEOUT) -> sqlite3.Connection:
    """A writing connection to the SQLite file `path`, configured as SIGMA's writers are;
    its transactions are begun with `begin_immediate`. A file SQLite cannot use raises
    `DatabaseFileError`."""
    with file_errors_named(path):
        connection = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)
        try:
            set_pragmas(connection, busy_timeout, query_only=False)
        except BaseException:
            connection.close()
            raise
    return connection

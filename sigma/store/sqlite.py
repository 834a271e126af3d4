"""SQLite as a default that holds under concurrent use: who takes the write lock, and for how long.

SQLite allows one writer at a time. In WAL mode readers never wait for it and never hold it up,
provided a read does not begin with the write lock. So connections come in two kinds:

- writers (`configure_writer`): every transaction begins with `BEGIN IMMEDIATE`. A deferred
  transaction that reads and then writes fails at once with "database is locked" when another
  writer committed in between (the busy timeout cannot help there), while IMMEDIATE waits its
  turn. Waiting is bounded by the busy timeout; a `BEGIN IMMEDIATE` that still finds the lock
  taken is tried again a few times with a growing pause (logged), which is safe because
  nothing of the transaction has run yet.
- readers (`configure_reader`): `query_only` connections whose transactions begin deferred
  (plain `BEGIN`): they read a snapshot and never touch the write lock.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from typing import Any

from sqlalchemy import Connection, Engine, event
from sqlalchemy.exc import OperationalError

log = logging.getLogger(__name__)

BUSY_TIMEOUT = 5.0
"""Seconds a statement waits for a lock before SQLite answers "database is locked"."""
WRITE_ATTEMPTS = 4
"""Tries of `BEGIN IMMEDIATE` before the lock error reaches the caller."""
RETRY_PAUSE = 0.05
"""Seconds before the first retry; doubled after each, at most `RETRY_PAUSE_MAX`."""
RETRY_PAUSE_MAX = 1.0
# SQLITE_BUSY and SQLITE_LOCKED: the primary codes of every "database is locked/busy" error.
_LOCK_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})


def is_lock_error(exc: BaseException) -> bool:
    """True when `exc` (a DBAPI error or SQLAlchemy's wrapper of one) says another connection
    holds the lock: worth trying again later, unlike every other database error."""
    orig = exc.orig if isinstance(exc, OperationalError) else exc
    code = getattr(orig, "sqlite_errorcode", None)
    return (
        isinstance(orig, sqlite3.OperationalError)
        and code is not None
        and (code & 0xFF in _LOCK_CODES)
    )


def retry_pause(attempt: int) -> float:
    """Seconds to wait before try `attempt + 1` (after `attempt` failed ones)."""
    return float(min(RETRY_PAUSE_MAX, RETRY_PAUSE * 2 ** (attempt - 1)))


def _pragmas(engine: Engine, busy_timeout: float, *, query_only: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own transaction handling skips BEGIN before DDL; turning it off and
        # emitting BEGIN ourselves (below) makes migrations and savepoints transactional.
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


def configure_writer(engine: Engine, *, busy_timeout: float = BUSY_TIMEOUT) -> None:
    """Make `engine`'s transactions take the write lock up front, waiting for it (see the
    module's note)."""
    _pragmas(engine, busy_timeout, query_only=False)

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
                return
            except OperationalError as exc:
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


def configure_reader(engine: Engine, *, busy_timeout: float = BUSY_TIMEOUT) -> None:
    """Make `engine` read-only: its connections refuse writes and their transactions begin
    deferred, so they never take (or wait for) the write lock."""
    _pragmas(engine, busy_timeout, query_only=True)

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN")

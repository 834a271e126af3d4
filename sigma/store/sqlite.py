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

from typing import Any

from sqlalchemy import Connection, Engine, event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import OperationalError

from sigma.store.sqlite_file import (
    BUSY_TIMEOUT,
    RETRY_PAUSE,
    RETRY_PAUSE_MAX,
    WRITE_ATTEMPTS,
    DatabaseFileError,
    begin_immediate,
    file_problem,
    is_sqlite_lock_error,
    retry_pause,
    set_pragmas,
)

__all__ = [
    "BUSY_TIMEOUT",
    "RETRY_PAUSE",
    "RETRY_PAUSE_MAX",
    "WRITE_ATTEMPTS",
    "DatabaseFileError",
    "configure_reader",
    "configure_writer",
    "is_lock_error",
    "retry_pause",
]


def is_lock_error(exc: BaseException) -> bool:
    """True when `exc` (a DBAPI error or SQLAlchemy's wrapper of one) says another connection
    holds the lock: worth trying again later, unlike every other database error."""
    orig = exc.orig if isinstance(exc, OperationalError) else exc
    return orig is not None and is_sqlite_lock_error(orig)


def _pragmas(engine: Engine, busy_timeout: float, *, query_only: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # (`sigma.store.sqlite_file`: the same pragmas for a connection without SQLAlchemy.)
        set_pragmas(dbapi_connection, busy_timeout, query_only=query_only)

    @event.listens_for(engine, "handle_error")
    def _on_error(context: ExceptionContext) -> None:
        # SQLite's own words ("file is not a database", "database or disk is full") name
        # no file, and a caller that catches them is too far away to know which one.
        problem = file_problem(
            context.original_exception, engine.url.database, query_only=query_only
        )
        if problem is not None:
            raise problem from context.sqlalchemy_exception


def configure_writer(engine: Engine, *, busy_timeout: float = BUSY_TIMEOUT) -> None:
    """Make `engine`'s transactions take the write lock up front, waiting for it (see the
    module's note)."""
    _pragmas(engine, busy_timeout, query_only=False)

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        begin_immediate(connection.exec_driver_sql, is_lock_error)


def configure_reader(engine: Engine, *, busy_timeout: float = BUSY_TIMEOUT) -> None:
    """Make `engine` read-only: its connections refuse writes and their transactions begin
    deferred, so they never take (or wait for) the write lock."""
    _pragmas(engine, busy_timeout, query_only=True)

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN")

"""`database_away`: which database errors say the database is away (worth waiting for) and
which are the work's own."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
from psycopg import errors as pg_errors
from sqlalchemy import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from sigma.store.outage import database_away, one_line, outage_message
from sigma.store.sqlite_file import DatabaseFileError


def wrapped(orig: Exception, *, invalidated: bool = False) -> DBAPIError:
    """The driver's error as SQLAlchemy raises it."""
    return DBAPIError("SELECT 1", {}, orig, connection_invalidated=invalidated)


def raised_from(cause: BaseException) -> RuntimeError:
    try:
        try:
            raise cause
        except BaseException as exc:
            raise RuntimeError("booking failed") from exc
    except RuntimeError as outer:
        return outer


def locked_sqlite() -> sqlite3.OperationalError:
    """SQLite's answer when another process holds the write lock past the busy timeout."""
    locked = sqlite3.OperationalError("database is locked")
    locked.sqlite_errorcode = sqlite3.SQLITE_BUSY  # type: ignore[attr-defined]
    return locked


@pytest.mark.parametrize(
    "error",
    [
        psycopg.OperationalError("connection failed: Connection refused"),
        psycopg.InterfaceError("the connection is closed"),
        pg_errors.AdminShutdown("terminating connection due to administrator command"),
        pg_errors.CannotConnectNow("the database system is starting up"),
        pg_errors.ConnectionFailure("connection failure"),
        pg_errors.DiskFull("could not extend file"),
        pg_errors.TooManyConnections("too many clients already"),
        DatabaseFileError("SQLite database x.db: database or disk is full"),
        locked_sqlite(),
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_database_that_is_away_or_full(error: Exception) -> None:
    assert database_away(error)
    assert database_away(wrapped(error))
    assert database_away(raised_from(error))


@pytest.mark.parametrize(
    "error",
    [
        pg_errors.UniqueViolation("duplicate key"),
        pg_errors.SerializationFailure("could not serialize access"),
        pg_errors.LockNotAvailable("could not obtain lock"),  # an OperationalError too
        pg_errors.QueryCanceled("canceling statement due to statement timeout"),
        psycopg.DataError("invalid input syntax"),
        ValueError("qty rounds to zero"),
        ConnectionError("a bus went away, not the database"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_errors_of_the_work_itself(error: Exception) -> None:
    assert not database_away(error)
    assert not database_away(raised_from(error))


def test_a_connection_sqlalchemy_found_dead_is_away() -> None:
    """SQLAlchemy's own verdict on a driver error it does not classify (SQLite's)."""
    closed = sqlite3.ProgrammingError("Cannot operate on a closed database.")
    assert database_away(wrapped(closed, invalidated=True))
    assert not database_away(wrapped(closed))
    assert not database_away(OperationalError("SELECT 1", {}, Exception("no such table")))


def test_an_error_that_is_its_own_cause_ends_the_search() -> None:
    error = RuntimeError("loop")
    error.__cause__ = error
    assert not database_away(error)


def test_the_message_names_the_database_without_its_password() -> None:
    url = make_url("postgresql+psycopg://sigma:secret@db.example:5432/sigma")
    refused = psycopg.OperationalError('connection failed:\n\tConnection "refused"')
    assert outage_message(wrapped(refused), url) == (
        "the database postgresql+psycopg://sigma:***@db.example:5432/sigma is unavailable: "
        'OperationalError: connection failed: Connection "refused"'
    )
    full = DatabaseFileError("SQLite database /var/sigma.db: database or disk is full")
    assert outage_message(full, url) == str(full)
    assert len(one_line(ValueError("x" * 1000))) < 400

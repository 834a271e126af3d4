"""Whether a database error says the database is away rather than that the work is wrong.

Away: the server cannot be reached, dropped the connection, is shutting down or starting,
or has no room left (connection exceptions, SQLSTATE class 08; insufficient resources, 53;
operator intervention, 57P; psycopg's client-side connection failures, which carry no
SQLSTATE); a SQLite file that cannot be used (`DatabaseFileError`) or whose write lock another
process holds past the busy timeout. Work that failed so can succeed unchanged once the
database is back or free; any other error is the work's own.
"""

from __future__ import annotations

import psycopg
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, StatementError

from sigma.domain.text import clip
from sigma.store.sqlite_file import DatabaseFileError, is_sqlite_lock_error

# SQLSTATE prefixes of a server that is away or out of room, not of a bad statement.
_AWAY_STATES = ("08", "53", "57P")


class DatabaseUnavailable(ConnectionError):
    """The database cannot be used: its message is `outage_message`'s one line."""


def database_away(exc: BaseException) -> bool:
    """True when `exc` (SQLAlchemy's error, the driver's, or one raised from either) says the
    database is away: see the module's note."""
    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, DatabaseFileError) or is_sqlite_lock_error(error):
            return True
        if isinstance(error, DBAPIError) and error.connection_invalidated:
            return True
        if isinstance(error, psycopg.Error):
            state = error.sqlstate
            if state is None:
                return isinstance(error, psycopg.OperationalError | psycopg.InterfaceError)
            return state.startswith(_AWAY_STATES)
        orig = error.orig if isinstance(error, StatementError) else None
        error = orig if isinstance(orig, BaseException) else error.__cause__
    return False


def outage_message(exc: BaseException, url: URL) -> str:
    """One line saying which database is unavailable and why (`exc` is an error `database_away`
    accepts): the file's own message for SQLite, else the database's URL (no password) and
    the driver's reason."""
    if isinstance(exc, DatabaseFileError):
        return str(exc)
    # The driver's words: SQLAlchemy's wrapper adds the statement and a link to its docs.
    reason = exc.orig if isinstance(exc, StatementError) and exc.orig is not None else exc
    where = url.render_as_string(hide_password=True)
    return f"the database {where} is unavailable: {one_line(reason)}"


def one_line(exc: BaseException) -> str:
    """`Type: message` on one line, cut to a readable length (drivers' messages span
    several lines and can quote whole statements)."""
    return clip(" ".join(f"{type(exc).__name__}: {exc}".split()), 300)

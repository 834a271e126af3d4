"""TimescaleDB: hypertables for ticks and bars when the extension exists, plain tables otherwise."""

from __future__ import annotations

import logging

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)

# Both tables carry `ts` in their primary key, which TimescaleDB requires of every unique index.
HYPERTABLES = ("ticks", "bars")


def _available(conn: Connection) -> bool:
    if conn.dialect.name != "postgresql":
        return False
    found = conn.execute(
        text("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
    ).first()
    return found is not None


def has_timescale(engine: Engine) -> bool:
    """True when the database is PostgreSQL and its server offers the timescaledb extension."""
    with engine.connect() as conn:
        return _available(conn)


def enable_timescale(conn: Connection) -> bool:
    """Create the extension and turn ticks and bars into hypertables, if the server has it.

    Idempotent. Returns True when the hypertables are in place. Runs inside the caller's
    transaction; a failure (e.g. the library is not in shared_preload_libraries) is logged and
    rolled back to a savepoint, leaving plain tables.
    """
    if not _available(conn):
        return False
    # Not covered: the test machine's PostgreSQL has no timescaledb package.
    try:  # pragma: no cover - needs a server with timescaledb installed
        with conn.begin_nested():
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS timescaledb"))
            for table in HYPERTABLES:
                # No default ts index: the (symbol, ..., ts) primary key already serves lookups,
                # and an extra index would show up as drift against the models.
                conn.execute(
                    text(
                        "SELECT create_hypertable(:table, 'ts', if_not_exists => TRUE, "
                        "migrate_data => TRUE, create_default_indexes => FALSE)"
                    ),
                    {"table": table},
                )
    except DBAPIError as exc:  # pragma: no cover - needs a server with timescaledb installed
        log.warning("timescaledb is available but could not be enabled: %s", exc)
        return False
    return True  # pragma: no cover - needs a server with timescaledb installed

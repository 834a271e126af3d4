"""TimescaleDB: hypertables for ticks and bars when the extension exists, plain tables otherwise."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)

# Both tables carry `ts` in their primary key, which TimescaleDB requires of every unique index.
HYPERTABLES = ("ticks", "bars")

# How compressed chunks are laid out: one segment per series, newest first (what the health
# check, `read_bars` and the bot's warm-up read). Fixed names, never user input: they are
# spliced into DDL, which takes no bind parameters.
_SEGMENT_BY = {"ticks": "symbol", "bars": "symbol, timeframe"}
_ORDER_BY = {"ticks": "ts DESC, seq DESC", "bars": "ts DESC"}


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


@dataclass(frozen=True, slots=True)
class Policy:
    """Compression and retention of one hypertable (None: not compressed / kept forever)."""

    compress_after: timedelta | None
    drop_after: timedelta | None


def _interval(span: timedelta) -> str:
    return f"INTERVAL '{int(span.total_seconds())} seconds'"


def policy_statements(table: str, policy: Policy) -> list[str]:
    """The SQL that gives hypertable `table` its compression and retention policies.

    Re-runnable: each policy is removed before it is added, so a changed setting replaces the
    old schedule (`add_*_policy(if_not_exists)` would keep the old interval silently).
    """
    if table not in HYPERTABLES:
        raise ValueError(f"{table!r} is not a hypertable; known: {', '.join(HYPERTABLES)}")
    out = [f"SELECT remove_compression_policy('{table}', if_exists => TRUE)"]
    if policy.compress_after is not None:
        out += [
            f"ALTER TABLE {table} SET (timescaledb.compress, "
            f"timescaledb.compress_segmentby = '{_SEGMENT_BY[table]}', "
            f"timescaledb.compress_orderby = '{_ORDER_BY[table]}')",
            f"SELECT add_compression_policy('{table}', "
            f"compress_after => {_interval(policy.compress_after)})",
        ]
    out.append(f"SELECT remove_retention_policy('{table}', if_exists => TRUE)")
    if policy.drop_after is not None:
        out.append(
            f"SELECT add_retention_policy('{table}', drop_after => {_interval(policy.drop_after)})"
        )
    return out


def apply_policies(engine: Engine, policies: Mapping[str, Policy]) -> bool:
    """Give each hypertable its policies when the database has TimescaleDB; returns whether
    it did. A failure is logged (the tables work without policies: the pruning job still
    deletes by age), never raised."""
    if not has_timescale(engine):
        return False
    # Not covered: the test machine's PostgreSQL has no timescaledb package; the SQL itself is
    # checked by tests of `policy_statements`.
    try:  # pragma: no cover - needs a server with timescaledb installed
        with engine.begin() as conn:
            if not enable_timescale(conn):
                return False
            for table, policy in policies.items():
                for statement in policy_statements(table, policy):
                    conn.execute(text(statement))
    except DBAPIError as exc:  # pragma: no cover - needs a server with timescaledb installed
        log.warning("timescaledb policies could not be set: %s", exc)
        return False
    return True  # pragma: no cover - needs a server with timescaledb installed

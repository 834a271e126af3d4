"""optuna's study storage in a database: where its tables may live, and one start at a time.

optuna's tables (``studies``, ``trials``, ...) carry their own Alembic migrations, recorded in
a table called ``alembic_version`` - the name SIGMA's own migrations use. Pointed at SIGMA's
database (schema), optuna would read SIGMA's revision as its own and refuse to start, and SIGMA
would no longer know its schema's revision after optuna stamped first. `optuna_url` moves the
studies to a schema of their own next to SIGMA's on PostgreSQL; `creation_lock` serialises the
processes that open a storage at the same moment (`sigma.research.study` uses both).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, make_url, text
from sqlalchemy.pool import NullPool

from sigma.store.db import alembic_config

__all__ = ["creation_lock", "optuna_url"]

_SCHEMA_LOCK = 0x5167_4F70_7475_6E61
"""PostgreSQL advisory lock key ("SigOptuna") held while a process creates optuna's schema or
a study: several `sigma optimize` processes start at the same moment on a fresh database."""


def optuna_url(url: str) -> str:
    """The database URL optuna should store studies at, given the configured one.

    When `url` holds SIGMA's schema, the studies go to a schema of their own next to it
    (``optuna``, or ``<schema>_optuna`` beside a non-public schema) on PostgreSQL; on SQLite,
    which has no schemas, a shared file is refused (ValueError). Any other URL is returned
    unchanged, but for the psycopg driver on a bare ``postgresql://`` one.
    """
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        # Left bare, optuna would reach for psycopg2; SIGMA installs psycopg (3).
        parsed = parsed.set(drivername="postgresql+psycopg")
        url = parsed.render_as_string(hide_password=False)
    engine = create_engine(parsed)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return url
            versions = set(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
            if not versions & _sigma_revisions():
                return url
            if conn.dialect.name != "postgresql":
                raise ValueError(
                    f"the optuna storage {parsed.render_as_string()} is SIGMA's own database; "
                    "optuna's migrations would clash with SIGMA's: use another file"
                )
            schema = str(conn.execute(text("SELECT current_schema()")).scalar_one())
        own = "optuna" if schema == "public" else f"{schema}_optuna"
        with engine.begin() as conn:
            # Concurrent `CREATE SCHEMA IF NOT EXISTS` can still collide: one at a time.
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK})
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{own}"'))
    finally:
        engine.dispose()
    options = " ".join(
        part
        for part in str(parsed.query.get("options", "")).split()
        if not part.startswith("-csearch_path=")
    )
    options = f"{options} -csearch_path={own}".strip()
    return parsed.update_query_dict({"options": options}).render_as_string(hide_password=False)


def _sigma_revisions() -> set[str]:
    script = ScriptDirectory.from_config(alembic_config())
    return {rev.revision for rev in script.walk_revisions()}


@contextmanager
def creation_lock(url: str) -> Iterator[None]:
    """On PostgreSQL, one process at a time past this point. optuna creates its tables (and
    the enum type ``studydirection``) when it opens a storage, which is not safe against a
    concurrent start: the loser died with an IntegrityError. Other databases need no lock."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        yield
        return
    engine = create_engine(parsed.set(drivername="postgresql+psycopg"), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _SCHEMA_LOCK})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _SCHEMA_LOCK})
                conn.commit()
    finally:
        engine.dispose()

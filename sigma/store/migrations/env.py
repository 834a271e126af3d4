"""Alembic environment for SIGMA.

`sigma.store.db.migrate` passes an open connection in `config.attributes["connection"]`; the
`alembic` command line can be used too, with `-x url=...` or `sqlalchemy.url` set.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from sigma.store.db import include_name
from sigma.store.models import Base

config = context.config
target_metadata = Base.metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_name=include_name,
        compare_type=True,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise RuntimeError("no database: pass -x url=... or set sqlalchemy.url")
    return url


def run_migrations_offline() -> None:
    """Emit SQL to stdout instead of running it."""
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run on the caller's connection, or on a fresh engine for the given URL."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        return
    from sigma.store.db import create_db_engine

    engine = create_db_engine(_url())
    try:
        with engine.begin() as conn:
            _configure(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

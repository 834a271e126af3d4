"""Whether the database answers."""

from __future__ import annotations

from sqlalchemy import Engine, text


def ping(engine: Engine) -> None:
    """One round trip to the database of `engine`; raises when it does not answer."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))

"""The database as the rest of SIGMA holds it: handles that are passed around, not queried.

The composition root (`sigma.bootstrap`) opens the database; runtime, scheduler, regime,
research, execution and the API receive these handles and give them to the store's
repositories and query services (`sigma.store.*`, `sigma.store.queries.*`). Only the store
builds SQL: import-linter's `sql-in-store` contract keeps SQLAlchemy out of every other package,
so a handle is the one thing of it they may name (as a type).
"""

from __future__ import annotations

from typing import TypeAlias

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

SessionFactory: TypeAlias = sessionmaker[Session]
"""Opens a `Session`, one unit of work (`sigma.store.session_scope`)."""

__all__ = ["Connection", "Engine", "Session", "SessionFactory"]

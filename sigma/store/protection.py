"""ProtectionStore: the live bot's protective orders kept in the database (`protective_orders`).

The bot held its stop-losses, take-profits and trailing stops only in memory, so a restart
left an open position unprotected. The bot reports each change of one (strategy, symbol)'s
protection (armed, a trailing level moved, triggered, cancelled) as a JSON document
(`sigma.runtime.protection` builds and reads it); the store writes it off the price loop,
through a `WriteBehind`, one row per (mode, strategy, symbol); at start the bot continues
from the rows. An empty document removes the row.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from sigma.store.db import session_scope
from sigma.store.models import ProtectiveStateRecord
from sigma.store.write_behind import WriteBehind

__all__ = ["ProtectionStore", "load_protection", "save_protection"]

Key = tuple[str, str]
"""(strategy, symbol)."""


def load_protection(session: Session, mode: str) -> dict[Key, dict[str, Any]]:
    """Every (strategy, symbol)'s protection as last kept in `mode`."""
    rows = session.scalars(select(ProtectiveStateRecord).where(ProtectiveStateRecord.mode == mode))
    return {(r.strategy, r.symbol): r.state for r in rows}


def save_protection(
    session: Session, mode: str, strategy: str, symbol: str, state: dict[str, Any] | None
) -> None:
    """Keep the protection of `strategy` on `symbol` in `mode` (None: there is none)."""
    if state is None:
        session.execute(
            delete(ProtectiveStateRecord).where(
                ProtectiveStateRecord.mode == mode,
                ProtectiveStateRecord.strategy == strategy,
                ProtectiveStateRecord.symbol == symbol,
            )
        )
        return
    row = session.get(ProtectiveStateRecord, (mode, strategy, symbol))
    if row is None:
        session.add(ProtectiveStateRecord(mode=mode, strategy=strategy, symbol=symbol, state=state))
    else:
        row.state = state


class ProtectionStore:
    """The protection of one mode: `save` queues the write and returns at once; `close`
    finishes the queued writes (a restart reads the rows with `load_protection`)."""

    def __init__(self, sessions: sessionmaker[Session], mode: str) -> None:
        self.sessions = sessions
        self.mode = mode
        self._writer = WriteBehind("the protective orders")

    def save(self, strategy: str, symbol: str, state: dict[str, Any] | None) -> None:
        """Queue keeping the protection of `strategy` on `symbol` (None: there is none)."""
        self._writer.later(self._save, strategy, symbol, state)

    def _save(self, strategy: str, symbol: str, state: dict[str, Any] | None) -> None:
        with session_scope(self.sessions) as session:
            save_protection(session, self.mode, strategy, symbol, state)

    def close(self) -> None:
        """Write what is queued, then stop the writer thread."""
        self._writer.close()

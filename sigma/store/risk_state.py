"""RiskStateStore: the circuit breakers' marks kept in the database (`risk_state`).

The drawdown peak, the day's opening equity and a tripped breaker lived only in the bot's
memory, so a restart re-armed a halted bot. The RiskManager reports each change (a new peak,
a new day, a trip, an operator's reset) and the store writes it off the price loop, through a
`WriteBehind`, one row per risk account and mode; at start the bot continues from the rows.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from sigma.risk.limits import BreakerMarks
from sigma.store.db import session_scope
from sigma.store.models import RiskStateRecord
from sigma.store.write_behind import WriteBehind

__all__ = ["RiskStateStore", "load_marks", "save_marks"]


def load_marks(session: Session, mode: str) -> dict[str, BreakerMarks]:
    """Every account's marks as last kept in `mode`."""
    rows = session.scalars(select(RiskStateRecord).where(RiskStateRecord.mode == mode))
    return {r.account: BreakerMarks(r.day, r.day_start, r.peak, r.tripped) for r in rows}


def save_marks(session: Session, mode: str, account: str, marks: BreakerMarks | None) -> None:
    """Keep `account`'s marks in `mode` (None: forget them, the breaker was reset)."""
    if marks is None:
        session.execute(
            delete(RiskStateRecord).where(
                RiskStateRecord.mode == mode, RiskStateRecord.account == account
            )
        )
        return
    row = session.get(RiskStateRecord, (mode, account))
    if row is None:
        row = RiskStateRecord(mode=mode, account=account)
        session.add(row)
    row.day, row.day_start, row.peak, row.tripped = (
        marks.day,
        marks.day_start,
        marks.peak,
        marks.tripped,
    )


class RiskStateStore:
    """The marks of one mode: `load` at start, `save` (the RiskManager's `on_change`) queues
    the write and returns at once; `close` finishes the queued writes."""

    def __init__(self, sessions: sessionmaker[Session], mode: str) -> None:
        self.sessions = sessions
        self.mode = mode
        self._writer = WriteBehind("the risk state")

    def load(self) -> dict[str, BreakerMarks]:
        """The marks kept by earlier runs (after the writes queued so far)."""
        return self._writer.after_writes(self._load)

    def _load(self) -> dict[str, BreakerMarks]:
        with self.sessions() as session:
            return load_marks(session, self.mode)

    def save(self, account: str, marks: BreakerMarks | None) -> None:
        """Queue keeping `account`'s marks (None: forget them)."""
        self._writer.later(self._save, account, marks)

    def _save(self, account: str, marks: BreakerMarks | None) -> None:
        with session_scope(self.sessions) as session:
            save_marks(session, self.mode, account, marks)

    def close(self) -> None:
        """Write what is queued, then stop the writer thread."""
        self._writer.close()

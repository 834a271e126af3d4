"""Control flags every process reads: the kill switch lives here so the CLI, the API and the
bots in other processes all see the same state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from sigma.store.models import ControlFlag

KILL_SWITCH = "kill_switch"


@dataclass(frozen=True, slots=True)
class FlagState:
    """A flag as last set."""

    name: str
    enabled: bool
    reason: str
    changed_by: str
    updated_at: datetime | None


def get_flag(session: Session, name: str) -> FlagState:
    """The flag's state; a flag never set is off."""
    row = session.get(ControlFlag, name)
    if row is None:
        return FlagState(name, False, "", "", None)
    return FlagState(row.name, row.enabled, row.reason, row.changed_by, row.updated_at)


def set_flag(session: Session, name: str, enabled: bool, *, reason: str, changed_by: str) -> None:
    """Turn a flag on or off, recording who and why (the caller commits)."""
    row = session.get(ControlFlag, name)
    if row is None:
        row = ControlFlag(name=name)
        session.add(row)
    row.enabled, row.reason, row.changed_by = enabled, reason, changed_by
    session.flush()

"""Appending to `action_log`, the audit trail of the bot's decisions (written in batches by
`sigma.ops.action_log.ActionLogger`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from sigma.store.models import ActionLog

_TABLE: Table = ActionLog.__table__  # type: ignore[assignment]
_INSERT = insert(_TABLE)


def append_actions(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert `action_log` rows (column values; at least one) in the session's transaction."""
    # One Core executemany, not the unit of work nor the ORM's bulk insert (which spent a
    # third of a flush sorting out each row's columns): these rows are never read back, and
    # the flush runs beside the bot's loop.
    session.execute(_INSERT, rows)

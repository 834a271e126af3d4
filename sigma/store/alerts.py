"""Writing `alert_log`: one row per alert key, counted, instead of a copy per repeat."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from sigma.store.bars import dialect_insert
from sigma.store.models import AlertLog


def record_alert(
    session: Session,
    *,
    ts: datetime,
    severity: str,
    source: str,
    message: str,
    dedupe_key: str | None,
) -> None:
    """Store one occurrence of an alert. A keyless alert gets its own row; one whose
    `dedupe_key` is stored already bumps that row's `seen` and `last_seen` and takes the new
    message and severity (the condition as it stands now), atomically, so processes raising
    the same alert at once still leave one row."""
    values: dict[str, Any] = {
        "ts": ts,
        "last_seen": ts,
        "severity": severity,
        "source": source,
        "message": message,
        "dedupe_key": dedupe_key,
    }
    if dedupe_key is None:
        session.add(AlertLog(**values))
        return
    stmt: Any = dialect_insert(session.get_bind().dialect.name, AlertLog).values(values)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["dedupe_key"],
            set_={
                "seen": AlertLog.seen + 1,
                "last_seen": stmt.excluded.last_seen,
                "severity": stmt.excluded.severity,
                "source": stmt.excluded.source,
                "message": stmt.excluded.message,
            },
        )
    )

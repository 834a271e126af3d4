"""Writing `alert_log`: one row per alert key, counted, instead of a copy per repeat (the
notifier's `sigma.notify.store.AlertStore` decides what a row says)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from sigma.store.bars import dialect_insert
from sigma.store.db import session_scope
from sigma.store.models import AlertLog

# What `record_alert` takes of an `AlertLog` row: one occurrence of its alert.
_OCCURRENCE = ("ts", "severity", "source", "message", "dedupe_key")


def column_names(model: type[Any]) -> frozenset[str]:
    """The names of the columns of `model`'s table (an ORM model)."""
    return frozenset(model.__table__.columns.keys())


def save_alert(factory: sessionmaker[Session], row: Any) -> None:
    """Store `row`, an ORM object of `alert_log` or of a table like it, in its own
    transaction: an `AlertLog` is counted on its key's row (`record_alert`), any other is
    added as it is."""
    with session_scope(factory) as session:
        if type(row) is AlertLog:
            record_alert(session, **{name: getattr(row, name) for name in _OCCURRENCE})
        else:
            session.add(row)


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

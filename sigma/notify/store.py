"""Persisting alerts in the `alert_log` table.

`alert_log` today has no column for the suppression flag or the details, so the writer adapts
to the model's columns: when `suppressed`, `reason` or `details` columns exist they are filled;
otherwise a suppressed alert's message is prefixed with ``[suppressed: <reason>]`` so the row
still tells the truth.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from sigma.notify.alert import Alert
from sigma.ops.jsontext import to_jsonable
from sigma.store.db import session_scope
from sigma.store.models import AlertLog


class AlertStore:
    """Writes one row per alert (delivered or suppressed). Synchronous: call it in a thread."""

    def __init__(self, factory: sessionmaker[Session], model: type[Any] = AlertLog) -> None:
        self._factory = factory
        self._model = model
        self._columns = frozenset(model.__table__.columns.keys())

    def row(self, alert: Alert, *, suppressed: str | None, outcome: dict[str, Any]) -> Any:
        """The ORM object for `alert` (not yet added to a session)."""
        values: dict[str, Any] = {
            "ts": alert.ts,
            "severity": alert.severity,
            # Cut to the column sizes: PostgreSQL rejects longer text and the alert must land.
            "source": alert.source[:64],
            "message": alert.message,
            "dedupe_key": alert.dedupe_key[:200] if alert.dedupe_key else None,
        }
        if "suppressed" in self._columns:
            values["suppressed"] = suppressed is not None
        if "reason" in self._columns:
            values["reason"] = suppressed
        elif suppressed is not None:
            values["message"] = f"[suppressed: {suppressed}] {alert.message}"
        if "details" in self._columns:
            # Round-trip through our JSON so Decimal and datetime details are storable.
            details = to_jsonable(dict(alert.details))
            values["details"] = {**details, "_outcome": outcome}
        return self._model(**values)

    def record(self, alert: Alert, *, suppressed: str | None, outcome: dict[str, Any]) -> None:
        """Insert the row in its own transaction."""
        with session_scope(self._factory) as session:
            session.add(self.row(alert, suppressed=suppressed, outcome=outcome))

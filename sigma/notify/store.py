"""Persisting alerts in the `alert_log` table.

`alert_log` keeps one row per alert key: a repeat (delivered again after the dedupe window, or
suppressed as a duplicate within it) counts on its key's row (`seen`, `last_seen`) instead of
being stored again. It has no column for the suppression flag or the details, so the writer
adapts to the model's columns: when `suppressed`, `reason` or `details` columns exist they are
filled; otherwise an alert no channel took because of their rate limits has its message
prefixed with ``[suppressed: rate_limited]`` so the row still tells the truth.
"""

from __future__ import annotations

from typing import Any

from sigma.domain.jsontext import to_jsonable
from sigma.notify.alert import SUPPRESSED_DUPLICATE, Alert
from sigma.store.alerts import column_names, save_alert
from sigma.store.handles import SessionFactory
from sigma.store.models import AlertLog


class AlertStore:
    """Writes one row per alert, or per alert key on `alert_log` (delivered or suppressed).
    Synchronous: call it in a thread."""

    def __init__(self, factory: SessionFactory, model: type[Any] = AlertLog) -> None:
        self._factory = factory
        self._model = model
        self._columns = column_names(model)

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
        elif suppressed not in (None, SUPPRESSED_DUPLICATE):
            values["message"] = f"[suppressed: {suppressed}] {alert.message}"
        if "details" in self._columns:
            # Round-trip through our JSON so Decimal and datetime details are storable.
            details = to_jsonable(dict(alert.details))
            values["details"] = {**details, "_outcome": outcome}
        return self._model(**values)

    def record(self, alert: Alert, *, suppressed: str | None, outcome: dict[str, Any]) -> None:
        """Store the alert in its own transaction (counted on its key's row in `alert_log`)."""
        save_alert(self._factory, self.row(alert, suppressed=suppressed, outcome=outcome))

"""`alert_log` keeps one row per alert key: the upsert, and migration 0017 folding the copies
an older notifier stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import Engine, select, text

from sigma.store import create_db_engine, session_factory, session_scope
from sigma.store.alerts import record_alert
from sigma.store.db import alembic_config, migrate
from sigma.store.models import AlertLog

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def _stored(engine: Engine) -> list[tuple[object, ...]]:
    with session_factory(engine)() as session:
        return [
            (a.ts, a.last_seen, a.seen, a.severity, a.message, a.dedupe_key)
            for a in session.scalars(select(AlertLog).order_by(AlertLog.id))
        ]


def test_a_repeat_counts_on_its_key_row_and_keyless_alerts_stay_apart(engine: Engine) -> None:
    factory = session_factory(engine)
    occurrences = [
        (T0, "warning", "feed stale 10s", "stale:BTC"),
        (T0 + MINUTE, "info", "job done", None),
        (T0 + 2 * MINUTE, "error", "feed stale 130s", "stale:BTC"),
        (T0 + 3 * MINUTE, "info", "job done", None),
    ]
    for ts, severity, message, key in occurrences:
        with session_scope(factory) as session:
            record_alert(
                session, ts=ts, severity=severity, source="feed", message=message, dedupe_key=key
            )
    assert _stored(engine) == [
        (T0, T0 + 2 * MINUTE, 2, "error", "feed stale 130s", "stale:BTC"),
        (T0 + MINUTE, T0 + MINUTE, 1, "info", "job done", None),
        (T0 + 3 * MINUTE, T0 + 3 * MINUTE, 1, "info", "job done", None),
    ]


def test_migration_folds_the_stored_duplicate_copies(db_url: str) -> None:
    engine = create_db_engine(db_url)
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "0016")
        old = [
            (T0, "warning", "stale", "stale:BTC"),
            (T0 + MINUTE, "warning", "[suppressed: duplicate] stale", "stale:BTC"),
            (T0 + 2 * MINUTE, "info", "alone", "once"),
            (T0 + 3 * MINUTE, "error", "[suppressed: duplicate] stale longer", "stale:BTC"),
            (T0 + 4 * MINUTE, "info", "no key", None),
        ]
        with engine.begin() as conn:
            for ts, severity, message, key in old:
                conn.execute(
                    text(
                        "INSERT INTO alert_log (ts, severity, source, message, dedupe_key) "
                        "VALUES (:ts, :severity, 'feed', :message, :key)"
                    ),
                    {"ts": ts, "severity": severity, "message": message, "key": key},
                )
        migrate(engine)
        assert _stored(engine) == [
            (T0, T0 + 3 * MINUTE, 3, "error", "stale longer", "stale:BTC"),
            (T0 + 2 * MINUTE, T0 + 2 * MINUTE, 1, "info", "alone", "once"),
            (T0 + 4 * MINUTE, T0 + 4 * MINUTE, 1, "info", "no key", None),
        ]
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0016")
        with engine.connect() as conn:
            kept = conn.execute(text("SELECT message FROM alert_log ORDER BY id")).scalars()
            assert list(kept) == ["stale longer", "alone", "no key"]
    finally:
        engine.dispose()

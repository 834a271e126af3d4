"""Retention: exactly the rows older than the cutoff go, in batches, on SQLite and PostgreSQL;
rows SIGMA still reads stay whatever their age; tables other rows reference are refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from sigma.scheduler import retention
from sigma.scheduler.retention import count_older, prune, prune_table
from sigma.store.db import session_scope
from sigma.store.models import ActionLog, IdempotencyRecord, JobRun, TickRecord

CUTOFF = datetime(2026, 3, 1, tzinfo=UTC)


def _ticks(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as session:
        for minutes in (-300, -120, -120, -61, -1, 0, 1, 90):
            ts = CUTOFF + timedelta(minutes=minutes)
            for symbol in ("BTC", "ETH"):
                seq = session.scalar(
                    select(TickRecord.seq)
                    .where(TickRecord.symbol == symbol, TickRecord.ts == ts)
                    .order_by(TickRecord.seq.desc())
                )
                session.add(
                    TickRecord(
                        symbol=symbol, ts=ts, seq=0 if seq is None else seq + 1, price=Decimal(1)
                    )
                )


@pytest.mark.parametrize("batch", [1, 3, 5000])
def test_prune_deletes_exactly_what_is_older(
    engine: Engine, sessions: sessionmaker[Session], batch: int
) -> None:
    _ticks(sessions)
    assert count_older(engine, "ticks", CUTOFF) == 10
    result = prune_table(engine, "ticks", CUTOFF, batch=batch)
    assert result.deleted == 10 and result.chunks_dropped == 0
    with sessions() as session:
        left = sorted(session.scalars(select(TickRecord.ts)).all())
    assert len(left) == 6
    assert min(left) == CUTOFF
    assert count_older(engine, "ticks", CUTOFF) == 0
    assert prune_table(engine, "ticks", CUTOFF, batch=batch).deleted == 0


def test_prune_several_tables(engine: Engine, sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as session:
        for job, started in [("a", CUTOFF - timedelta(days=2)), ("a", CUTOFF), ("b", CUTOFF)]:
            session.add(JobRun(job_id=job, started_at=started, outcome="success"))
    results = prune(engine, {"job_runs": CUTOFF, "alert_log": CUTOFF})
    assert [(r.table, r.deleted) for r in results] == [("job_runs", 1), ("alert_log", 0)]
    with sessions() as session:
        assert session.scalars(select(JobRun.job_id)).all() == ["a", "b"]


def test_refusals(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="no retention rule for 'orders'"):
        prune_table(engine, "orders", CUTOFF)
    with pytest.raises(ValueError, match="timezone-aware"):
        prune_table(engine, "ticks", CUTOFF.replace(tzinfo=None))
    with pytest.raises(ValueError, match="batch"):
        prune_table(engine, "ticks", CUTOFF, batch=0)
    # Orders are referenced by fills and ledger entries: never pruned by age.
    monkeypatch.setitem(retention.TIME_COLUMNS, "orders", "created_at")
    with pytest.raises(ValueError, match="referenced by other tables"):
        prune_table(engine, "orders", CUTOFF)


@pytest.mark.parametrize("batch", [1, 5000])
def test_rows_still_in_use_are_kept_whatever_their_age(
    engine: Engine, sessions: sessionmaker[Session], batch: int
) -> None:
    old = CUTOFF - timedelta(days=90)
    with session_scope(sessions) as session:
        for days, job, outcome in [
            (1, "user_check", "success"),
            (2, "user_check", "failed"),  # its newest run: `sigma jobs list` shows it
            (1, "ml_tune", "running"),  # still going in a live process
            (2, "ml_tune", "success"),
        ]:
            session.add(JobRun(job_id=job, started_at=old + timedelta(days=days), outcome=outcome))
        for days, action in [(1, "users_audit"), (2, "users_audit"), (3, "report_sent")]:
            ts = old + timedelta(days=days)
            session.add(ActionLog(ts=ts, source="user_check", action=action, details={"n": days}))
        session.add(ActionLog(ts=CUTOFF, source="user_check", action="report_sent", details={}))
    assert count_older(engine, "job_runs", CUTOFF) == 1
    results = prune(engine, {"job_runs": CUTOFF, "action_log": CUTOFF}, batch=batch)
    assert [r.deleted for r in results] == [1, 2]
    with sessions() as session:
        runs = session.execute(select(JobRun.job_id, JobRun.outcome).order_by(JobRun.id)).all()
        kept = session.execute(select(ActionLog.action, ActionLog.details)).all()
    assert [tuple(r) for r in runs] == [
        ("user_check", "failed"),
        ("ml_tune", "running"),
        ("ml_tune", "success"),
    ]
    # The newest rights snapshot stays for the next user check to diff against; of the sent
    # reports only the recent row is left, the old one was not the newest.
    assert sorted((a, d) for a, d in kept) == [("report_sent", {}), ("users_audit", {"n": 2})]


def test_expired_idempotency_keys_go(engine: Engine, sessions: sessionmaker[Session]) -> None:
    # The API's keys (`Idempotency-Key`) age by their expiry, not by when they were made.
    with session_scope(sessions) as session:
        for key, expires in [("gone-0001", -1), ("kept-0001", 0), ("kept-0002", 60)]:
            session.add(
                IdempotencyRecord(
                    username="trader",
                    key=key,
                    fingerprint="f",
                    created_at=CUTOFF - timedelta(days=2),
                    expires_at=CUTOFF + timedelta(minutes=expires),
                )
            )
    assert [r.deleted for r in prune(engine, {"idempotency_keys": CUTOFF})] == [1]
    with sessions() as session:
        left = session.scalars(select(IdempotencyRecord.key).order_by(IdempotencyRecord.key))
        assert left.all() == ["kept-0001", "kept-0002"]

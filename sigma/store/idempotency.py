"""Idempotency keys (`idempotency_keys`): a request sent with a client's key is served once,
by whichever API process gets it first, and its answer is kept for the retries.

`claim_key` takes a user's key for a request in the caller's transaction, or returns what the
earlier request with that key left. The claim is an `INSERT ... ON CONFLICT DO NOTHING` on
the primary key (user, key), so of two requests racing with one key, in one process or in
two, exactly one claims it: the other's insert waits for the first's transaction (PostgreSQL)
or the write lock (SQLite) and then finds its row. `keep_answer` keeps the outcome for the replays.
A key past its expiry is free again; the retention job deletes such rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from sigma.store.bars import dialect_insert
from sigma.store.models import IdempotencyRecord

__all__ = ["EarlierRequest", "claim_key", "keep_answer"]


@dataclass(frozen=True, slots=True)
class EarlierRequest:
    """The request that holds a key: what it asked (`fingerprint`), when, and its answer
    (`status` and `response` are None until it has one)."""

    fingerprint: str
    created_at: datetime
    status: int | None
    response: dict[str, Any] | None


def claim_key(
    session: Session,
    username: str,
    key: str,
    fingerprint: str,
    *,
    now: datetime,
    ttl: timedelta,
) -> EarlierRequest | None:
    """Claim `username`'s `key` until `now + ttl` for a request asking `fingerprint` (the
    caller commits, with whatever else the request writes in the same transaction). None
    when claimed now; otherwise the unexpired earlier request holding the key."""
    record = IdempotencyRecord
    mine = (record.username == username) & (record.key == key)
    session.execute(delete(record).where(mine, record.expires_at <= now))
    values = {
        "username": username,
        "key": key,
        "fingerprint": fingerprint,
        "created_at": now,
        "expires_at": now + ttl,
    }
    insert: Any = dialect_insert(session.get_bind().dialect.name, record).values(values)
    inserted = session.execute(
        insert.on_conflict_do_nothing(index_elements=["username", "key"]).returning(record.key)
    ).first()
    if inserted is not None:
        return None
    row = session.execute(
        select(record.fingerprint, record.created_at, record.status, record.response).where(mine)
    ).one()
    return EarlierRequest(*row)


def keep_answer(
    session: Session, username: str, key: str, status: int, response: dict[str, Any]
) -> None:
    """Keep the answer to the request that claimed `username`'s `key` (the caller commits):
    HTTP `status` and the JSON body `response`."""
    session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.username == username, IdempotencyRecord.key == key)
        .values(status=status, response=response)
    )

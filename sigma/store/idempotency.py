"""Idempotency keys (`idempotency_keys`): a request sent with a client's key is served once,
by whichever API process gets it first, and its answer is kept for the retries.

`claim_key` takes a user's key for a request in the caller's transaction, or returns what the
earlier request with that key left. The claim is an `INSERT ... ON CONFLICT DO NOTHING` on
the primary key (user, key), so of two requests racing with one key, in one process or in
two, exactly one claims it: the other's insert waits for the first's transaction (PostgreSQL)
or the write lock (SQLite) and then finds its row. `keep_answer` keeps the outcome for the
replays. A key past its expiry is free again; the retention job deletes such rows.

Between the claim and the send, `mark_sent` records that the claim's command is being handed
to the bot; only the request whose mark succeeded sends. A claim never marked sent sent
nothing, so when its API process stopped a retry may take the key over (`reclaim_key`); the
mark and the takeover are both conditional updates on the claim's command, so of a slow
first request and a retry exactly one sends. A claim marked sent is never taken over.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.orm import Session

from sigma.store.bars import dialect_insert
from sigma.store.models import IdempotencyRecord

__all__ = ["EarlierRequest", "claim_key", "keep_answer", "mark_sent", "reclaim_key"]


@dataclass(frozen=True, slots=True)
class EarlierRequest:
    """The request that holds a key: what it asked (`fingerprint`), when, and its answer
    (`status` and `response` are None until it has one); the command it sends and when it
    was handed to the bot (`sent_at` None before; both None for claims stored before they
    were recorded)."""

    fingerprint: str
    created_at: datetime
    status: int | None
    response: dict[str, Any] | None
    command_id: str | None = None
    sent_at: datetime | None = None


def _mine(username: str, key: str) -> ColumnElement[bool]:
    return (IdempotencyRecord.username == username) & (IdempotencyRecord.key == key)


def claim_key(
    session: Session,
    username: str,
    key: str,
    fingerprint: str,
    *,
    command_id: str,
    now: datetime,
    ttl: timedelta,
) -> EarlierRequest | None:
    """Claim `username`'s `key` until `now + ttl` for a request asking `fingerprint` that
    sends `command_id` (the caller commits, with whatever else the request writes in the same
    transaction). None when claimed now; otherwise the unexpired earlier request holding the
    key."""
    record = IdempotencyRecord
    mine = _mine(username, key)
    session.execute(delete(record).where(mine, record.expires_at <= now))
    values = {
        "username": username,
        "key": key,
        "fingerprint": fingerprint,
        "command_id": command_id,
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
        select(
            record.fingerprint,
            record.created_at,
            record.status,
            record.response,
            record.command_id,
            record.sent_at,
        ).where(mine)
    ).one()
    return EarlierRequest(*row)


def reclaim_key(
    session: Session,
    username: str,
    key: str,
    earlier: EarlierRequest,
    *,
    command_id: str,
    now: datetime,
    ttl: timedelta,
) -> bool:
    """Take `username`'s `key` over from `earlier`, a claim never sent, for a request that
    sends `command_id` (the caller commits). False, changing nothing, unless the claim is
    still `earlier`'s and still unsent and unanswered (another retry took it over, or its
    request sent meanwhile); always False for a claim that does not name its command."""
    if earlier.command_id is None:
        return False
    record = IdempotencyRecord
    taken = session.execute(
        update(record)
        .where(
            _mine(username, key),
            record.command_id == earlier.command_id,
            record.sent_at.is_(None),
            record.status.is_(None),
        )
        .values(command_id=command_id, created_at=now, expires_at=now + ttl)
        .returning(record.key)
    ).first()
    return taken is not None


def mark_sent(session: Session, username: str, key: str, command_id: str, *, now: datetime) -> bool:
    """Record that the claim of `username`'s `key` for `command_id` is being sent (the caller
    commits before sending). False, changing nothing, when the key no longer holds that
    claim unsent (a retry took it over): the command must not be sent."""
    record = IdempotencyRecord
    marked = session.execute(
        update(record)
        .where(_mine(username, key), record.command_id == command_id, record.sent_at.is_(None))
        .values(sent_at=now)
        .returning(record.key)
    ).first()
    return marked is not None


def keep_answer(
    session: Session, username: str, key: str, status: int, response: dict[str, Any]
) -> None:
    """Keep the answer to the request that claimed `username`'s `key` (the caller commits):
    HTTP `status` and the JSON body `response`."""
    session.execute(
        update(IdempotencyRecord)
        .where(_mine(username, key))
        .values(status=status, response=response)
    )

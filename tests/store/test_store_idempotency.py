"""Idempotency keys on SQLite and PostgreSQL: a key is claimed once per user until it expires,
the earlier request and its answer are found again, of requests racing with one key (each
its own connection, as two API processes would be) exactly one claims it, and of a stalled
request and the retry taking its unsent claim over exactly one may send."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select

from sigma.store.db import session_factory, session_scope
from sigma.store.idempotency import (
    EarlierRequest,
    claim_key,
    keep_answer,
    mark_sent,
    reclaim_key,
)
from sigma.store.models import IdempotencyRecord

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
DAY = timedelta(hours=24)


def test_a_key_is_claimed_once_per_user_until_it_expires(engine: Engine) -> None:
    sessions = session_factory(engine)

    def claim(user: str, key: str, fingerprint: str, now: datetime) -> EarlierRequest | None:
        with session_scope(sessions) as session:
            return claim_key(
                session, user, key, fingerprint, command_id=f"c-{fingerprint}", now=now, ttl=DAY
            )

    assert claim("trader", "key-00000001", "f1", NOW) is None
    # The first request has no answer yet: a retry finds it so.
    pending = EarlierRequest("f1", NOW, None, None, "c-f1")
    assert claim("trader", "key-00000001", "f1", NOW + timedelta(seconds=1)) == pending
    with session_scope(sessions) as session:
        keep_answer(session, "trader", "key-00000001", 409, {"detail": "no bot"})
    later = NOW + DAY - timedelta(seconds=1)
    answered = EarlierRequest("f1", NOW, 409, {"detail": "no bot"}, "c-f1")
    assert claim("trader", "key-00000001", "f2", later) == answered  # the caller compares
    assert claim("admin", "key-00000001", "f3", NOW) is None  # keys are per user
    # Expired, the key is free again and holds the new request.
    assert claim("trader", "key-00000001", "f4", NOW + DAY) is None
    assert claim("trader", "key-00000001", "f4", NOW + DAY) == EarlierRequest(
        "f4", NOW + DAY, None, None, "c-f4"
    )


def test_of_requests_racing_with_one_key_exactly_one_claims_it(engine: Engine) -> None:
    sessions = session_factory(engine)
    racers = 6
    start = threading.Barrier(racers)

    def race(n: int) -> EarlierRequest | None:
        start.wait(10)
        with session_scope(sessions) as session:
            return claim_key(
                session, "trader", "race-0000001", f"f{n}", command_id=f"c{n}", now=NOW, ttl=DAY
            )

    with ThreadPoolExecutor(racers) as pool:
        outcomes = list(pool.map(race, range(racers)))
    winners = [n for n, outcome in enumerate(outcomes) if outcome is None]
    assert len(winners) == 1, outcomes
    # Every loser found the winner's request.
    assert {o.fingerprint for o in outcomes if o is not None} == {f"f{winners[0]}"}
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(IdempotencyRecord)) == 1


def test_only_an_unsent_claim_is_taken_over_and_then_its_request_cannot_send(
    engine: Engine,
) -> None:
    sessions = session_factory(engine)
    later = NOW + timedelta(minutes=5)

    def claim(key: str) -> EarlierRequest:
        with session_scope(sessions) as session:
            assert (
                claim_key(session, "trader", key, "f", command_id="first", now=NOW, ttl=DAY) is None
            )
            earlier = claim_key(session, "trader", key, "f", command_id="retry", now=later, ttl=DAY)
        assert earlier is not None and earlier.command_id == "first"
        return earlier

    def take_over(key: str, earlier: EarlierRequest, by: str) -> bool:
        with session_scope(sessions) as session:
            return reclaim_key(session, "trader", key, earlier, command_id=by, now=later, ttl=DAY)

    def send(key: str, command_id: str) -> bool:
        with session_scope(sessions) as session:
            return mark_sent(session, "trader", key, command_id, now=later)

    # Never sent: one retry takes it over, a second one (from the same snapshot) cannot, and
    # the stalled first request may no longer send; the retry may.
    unsent = claim("unsent-00001")
    assert take_over("unsent-00001", unsent, "retry")
    assert not take_over("unsent-00001", unsent, "retry-2")
    assert not send("unsent-00001", "first")
    assert send("unsent-00001", "retry")
    assert not send("unsent-00001", "retry")  # marked once
    with sessions() as session:
        row = session.get(IdempotencyRecord, ("trader", "unsent-00001"))
        assert row is not None
        assert (row.command_id, row.sent_at, row.created_at) == ("retry", later, later)
    # Sent (it may have placed an order), answered, or stored without its command: never.
    sent = claim("sent-0000001")
    assert send("sent-0000001", "first")
    assert not take_over("sent-0000001", sent, "retry")
    answered = claim("answered-001")
    with session_scope(sessions) as session:
        keep_answer(session, "trader", "answered-001", 200, {"ok": True})
    assert not take_over("answered-001", answered, "retry")
    legacy = claim("legacy-00001")
    assert not take_over("legacy-00001", EarlierRequest("f", NOW, None, None), "retry")
    assert take_over("legacy-00001", legacy, "retry")  # the same claim, naming its command

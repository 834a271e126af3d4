"""Idempotency keys on SQLite and PostgreSQL: a key is claimed once per user until it expires,
the earlier request and its answer are found again, and of requests racing with one key (each
its own connection, as two API processes would be) exactly one claims it."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select

from sigma.store.db import session_factory, session_scope
from sigma.store.idempotency import EarlierRequest, claim_key, keep_answer
from sigma.store.models import IdempotencyRecord

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
DAY = timedelta(hours=24)


def test_a_key_is_claimed_once_per_user_until_it_expires(engine: Engine) -> None:
    sessions = session_factory(engine)

    def claim(user: str, key: str, fingerprint: str, now: datetime) -> EarlierRequest | None:
        with session_scope(sessions) as session:
            return claim_key(session, user, key, fingerprint, now=now, ttl=DAY)

    assert claim("trader", "key-00000001", "f1", NOW) is None
    # The first request has no answer yet: a retry finds it so.
    pending = EarlierRequest("f1", NOW, None, None)
    assert claim("trader", "key-00000001", "f1", NOW + timedelta(seconds=1)) == pending
    with session_scope(sessions) as session:
        keep_answer(session, "trader", "key-00000001", 409, {"detail": "no bot"})
    later = NOW + DAY - timedelta(seconds=1)
    answered = EarlierRequest("f1", NOW, 409, {"detail": "no bot"})
    assert claim("trader", "key-00000001", "f2", later) == answered  # the caller compares
    assert claim("admin", "key-00000001", "f3", NOW) is None  # keys are per user
    # Expired, the key is free again and holds the new request.
    assert claim("trader", "key-00000001", "f4", NOW + DAY) is None
    assert claim("trader", "key-00000001", "f4", NOW + DAY) == EarlierRequest(
        "f4", NOW + DAY, None, None
    )


def test_of_requests_racing_with_one_key_exactly_one_claims_it(engine: Engine) -> None:
    sessions = session_factory(engine)
    racers = 6
    start = threading.Barrier(racers)

    def race(n: int) -> EarlierRequest | None:
        start.wait(10)
        with session_scope(sessions) as session:
            return claim_key(session, "trader", "race-0000001", f"f{n}", now=NOW, ttl=DAY)

    with ThreadPoolExecutor(racers) as pool:
        outcomes = list(pool.map(race, range(racers)))
    winners = [n for n, outcome in enumerate(outcomes) if outcome is None]
    assert len(winners) == 1, outcomes
    # Every loser found the winner's request.
    assert {o.fingerprint for o in outcomes if o is not None} == {f"f{winners[0]}"}
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(IdempotencyRecord)) == 1

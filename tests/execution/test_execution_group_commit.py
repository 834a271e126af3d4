"""Group commit: concurrent callers share transactions, in arrival order; a failure stays
with the caller that caused it."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import Connection, Engine, text

from sigma.execution.group_commit import GroupCommit


@pytest.fixture
def table(engine: Engine) -> Engine:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE gc_items (n INTEGER PRIMARY KEY)"))
    return engine


def insert(n: int):  # type: ignore[no-untyped-def]
    def work(conn: Connection) -> int:
        conn.execute(text("INSERT INTO gc_items (n) VALUES (:n)"), {"n": n})
        return n * 10

    return work


def stored(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return [row[0] for row in conn.execute(text("SELECT n FROM gc_items ORDER BY n"))]


async def test_concurrent_callers_share_a_transaction_in_arrival_order(table: Engine) -> None:
    group = GroupCommit(table)
    assert await group.run(insert(0)) == 0 and group.transactions == 1
    # Ten callers queue before the group commit gets to run: one transaction for all ten.
    results = await asyncio.gather(*(group.run(insert(n)) for n in range(1, 11)))
    assert results == [n * 10 for n in range(1, 11)]
    assert group.transactions == 2
    assert stored(table) == list(range(11))


async def test_a_failing_caller_fails_alone(table: Engine) -> None:
    group = GroupCommit(table)

    def broken(conn: Connection) -> None:
        raise RuntimeError("fills exceed quantity")

    outcomes = await asyncio.gather(
        group.run(insert(1)),
        group.run(insert(2)),
        group.run(broken),
        group.run(insert(3)),
        return_exceptions=True,
    )
    assert outcomes[:2] == [10, 20] and outcomes[3] == 30
    assert isinstance(outcomes[2], RuntimeError) and "exceed" in str(outcomes[2])
    assert stored(table) == [1, 2, 3]
    # A duplicate key in a batch rolls the whole batch back; redone one by one, only the
    # duplicate fails.
    again = await asyncio.gather(
        group.run(insert(4)), group.run(insert(1)), group.run(insert(5)), return_exceptions=True
    )
    assert again[0] == 40 and again[2] == 50 and isinstance(again[1], Exception)
    assert stored(table) == [1, 2, 3, 4, 5]


async def test_batches_are_bounded_and_a_cancelled_caller_is_skipped(table: Engine) -> None:
    group = GroupCommit(table, max_batch=2)
    first = asyncio.ensure_future(group.run(insert(1)))
    gone = asyncio.ensure_future(group.run(insert(2)))
    rest = [asyncio.ensure_future(group.run(insert(n))) for n in (3, 4, 5)]
    await asyncio.sleep(0)  # all five are queued
    gone.cancel()
    assert await first == 10 and [await r for r in rest] == [30, 40, 50]
    assert stored(table) == [1, 3, 4, 5]
    assert group.transactions == 3  # [1] (2 was cancelled), [3, 4], [5]
    with pytest.raises(ValueError, match="max_batch"):
        GroupCommit(table, max_batch=0)

"""Group commit: concurrent callers share transactions, in arrival order; a failure stays
with the caller that caused it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import Column, Connection, Engine, Integer, MetaData, Table, create_engine, text

from sigma.store.group_commit import GroupCommit, Shared
from sigma.store.pipeline import Batch, Plan

_items = Table("gc_items", MetaData(), Column("n", Integer, primary_key=True))
_INSERT = _items.insert()


@pytest.fixture
def table(engine: Engine) -> Engine:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE gc_items (n INTEGER PRIMARY KEY)"))
    return engine


@pytest.fixture
async def groups() -> AsyncIterator[Callable[..., GroupCommit]]:
    """Makes GroupCommits and closes them (each holds a connection on PostgreSQL)."""
    made: list[GroupCommit] = []

    def make(engine: Engine, **kw: Any) -> GroupCommit:
        made.append(GroupCommit(engine, **kw))
        return made[-1]

    yield make
    for group in made:
        await group.close()


def insert_many(dialect: str, numbers: list[int]) -> Plan[list[int]]:
    """A plan: all numbers in one round trip; fails on a negative one."""
    if any(n < 0 for n in numbers):
        raise ValueError("negative")
    yield [Batch(_INSERT, [{"n": n} for n in numbers])]
    return [n * 100 for n in numbers]


def insert(n: int):  # type: ignore[no-untyped-def]
    def work(conn: Connection) -> int:
        conn.execute(text("INSERT INTO gc_items (n) VALUES (:n)"), {"n": n})
        return n * 10

    return work


def stored(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return [row[0] for row in conn.execute(text("SELECT n FROM gc_items ORDER BY n"))]


async def test_concurrent_callers_share_a_transaction_in_arrival_order(
    table: Engine, groups: Callable[..., GroupCommit]
) -> None:
    group = groups(table)
    assert await group.run(insert(0)) == 0 and group.transactions == 1
    # Ten callers queue before the group commit gets to run: one transaction for all ten.
    results = await asyncio.gather(*(group.run(insert(n)) for n in range(1, 11)))
    assert results == [n * 10 for n in range(1, 11)]
    assert group.transactions == 2
    assert stored(table) == list(range(11))


async def test_a_failing_caller_fails_alone(
    table: Engine, groups: Callable[..., GroupCommit]
) -> None:
    group = groups(table)

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


async def test_batches_are_bounded_and_a_cancelled_caller_is_skipped(
    table: Engine, groups: Callable[..., GroupCommit]
) -> None:
    group = groups(table, max_batch=2)
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


async def test_shared_items_of_one_plan_share_its_round_trips(
    table: Engine, groups: Callable[..., GroupCommit], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Consecutive items of one plan are done by one plan call; a `Work` between them splits
    the run, and every caller gets its own result in arrival order."""
    calls: list[list[int]] = []

    def counted(dialect: str, numbers: list[int]) -> Plan[list[int]]:
        calls.append(numbers)
        return insert_many(dialect, numbers)

    group = groups(table)
    await group.warm()
    results = await asyncio.gather(
        group.run(Shared(counted, 1)),
        group.run(Shared(counted, 2)),
        group.run(insert(3)),
        group.run(Shared(counted, 4)),
        group.run(Shared(counted, 5)),
    )
    assert results == [100, 200, 30, 400, 500]
    assert calls == [[1, 2], [4, 5]] and group.transactions == 1
    assert stored(table) == [1, 2, 3, 4, 5]


async def test_a_failing_plan_is_redone_item_by_item(
    table: Engine, groups: Callable[..., GroupCommit]
) -> None:
    group = groups(table)
    outcomes = await asyncio.gather(
        group.run(Shared(insert_many, 1)),
        group.run(Shared(insert_many, -2)),
        group.run(Shared(insert_many, 3)),
        return_exceptions=True,
    )
    assert outcomes[0] == 100 and outcomes[2] == 300
    assert isinstance(outcomes[1], ValueError)
    # A database error in a batch (a duplicate key) is rolled back the same way.
    again = await asyncio.gather(
        group.run(Shared(insert_many, 4)),
        group.run(Shared(insert_many, 1)),
        return_exceptions=True,
    )
    assert again[0] == 400 and isinstance(again[1], Exception)
    assert stored(table) == [1, 3, 4]


@pytest.mark.pg
async def test_a_connection_the_server_dropped_is_replaced(
    pg_schema_url: str, groups: Callable[..., GroupCommit]
) -> None:
    """The group keeps one connection; when the server ends it, the transaction on it fails
    and the next one runs on a new connection."""
    table = create_engine(pg_schema_url)
    with table.begin() as c:
        c.execute(text("CREATE TABLE gc_items (n INTEGER PRIMARY KEY)"))
    group = groups(table)
    assert await group.run(Shared(insert_many, 1)) == 100
    pid = await group.run(lambda conn: conn.exec_driver_sql("SELECT pg_backend_pid()").scalar())
    with table.connect() as c:
        assert c.scalar(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
    with pytest.raises(Exception, match="(?i)terminat|closed|connection"):
        await group.run(Shared(insert_many, 2))
    assert await group.run(Shared(insert_many, 3)) == 300
    assert stored(table) == [1, 3]
    table.dispose()


@pytest.mark.pg
async def test_different_keys_commit_side_by_side_on_postgresql(
    pg_schema_url: str, groups: Callable[..., GroupCommit]
) -> None:
    """Work for one key waiting on a lock does not hold up work for another key (another
    lane), even keys a hash would put in one lane; SQLite has a single lane."""
    table = create_engine(pg_schema_url)
    group = groups(table, lanes=2)
    names = [f"SYM{n}" for n in range(10)]
    one, other = next((a, b) for a in names for b in names if a < b and hash(a) % 2 == hash(b) % 2)
    holder = table.connect()
    holder.exec_driver_sql("SELECT pg_advisory_lock(7)")

    def blocked(conn: Connection) -> str:
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7)")
        return "a"

    def free(conn: Connection) -> str:
        return str(conn.exec_driver_sql("SELECT 'b'").scalar())

    first = asyncio.ensure_future(group.run(blocked, key=one))
    assert await asyncio.wait_for(group.run(free, key=other), 10) == "b"
    assert not first.done()
    holder.exec_driver_sql("SELECT pg_advisory_unlock(7)")
    assert await asyncio.wait_for(first, 10) == "a"
    holder.close()
    table.dispose()
    with pytest.raises(ValueError, match="lanes"):
        GroupCommit(table, lanes=0)

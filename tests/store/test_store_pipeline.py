"""Plans: the same generator of round trips gives the same rows on SQLite's driver and in
psycopg's pipeline mode, with SQLAlchemy's type processing and column defaults."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    create_engine,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import create_async_engine

from sigma.store.db import create_db_engine
from sigma.store.pipeline import Batch, PgPipeline, Plan, SqlitePlans
from sigma.store.types import ExactDecimal, UTCDateTime

metadata = MetaData()
items = Table(
    "pl_items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(16), unique=True, nullable=False),
    Column("amount", ExactDecimal, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("note", String(16), nullable=False, default="none"),
)
INSERT = {
    "postgresql": postgresql.insert(items).on_conflict_do_nothing().returning(items.c.key),
    "sqlite": sqlite.insert(items).on_conflict_do_nothing().returning(items.c.key),
}
READ = select(items.c.key, items.c.amount, items.c.at, items.c.note).where(
    items.c.key == bindparam("k")
)
PLAIN_INSERT = items.insert()
ADD = update(items).where(items.c.key == bindparam("k")).values(amount=items.c.amount + 1)
NAIVE = datetime(2026, 1, 2, 3, 4, 5)  # taken as UTC


def plan(dialect: str) -> Plan[tuple[Any, ...]]:
    """Insert three keys (one twice), read two back, add one to a key, read it again."""
    rows = [
        {"key": "a", "amount": Decimal("1.5"), "at": NAIVE},
        {"key": "b", "amount": 2, "at": NAIVE},
        {"key": "a", "amount": Decimal(9), "at": NAIVE},
    ]
    inserted, read = yield [
        Batch(INSERT[dialect], rows, returning=True),
        Batch(READ, [{"k": "a"}, {"k": "b"}, {"k": "nobody"}], returning=True),
    ]
    nothing = yield [Batch(ADD, []), Batch(READ, [], returning=True)]
    yield [Batch(ADD, [{"k": "a"}])]
    (after,) = yield [Batch(READ, [{"k": "a"}], returning=True)]
    return inserted, read, nothing, after


EXPECTED = (
    [("a",), ("b",)],
    [
        ("a", Decimal("1.5"), datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "none"),
        ("b", Decimal(2), datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "none"),
    ],
    [[], []],
    [("a", Decimal("2.5"), datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "none")],
)


def test_a_plan_runs_on_the_sqlite_driver(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'plans.db'}")
    metadata.create_all(engine)
    plans = SqlitePlans()
    with engine.begin() as conn:
        result = plans.run(conn, plan("sqlite"))
    assert result == EXPECTED
    assert [type(v) for v in result[1][0]] == [str, Decimal, datetime, str]
    with engine.begin() as conn:  # committed with the caller's transaction
        assert plans.run(conn, _insert(["c"])) == 1
    assert _keys(str(engine.url)) == ["a", "b", "c"]
    with pytest.raises(Exception, match="UNIQUE"), engine.begin() as conn:
        plans.run(conn, _insert(["d", "d"]))
    assert _keys(str(engine.url)) == ["a", "b", "c"]  # rolled back with it
    engine.dispose()


@pytest.fixture
def pg(pg_schema_url: str) -> Iterator[str]:
    engine = create_engine(pg_schema_url)
    metadata.create_all(engine)
    engine.dispose()
    yield pg_schema_url


@pytest.fixture
async def raw(pg: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """The psycopg connection under a SQLAlchemy asyncio one, as the group commit uses it."""
    engine = create_async_engine(pg)
    try:
        async with engine.connect() as conn:
            driver = (await conn.get_raw_connection()).driver_connection
            assert driver is not None
            yield driver
    finally:
        await engine.dispose()


@pytest.mark.pg
async def test_the_same_plan_runs_in_psycopg_pipeline_mode(
    raw: psycopg.AsyncConnection[Any],
) -> None:
    pipeline = PgPipeline(postgresql.psycopg.dialect())
    assert await pipeline.run(raw, plan("postgresql")) == EXPECTED
    await raw.commit()
    # Compiled once per statement and set of parameter names: READ ran three times.
    assert len(pipeline._prepared) == 3
    with pytest.raises(ValueError, match="no value for parameter 'k'"):
        await pipeline.run(raw, _read_without_key())
    await raw.rollback()


def _read_without_key() -> Plan[None]:
    yield [Batch(READ, [{"key": "a"}], returning=True)]


def _insert(keys: list[str]) -> Plan[int]:
    """Reads nothing, so with `commit` the COMMIT rides along with the inserts."""
    yield [Batch(PLAIN_INSERT, [{"key": k, "amount": 1, "at": NAIVE} for k in keys])]
    return len(keys)


def _keys(url: str) -> list[str]:
    engine = create_engine(url)
    with engine.connect() as conn:
        keys = [row[0] for row in conn.execute(select(items.c.key).order_by(items.c.key))]
    engine.dispose()
    return keys


@pytest.mark.pg
async def test_a_plan_can_commit_with_its_last_round_trip(
    pg: str, raw: psycopg.AsyncConnection[Any]
) -> None:
    pipeline = PgPipeline(postgresql.psycopg.dialect())
    assert await pipeline.run(raw, _insert(["a", "b"]), commit=True) == 2
    assert _keys(pg) == ["a", "b"]  # visible to another connection: committed
    assert await pipeline.run(raw, plan("postgresql"), commit=True) == (
        [],
        [
            ("a", Decimal(1), datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "none"),
            ("b", Decimal(1), datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "none"),
        ],
        [[], []],
        [("a", Decimal(2), datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "none")],
    )
    # A failing write in the committing exchange commits nothing.
    with pytest.raises(Exception, match="duplicate key"):
        await pipeline.run(raw, _insert(["c", "c"]), commit=True)
    await raw.rollback()
    assert _keys(pg) == ["a", "b"]


def _read_then_add(key: str) -> Plan[list[tuple[Any, ...]]]:
    """A read, then a write that needs no answer: the write goes with the COMMIT."""
    (rows,) = yield [Batch(READ, [{"k": key}], returning=True)]
    yield [Batch(ADD, [{"k": key}])]
    return rows


async def _prepared_here(raw: psycopg.AsyncConnection[Any]) -> list[str]:
    cursor = await raw.execute(
        "SELECT name FROM pg_prepared_statements WHERE name LIKE 'sigma_plan_%' ORDER BY name"
    )
    names = [str(name) for (name,) in await cursor.fetchall()]
    await raw.rollback()
    return names


@pytest.mark.pg
async def test_the_committing_exchange_runs_statements_prepared_once_per_connection(
    pg: str, raw: psycopg.AsyncConnection[Any]
) -> None:
    pipeline = PgPipeline(postgresql.psycopg.dialect())
    for keys in (["a"], ["b", "c"]):  # the second insert reuses the first one's statement
        assert await pipeline.run(raw, _insert(keys), commit=True) == len(keys)
    (read,) = await pipeline.run(raw, _read_then_add("a"), commit=True)
    assert read == ("a", Decimal(1), datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "none")
    await pipeline.run(raw, _read_then_add("a"), commit=True)
    engine = create_engine(pg)
    with engine.connect() as conn:  # committed, as another connection sees it
        amounts = dict(tuple(row) for row in conn.execute(select(items.c.key, items.c.amount)))
    engine.dispose()
    assert amounts == {"a": Decimal(3), "b": Decimal(1), "c": Decimal(1)}
    assert not raw.autocommit and raw.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert len(await _prepared_here(raw)) == 2  # the insert and the add, once each


@pytest.mark.pg
async def test_a_connection_whose_prepared_statements_vanished_is_given_up(
    pg: str, raw: psycopg.AsyncConnection[Any]
) -> None:
    pipeline = PgPipeline(postgresql.psycopg.dialect())
    await pipeline.run(raw, _insert(["a"]), commit=True)
    await raw.execute("DEALLOCATE ALL")  # as a connection reset by a pool would be
    await raw.commit()
    with pytest.raises(psycopg.errors.InvalidSqlStatementName):
        await pipeline.run(raw, _insert(["b"]), commit=True)
    assert raw.closed  # its owner opens another
    url = pg.replace("postgresql+psycopg://", "postgresql://")
    async with await psycopg.AsyncConnection.connect(url) as fresh:
        assert await pipeline.run(fresh, _insert(["b"]), commit=True) == 1
        assert len(await _prepared_here(fresh)) == 1
    assert _keys(pg) == ["a", "b"]


SLEEP = select(func.pg_sleep(bindparam("seconds")))
DELETE_ALL = items.delete()


def _final(batch: Batch) -> Plan[None]:
    yield [batch]


@pytest.mark.pg
async def test_a_statement_without_parameters_and_a_cancelled_commit(
    pg: str, raw: psycopg.AsyncConnection[Any]
) -> None:
    pipeline = PgPipeline(postgresql.psycopg.dialect())
    await pipeline.run(raw, _insert(["a"]), commit=True)
    await pipeline.run(raw, _final(Batch(DELETE_ALL, [{}])), commit=True)
    assert _keys(pg) == []
    # Cancelled while the server works: psycopg cancels the query, and the connection is
    # back in transactions, ready for the next plan.
    slow = asyncio.create_task(
        pipeline.run(raw, _final(Batch(SLEEP, [{"seconds": 5}])), commit=True)
    )
    await asyncio.sleep(0.2)
    slow.cancel()
    with pytest.raises(asyncio.CancelledError):
        await slow
    assert not raw.autocommit and raw.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert await pipeline.run(raw, _insert(["b"]), commit=True) == 1
    assert _keys(pg) == ["b"]

"""The async `Reader`: the same rows on SQLite (thread pool) and PostgreSQL (asyncpg on the
event loop), its compiled-statement cache, and its connection pool surviving failures."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import bindparam, create_engine, literal, select, text

from sigma.api.reader import COMPILED_CACHE, SQLITE_THREADS, Reader
from sigma.bootstrap import App
from sigma.store.db import session_scope
from sigma.store.models import OrderRecord, User
from tests.api.conftest import make_app

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
ORDERS = select(OrderRecord.client_order_id, OrderRecord.qty, OrderRecord.created_at).order_by(
    OrderRecord.id
)
BY_SYMBOL = ORDERS.where(OrderRecord.symbol == bindparam("symbol"))


def _seed(app: App) -> None:
    with session_scope(app.sessions) as s:
        for i, symbol in enumerate(["BTC", "ETH", "BTC"]):
            s.add(
                OrderRecord(
                    client_order_id=f"o{i}",
                    mode="paper",
                    symbol=symbol,
                    side="buy",
                    qty=Decimal("0.5") + i,
                    created_at=T0,
                )
            )


@pytest.fixture(params=["sqlite", pytest.param("pg", marks=pytest.mark.pg)])
def seeded(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[App]:
    if request.param == "pg":
        app: App = request.getfixturevalue("pg_app")
    else:
        app = make_app(f"sqlite:///{tmp_path / 'r.db'}", tmp_path / "var")
    _seed(app)
    yield app
    app.close()


def test_rows_are_the_same_typed_values_on_both_databases(seeded: App) -> None:
    reader = Reader(lambda: seeded.db)

    async def read() -> tuple[object, ...]:
        try:
            everything = await reader.rows(ORDERS)
            btc = await reader.rows(BY_SYMBOL, {"symbol": "BTC"})
            none = await reader.first(BY_SYMBOL, {"symbol": "SOL"})
            return everything, btc, none
        finally:
            await reader.close()

    everything, btc, none = asyncio.run(read())
    assert [tuple(r) for r in everything] == [  # type: ignore[attr-defined]
        ("o0", Decimal("0.5"), T0),
        ("o1", Decimal("1.5"), T0),
        ("o2", Decimal("2.5"), T0),
    ]
    created = everything[0][2]  # type: ignore[index]
    assert created.utcoffset().total_seconds() == 0 and isinstance(created, datetime)
    assert [r[0] for r in btc] == ["o0", "o2"]  # type: ignore[attr-defined]
    assert none is None
    assert reader.is_async is (seeded.db.dialect.name == "postgresql")


def test_sqlite_reads_fold_in_a_bounded_number_of_threads_off_the_loop(tmp_path: Path) -> None:
    app = make_app(f"sqlite:///{tmp_path / 'r.db'}", tmp_path / "var")
    _seed(app)
    reader = Reader(lambda: app.read_db)
    running = 0
    most = 0
    lock = threading.Lock()

    def count(rows: Sequence[Sequence[object]]) -> int:
        nonlocal running, most
        assert threading.current_thread() is not threading.main_thread()
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.05)  # a long reduction: the others must wait for a thread
        with lock:
            running -= 1
        return len(rows)

    async def read() -> list[int]:
        return list(await asyncio.gather(*(reader.fold(ORDERS, None, count) for _ in range(6))))

    try:
        assert asyncio.run(read()) == [3] * 6
        assert most == SQLITE_THREADS
    finally:
        app.close()


@pytest.mark.pg
def test_statements_compile_once_and_literal_values_are_kept(pg_app: App) -> None:
    reader = Reader(lambda: pg_app.db)
    with_literal = select(User.username).where(User.role == literal("admin"))

    async def read() -> list[object]:
        try:
            return [
                await reader.rows(with_literal),
                await reader.rows(with_literal),
                await reader.first(select(User.username).where(User.username == "viewer")),
            ]
        finally:
            await reader.close()

    admins, again, viewer = asyncio.run(read())
    assert [r[0] for r in admins] == ["admin"] and again == admins  # type: ignore[attr-defined]
    assert viewer is not None and viewer[0] == "viewer"  # type: ignore[index]
    assert len(reader._compiled) == 2


@pytest.mark.pg
def test_the_compiled_cache_is_bounded_and_refuses_expanding_in(pg_app: App) -> None:
    reader = Reader(lambda: pg_app.db)
    for i in range(COMPILED_CACHE + 5):
        reader._sql(select(User.username).where(User.username == f"u{i}"))
    assert len(reader._compiled) == COMPILED_CACHE
    with pytest.raises(ValueError, match="expanding IN"):
        reader._sql(select(User.username).where(User.username.in_(["a", "b"])))


def _backend_pids(app: App) -> set[int]:
    with app.db.connect() as conn:
        return {
            pid
            for (pid,) in conn.execute(
                text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND application_name = ''"
                )
            )
        }


@pytest.mark.pg
def test_pool_stays_within_its_size_and_survives_a_server_side_disconnect(pg_app: App) -> None:
    reader = Reader(lambda: pg_app.db, pool_size=3)
    users = select(User.username).order_by(User.username)
    before = _backend_pids(pg_app)

    async def scenario() -> None:
        try:
            results = await asyncio.gather(*(reader.rows(users) for _ in range(20)))
            assert all(len(r) == 3 for r in results)
            ours = _backend_pids(pg_app) - before
            assert 1 <= len(ours) <= 3
            # The server drops every pooled connection (a restart, an idle timeout).
            with pg_app.db.connect() as conn:
                for pid in ours:
                    conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            await asyncio.sleep(0.1)
            assert len(await reader.rows(users)) == 3  # retried on a fresh connection
            # A bad query fails alone; its connection stays in the pool.
            idle = len(reader._connections()._idle)
            with pytest.raises(asyncpg.exceptions.UndefinedTableError):
                await reader.rows(text("SELECT * FROM no_such_table"))
            assert len(reader._connections()._idle) == idle
        finally:
            await reader.close()

    asyncio.run(scenario())


@pytest.mark.pg
def test_warm_opens_the_whole_pool_before_the_first_request(pg_app: App) -> None:
    reader = Reader(lambda: pg_app.db, pool_size=4)
    before = _backend_pids(pg_app)

    async def scenario() -> None:
        try:
            await reader.warm()
            assert len(_backend_pids(pg_app) - before) == 4
            # A burst right after the start finds its connections open: no new backend.
            opened = _backend_pids(pg_app)
            await asyncio.gather(*(reader.rows(select(literal(1))) for _ in range(8)))
            assert _backend_pids(pg_app) == opened
            await reader.warm()  # a full pool opens nothing more
            assert _backend_pids(pg_app) == opened
        finally:
            await reader.close()

    asyncio.run(scenario())


def test_warm_does_nothing_on_sqlite_and_survives_an_unreachable_database(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(f"sqlite:///{tmp_path / 'w.db'}", tmp_path / "var")
    try:
        asyncio.run(Reader(lambda: app.db).warm())  # SQLite: no pool to open
    finally:
        app.close()
    down = create_engine("postgresql+psycopg://postgres@127.0.0.1:1/none")  # connects lazily
    reader = Reader(lambda: down)
    # Nothing listens on port 1: the start goes on and says why.
    asyncio.run(reader.warm())
    assert "could not open the API's database connections" in caplog.text
    assert reader._pool is not None and reader._pool._idle == []


@pytest.mark.pg
def test_a_read_cancelled_mid_query_does_not_poison_the_pool(pg_app: App) -> None:
    reader = Reader(lambda: pg_app.db, pool_size=1)

    async def scenario() -> None:
        try:
            slow = asyncio.create_task(reader.rows(text("SELECT pg_sleep(5)")))
            await asyncio.sleep(0.2)
            slow.cancel()
            with pytest.raises(asyncio.CancelledError):
                await slow
            assert reader._connections()._idle == []  # closed, not handed out again
            assert [r[0] for r in await reader.rows(select(literal(1)))] == [1]
        finally:
            await reader.close()

    asyncio.run(scenario())


@pytest.mark.pg
def test_each_event_loop_gets_its_own_connections(pg_app: App) -> None:
    reader = Reader(lambda: pg_app.db)
    one = select(literal(1))
    asyncio.run(reader.rows(one))
    first_pool = reader._pool
    # A second loop (another test client, a restarted server): the first loop's connections
    # cannot be used there.
    assert [r[0] for r in asyncio.run(reader.rows(one))] == [1]
    assert reader._pool is not first_pool
    asyncio.run(reader.close())
    assert reader._pool is None
    asyncio.run(reader.close())  # closing twice is harmless


class StubConnection:
    """What `_Pool` uses of an asyncpg connection, failing on demand."""

    def __init__(self, fail: BaseException | None = None, close_fails: bool = False) -> None:
        self.fail, self.close_fails = fail, close_fails
        self.closed = self.terminated = False

    async def fetch(self, sql: str, *args: object) -> list[tuple[object, ...]]:
        if self.fail is not None:
            raise self.fail
        return [(sql, *args)]

    def is_closed(self) -> bool:
        return self.closed or self.terminated

    async def close(self) -> None:
        if self.close_fails:
            raise OSError("socket gone")
        self.closed = True

    def terminate(self) -> None:
        self.terminated = True


def test_pool_keeps_a_connection_after_a_bad_query_and_replaces_a_broken_one() -> None:
    from sigma.api.reader import _Pool

    made: list[StubConnection] = []
    plan = [
        StubConnection(ValueError("bad query")),
        StubConnection(),
        StubConnection(OSError("still down")),
    ]

    async def connect() -> StubConnection:
        made.append(plan[len(made)])
        return made[-1]

    async def scenario() -> None:
        pool = _Pool(connect, 2)
        with pytest.raises(ValueError, match="bad query"):
            await pool.run("q", [1])
        assert pool._idle == [made[0]]  # kept: the connection is fine
        made[0].fail = ConnectionResetError("server gone")
        assert await pool.run("q", [2]) == [("q", 2)]  # dropped, retried on a new one
        assert made[0].terminated and pool._idle == [made[1]]
        made[1].fail = OSError("down")
        with pytest.raises(OSError, match="still down"):  # the retry fails too: give up
            await pool.run("q", [3])
        assert made[1].terminated and made[2].terminated and pool._idle == []
        pool._idle = [StubConnection(close_fails=True)]
        stuck = pool._idle[0]
        await pool.close()
        assert stuck.terminated and pool._idle == []

    asyncio.run(scenario())

"""Group commit: the database work of concurrent callers, many per transaction.

A durable commit waits for the write-ahead log to reach the disk (0.5 ms to 2.5 ms on the
machine the benchmarks ran on), more than the statements of one booking. When orders
arrive faster than one commit each can take, the worker books everything that is waiting in
one transaction, in arrival order, and pays for one flush. Under light load a batch is a
single order, so nothing waits for company.

A caller brings either a `Work` (a function of the connection, run as it is) or a `Shared`
item: consecutive `Shared` items of the same plan are done by one plan for all of them (see
`sigma.store.pipeline`), so a batch of bookings costs the round trips of one.

Callers name a key (the worker: the position an order books into). Equal keys share a lane,
served in arrival order; on PostgreSQL several lanes run their transactions side by side, so
a burst of orders on two symbols pays for two concurrent commits instead of two in a row.

A batch that fails is rolled back and its work is redone one transaction per caller, so one
bad order fails alone and the others are booked.

On PostgreSQL the transaction runs on the event loop (psycopg's asyncio connection: plans in
pipeline mode, `Work` driven through SQLAlchemy's `run_sync`), not in a thread: a thread
waiting for each round trip must win the GIL back from the event loop every time, which cost
up to the interpreter's 5 ms switch interval per statement. SQLite has no round trips to wait
for and runs in a thread. Connections are not pinged before use: a transaction on a connection
the server dropped fails, the connection is discarded, and the work is redone once on its own.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from sqlalchemy import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.orm import Session, sessionmaker

from sigma.store.pipeline import PgPipeline, Plan, SqlitePlans

log = logging.getLogger(__name__)

R = TypeVar("R")
Work = Callable[[Connection], Any]
PlanFn = Callable[[str, list[Any]], Plan[list[Any]]]


@dataclass(frozen=True, slots=True)
class Shared:
    """One caller's `item` for work done for several callers at once: `plan(dialect,
    items)` returns one result per item."""

    plan: PlanFn
    item: Any


Job = Work | Shared


@dataclass(eq=False)
class _Lane:
    """One serial stream of transactions: its waiting callers, the task draining them and
    (PostgreSQL) its own connection."""

    pending: list[tuple[Job, asyncio.Future[Any]]] = field(default_factory=list)
    drainer: asyncio.Task[None] | None = None
    conn: AsyncConnection | None = None


class GroupCommit:
    """Runs `work(connection)` for each caller of `run`, with up to `max_batch` callers
    sharing one transaction.

    Callers with the same `key` are served in arrival order, one transaction after another.
    Keys are meant to be few and lasting (the worker's are positions): each is remembered
    with its lane. On PostgreSQL, keys are spread over `lanes` independent streams (each
    with a connection of its own) whose transactions run side by side: the worker keys
    bookings by position, so orders on different positions do not wait for each other's
    commit, and two lanes never lock the same position row. SQLite allows one writer at a
    time and has one lane."""

    def __init__(self, engine: Engine, *, max_batch: int = 64, lanes: int = 4) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if lanes < 1:
            raise ValueError("lanes must be at least 1")
        self.engine = engine
        self._async: AsyncEngine | None = None
        if engine.dialect.name == "postgresql":
            self._async = create_async_engine(
                engine.url.render_as_string(hide_password=False), pool_size=lanes
            )
            self._pipeline = PgPipeline(self._async.dialect)
        else:
            lanes = 1
            self._sqlite = SqlitePlans()
        self._lanes = [_Lane() for _ in range(lanes)]
        self._lane_of: dict[Hashable, _Lane] = {}
        self.max_batch = max_batch
        self.transactions = 0
        """Transactions committed or attempted so far (for tests and metrics)."""

    @classmethod
    def bound_to(cls, sessions: sessionmaker[Session]) -> GroupCommit:
        """A group commit on the engine `sessions` open their sessions on."""
        bind = sessions.kw["bind"]
        assert isinstance(bind, Engine)  # the App's sessionmaker is bound to its engine
        return cls(bind)

    @overload
    async def run(self, work: Callable[[Connection], R], *, key: Hashable = None) -> R: ...
    @overload
    async def run(self, work: Shared, *, key: Hashable = None) -> Any: ...
    async def run(self, work: Callable[[Connection], R] | Shared, *, key: Hashable = None) -> Any:
        """Run `work` in a transaction (perhaps shared with other callers' work of the same
        lane) and return its result once that transaction committed; raises what `work`
        raised. Work with equal keys is done in the order `run` was called."""
        lane = self._lane_of.get(key)
        if lane is None:
            # New keys take the lanes in turn: two positions share a lane (and wait for each
            # other's commits) only once every lane has one. A hash would put two keys in one
            # lane one time in `lanes`.
            lane = self._lane_of[key] = self._lanes[len(self._lane_of) % len(self._lanes)]
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        lane.pending.append((work, future))
        if lane.drainer is None or lane.drainer.done():
            lane.drainer = asyncio.create_task(self._drain(lane))
        return await future

    async def _drain(self, lane: _Lane) -> None:
        pending = lane.pending
        while pending:
            batch = [(w, f) for w, f in pending[: self.max_batch] if not f.cancelled()]
            del pending[: self.max_batch]
            if not batch:
                continue
            try:
                results = await self._transaction(lane, [w for w, _ in batch])
            except Exception as exc:
                if len(batch) == 1:
                    _settle(batch[0][1], error=exc)
                    continue
                log.info(
                    "a batch of %d bookings failed (%r); booking them one by one", len(batch), exc
                )
                for work, future in batch:
                    try:
                        (result,) = await self._transaction(lane, [work])
                    except Exception as single:
                        _settle(future, error=single)
                    else:
                        _settle(future, result)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                _settle(future, result)

    async def _transaction(self, lane: _Lane, jobs: list[Job]) -> list[Any]:
        self.transactions += 1
        if self._async is None:
            return await asyncio.to_thread(self._in_thread, jobs)
        conn = await self._connection(lane)
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None  # the connection is open
        try:
            results: list[Any] = []
            runs = _runs(jobs)
            for n, (plan, run) in enumerate(runs, start=1):
                if plan is None:
                    results += await conn.run_sync(_run_all, run)
                    continue
                # A transaction that ends with a plan SQLAlchemy took no part in commits in
                # the plan's last exchange.
                last = n == len(runs) and not conn.in_transaction()
                items = [shared.item for shared in run]
                results += await self._pipeline.run(raw, plan("postgresql", items), commit=last)
            # Plans run on the driver's connection, in a transaction SQLAlchemy may not know
            # about; the driver's commit ends it either way (nothing to do if a plan did).
            if conn.in_transaction():
                await conn.commit()
            else:
                await raw.commit()
            return results
        except BaseException:
            await self._end_failed(conn, raw)
            raise

    async def _connection(self, lane: _Lane) -> AsyncConnection:
        """The lane's own connection: its transactions run one at a time, so it never waits
        for the pool, and returning it to the pool after every commit would cost a reset."""
        assert self._async is not None
        if lane.conn is None or lane.conn.closed or lane.conn.invalidated:
            lane.conn = await self._async.connect()
        return lane.conn

    async def _end_failed(self, conn: AsyncConnection, raw: Any) -> None:
        """Roll back a failed transaction; drop the connection if the server is gone."""
        if raw.broken or raw.closed:
            # SQLAlchemy did not see the error of a plan: tell the pool the connection is
            # gone, so the next transaction opens a new one.
            await conn.invalidate()
            return
        try:
            if conn.in_transaction():
                await conn.rollback()
            else:
                await raw.rollback()
        except Exception:
            log.warning("rolling back a failed batch failed; reconnecting", exc_info=True)
            await conn.invalidate()

    def _in_thread(self, jobs: list[Job]) -> list[Any]:
        with self.engine.begin() as conn:
            results: list[Any] = []
            for plan, run in _runs(jobs):
                if plan is None:
                    results += _run_all(conn, run)
                else:
                    items = [shared.item for shared in run]
                    results += self._sqlite.run(conn, plan(conn.dialect.name, items))
            return results

    async def warm(self) -> None:
        """Open a connection now, so the first booking pays no connection set-up and an
        unreachable database shows at start."""
        if self._async is not None:
            await self._connection(self._lanes[0])

    async def close(self) -> None:
        """Release the connections of the asyncio engine (PostgreSQL)."""
        for lane in self._lanes:
            if lane.conn is not None:
                await lane.conn.close()
                lane.conn = None
        if self._async is not None:
            await self._async.dispose()


def _run_all(conn: Connection, works: list[Any]) -> list[Any]:
    return [work(conn) for work in works]


def _runs(jobs: list[Job]) -> list[tuple[PlanFn | None, list[Any]]]:
    """Consecutive jobs grouped: `Work`s (plan None) and `Shared` items of one plan."""
    return [
        (plan, list(run))
        for plan, run in itertools.groupby(
            jobs, key=lambda job: job.plan if isinstance(job, Shared) else None
        )
    ]


def _settle(
    future: asyncio.Future[Any], result: Any = None, error: BaseException | None = None
) -> None:
    if future.done():  # the caller was cancelled; the work is done all the same
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)

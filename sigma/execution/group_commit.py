"""Group commit: the database work of concurrent callers, many per transaction.

A durable commit waits for the write-ahead log to reach the disk (about 2.5 ms on the
machine the benchmarks ran on), far more than the statements of one booking. When orders
arrive faster than one commit each can take, the worker books everything that is waiting in
one transaction, in arrival order, and pays for one flush. Under light load a batch is a
single order, so nothing waits for company.

A batch that fails is rolled back and its work is redone one transaction per caller, so one
bad order fails alone and the others are booked.

On PostgreSQL the transaction runs on the event loop (psycopg's asyncio connection, the sync
work driven through SQLAlchemy's `run_sync`), not in a thread: a thread waiting for each of a
booking's round trips must win the GIL back from the event loop every time, which cost up to
the interpreter's 5 ms switch interval per statement. SQLite has no round trips to wait for
and runs in a thread. Connections are not pinged before use: a transaction on a connection
the server dropped fails, the pool is refreshed, and the work is redone once on its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

log = logging.getLogger(__name__)

R = TypeVar("R")
Work = Callable[[Connection], Any]


class GroupCommit:
    """Runs `work(connection)` for each caller of `run`, serialised in arrival order, with
    up to `max_batch` callers sharing one transaction."""

    def __init__(self, engine: Engine, *, max_batch: int = 64) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.engine = engine
        self._async: AsyncEngine | None = None
        if engine.dialect.name == "postgresql":
            self._async = create_async_engine(engine.url.render_as_string(hide_password=False))
        self.max_batch = max_batch
        self._pending: list[tuple[Work, asyncio.Future[Any]]] = []
        self._drainer: asyncio.Task[None] | None = None
        self.transactions = 0
        """Transactions committed or attempted so far (for tests and metrics)."""

    @property
    def events_engine(self) -> Engine:
        """The Engine whose events (`before_cursor_execute`, …) see this group's statements."""
        return self._async.sync_engine if self._async is not None else self.engine

    async def run(self, work: Callable[[Connection], R]) -> R:
        """Run `work` in a transaction (perhaps shared with other callers' work) and return
        its result once that transaction committed; raises what `work` raised."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((work, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._pending:
            batch = [(w, f) for w, f in self._pending[: self.max_batch] if not f.cancelled()]
            del self._pending[: self.max_batch]
            if not batch:
                continue
            try:
                results = await self._transaction([w for w, _ in batch])
            except Exception as exc:
                if len(batch) == 1:
                    _settle(batch[0][1], error=exc)
                    continue
                log.info(
                    "a batch of %d bookings failed (%r); booking them one by one", len(batch), exc
                )
                for work, future in batch:
                    try:
                        (result,) = await self._transaction([work])
                    except Exception as single:
                        _settle(future, error=single)
                    else:
                        _settle(future, result)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                _settle(future, result)

    async def _transaction(self, works: list[Work]) -> list[Any]:
        self.transactions += 1
        if self._async is None:
            return await asyncio.to_thread(self._in_thread, works)
        async with self._async.begin() as conn:
            return await conn.run_sync(_run_all, works)

    def _in_thread(self, works: list[Work]) -> list[Any]:
        with self.engine.begin() as conn:
            return _run_all(conn, works)

    async def warm(self) -> None:
        """Open a connection now, so the first booking pays no connection set-up and an
        unreachable database shows at start."""
        if self._async is not None:
            async with self._async.connect():
                pass

    async def close(self) -> None:
        """Release the connections of the asyncio engine (PostgreSQL)."""
        if self._async is not None:
            await self._async.dispose()


def _run_all(conn: Connection, works: list[Work]) -> list[Any]:
    return [work(conn) for work in works]


def _settle(
    future: asyncio.Future[Any], result: Any = None, error: BaseException | None = None
) -> None:
    if future.done():  # the caller was cancelled; the work is done all the same
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)

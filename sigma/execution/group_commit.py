"""Group commit: the database work of concurrent callers, many per transaction.

A durable commit waits for the write-ahead log to reach the disk (about 2.5 ms on the
machine the benchmarks ran on), far more than the statements of one booking. When orders
arrive faster than one commit each can take, the worker books everything that is waiting in
one transaction, in arrival order, and pays for one flush. Under light load a batch is a
single order, so nothing waits for company.

A batch that fails is rolled back and its work is redone one transaction per caller, so one
bad order fails alone and the others are booked.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine

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
        self.max_batch = max_batch
        self._pending: list[tuple[Work, asyncio.Future[Any]]] = []
        self._drainer: asyncio.Task[None] | None = None
        self.transactions = 0
        """Transactions committed or attempted so far (for tests and metrics)."""

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
                results = await asyncio.to_thread(self._transaction, [w for w, _ in batch])
            except Exception as exc:
                if len(batch) == 1:
                    _settle(batch[0][1], error=exc)
                    continue
                log.info(
                    "a batch of %d bookings failed (%r); booking them one by one", len(batch), exc
                )
                for work, future in batch:
                    try:
                        (result,) = await asyncio.to_thread(self._transaction, [work])
                    except Exception as single:
                        _settle(future, error=single)
                    else:
                        _settle(future, result)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                _settle(future, result)

    def _transaction(self, works: list[Work]) -> list[Any]:
        self.transactions += 1
        with self.engine.begin() as conn:
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

"""BatchWriter: rows handed over from a hot loop, written in batches on a thread of its own.

The price loop must never wait for the database (a commit on a busy PostgreSQL took 2 to 16
ms, see `write_behind`), and a row per statement would cap the rate far below a venue's tick
rate. `put` only appends to a bounded in-memory queue and returns; the writer thread takes up
to `batch_rows` rows whenever that many are waiting or `flush_interval` seconds passed, and
hands them to `write` in one call (one transaction). A batch that fails is logged and retried
with a growing pause, in order, before anything queued after it. While the database is away
the queue fills up to `max_pending`; rows beyond that are counted as dropped (the loop is never
held), except rows put with `keep=True` (rare, valuable ones: closed bars). `close` writes
everything still queued, retrying for up to its timeout.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["BatchWriter"]

log = logging.getLogger(__name__)

T = TypeVar("T")

# Pauses between attempts at a failed batch: quick at first (a lock released, a failover),
# then every few seconds so a database that is down is not hammered.
RETRY_PAUSES = (0.05, 0.2, 1.0, 5.0)


class BatchWriter(Generic[T]):
    """Writes rows in batches on one thread; `what` names them in the log."""

    def __init__(
        self,
        write: Callable[[Sequence[T]], None],
        *,
        what: str,
        batch_rows: int = 1000,
        flush_interval: float = 0.5,
        max_pending: int = 100_000,
        retry_pauses: Sequence[float] = RETRY_PAUSES,
    ) -> None:
        if batch_rows < 1 or max_pending < 1 or flush_interval <= 0 or not retry_pauses:
            raise ValueError("batch_rows, max_pending, flush_interval and retry_pauses must be > 0")
        self._write = write
        self.what = what
        self.batch_rows = batch_rows
        self.flush_interval = flush_interval
        self.max_pending = max_pending
        self._pauses = tuple(retry_pauses)
        self._queue: deque[T] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._give_up_at = float("inf")
        self._thread: threading.Thread | None = None
        self._warned = False
        self.written = 0
        """Rows written so far."""
        self.dropped = 0
        """Rows refused because the queue was full (or the writer closed)."""
        self.failures = 0
        """Failed attempts at a batch (each is retried)."""
        self.lost = 0
        """Rows still unwritten when `close` gave up."""

    @property
    def pending(self) -> int:
        """Rows queued and not yet written (a batch being written included while it fails)."""
        return len(self._queue)

    def start(self) -> None:
        """Start the writer thread (idempotent); after `close`, open again (a supervised
        recorder that died and was restarted writes on)."""
        if self._thread is not None and not self._closing:
            return
        with self._cond:  # `close` returned: its thread has ended
            self._closing, self._give_up_at, self._warned = False, float("inf"), False
            self._thread = threading.Thread(target=self._run, name=f"{self.what}-writer")
            self._thread.daemon = True
            self._thread.start()

    def put(self, row: T, *, keep: bool = False) -> bool:
        """Queue `row`; returns at once. False when it was dropped: the queue holds
        `max_pending` rows already (ignored with `keep`) or the writer is closed."""
        with self._cond:
            if self._closing or (not keep and len(self._queue) >= self.max_pending):
                self.dropped += 1
                if not self._warned:
                    # Once per outage: the loop must not log per tick.
                    self._warned = True
                    log.warning("%s: the queue is full or closed; rows are dropped", self.what)
                return False
            self._queue.append(row)
            if len(self._queue) == self.batch_rows:
                self._cond.notify()
        return True

    def close(self, timeout: float = 30.0) -> int:
        """Write what is queued (retrying failures for up to `timeout` seconds), stop the
        thread, and return the number of rows that could not be written."""
        with self._cond:
            self._closing = True
            self._give_up_at = time.monotonic() + timeout
            self._cond.notify()
        if self._thread is not None:
            self._thread.join()
        else:
            self._run()  # never started: write inline
        return self.lost

    # --- the writer thread -----------------------------------------------------------------
    def _next_batch(self) -> list[T]:
        """Wait for a full batch, the interval or close; the rows taken (empty: closed)."""
        with self._cond:
            deadline = time.monotonic() + self.flush_interval
            while len(self._queue) < self.batch_rows and not self._closing:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            count = min(len(self._queue), self.batch_rows)
            # Left in the queue until written, so `pending` tells the truth during an outage.
            return [self._queue[i] for i in range(count)]

    def _run(self) -> None:
        attempt = 0
        while True:
            batch = self._next_batch()
            if not batch:
                if self._closing:
                    return
                continue
            try:
                self._write(batch)
            except Exception:
                self.failures += 1
                log.exception("%s: writing %d rows failed; will retry", self.what, len(batch))
                pause = self._pauses[min(attempt, len(self._pauses) - 1)]
                attempt += 1
                if self._closing and time.monotonic() + pause > self._give_up_at:
                    with self._cond:
                        self.lost = len(self._queue)
                        self._queue.clear()
                    log.error("%s: %d rows not written at close", self.what, self.lost)
                    return
                with self._cond:
                    # Woken early by close, which then retries at once.
                    self._cond.wait(pause)
                continue
            attempt = 0
            with self._cond:
                for _ in batch:
                    self._queue.popleft()
                self.written += len(batch)
                self._warned = False

"""In-process bus: the embedded default when no Redis/RabbitMQ URL is configured.

Single process, single event loop, nothing survives a restart. The semantics mirror the
server-backed implementations so code and tests can switch between them:

* `InMemoryPubSub`: fan-out with a bounded buffer per subscriber. A slow subscriber loses
  its oldest messages (counted in `Subscription.dropped`); the publisher never waits.
* `InMemoryWorkQueue`: FIFO with competing consumers, retry with exponential backoff after a
  handler exception, dead-lettering after `max_retries`, `stop()` drains in-flight handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from sigma.bus.base import Delivery, Handler, PermanentError

log = logging.getLogger(__name__)

# A loop that always finds data ready never suspends; yielding now and then keeps a busy
# consumer from starving every other task on the loop (feeds, API, timers).
_YIELD_EVERY = 128
ERROR_HEADER_LIMIT = 500
"""Longest `x-error` reason kept on a dead letter (characters)."""


def error_reason(exc: BaseException, limit: int = ERROR_HEADER_LIMIT) -> str:
    """`Type: message` of an exception, truncated to `limit` characters."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def backoff_delay(base: float, failed_attempt: int, cap: float) -> float:
    """Delay before the retry that follows the `failed_attempt`-th (1-based) failure."""
    return float(min(cap, base * 2 ** (failed_attempt - 1)))


# --- pub/sub -------------------------------------------------------------------------------


class InMemorySubscription:
    """One subscriber's bounded buffer; iterate it to receive messages."""

    def __init__(self, owner: InMemoryPubSub, channel: str, maxlen: int) -> None:
        self._owner = owner
        self.channel = channel
        self._buffer: deque[bytes] = deque(maxlen=maxlen)
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._since_yield = 0
        self.dropped = 0
        """Messages discarded because the buffer was full (the oldest go first)."""

    def _push(self, message: bytes) -> None:
        buffer = self._buffer
        if len(buffer) == buffer.maxlen:
            self.dropped += 1  # the deque discards the oldest on append
        buffer.append(message)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        while True:
            if self._closed:
                raise StopAsyncIteration
            if self._buffer:
                self._since_yield += 1
                if self._since_yield >= _YIELD_EVERY:
                    self._since_yield = 0
                    await asyncio.sleep(0)
                    if self._closed or not self._buffer:
                        continue
                return self._buffer.popleft()
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    async def close(self) -> None:
        """Stop receiving; a pending or later iteration ends, buffered messages are dropped."""
        if self._closed:
            return
        self._closed = True
        self._buffer.clear()
        self._owner._remove(self)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class InMemoryPubSub:
    """Fan-out to every current subscriber of a channel, within one process.

    `buffer` bounds each subscriber's backlog: publishing never blocks, a subscriber that
    falls behind loses its oldest messages. Also a last-value cache (`set_last`/`get_last`).
    """

    def __init__(self, buffer: int = 10_000) -> None:
        if buffer < 1:
            raise ValueError("buffer must be at least 1")
        self._buffer = buffer
        self._subscribers: dict[str, list[InMemorySubscription]] = {}
        self._last: dict[str, bytes] = {}

    async def publish(self, channel: str, message: bytes) -> None:
        """Hand `message` to every current subscriber of `channel` (none: it is dropped)."""
        for sub in self._subscribers.get(channel, ()):
            sub._push(message)

    async def publish_many(self, messages: Sequence[tuple[str, bytes]]) -> None:
        """Hand each message to every current subscriber of its channel, in order."""
        for channel, message in messages:
            for sub in self._subscribers.get(channel, ()):
                sub._push(message)

    async def subscribe(self, channel: str) -> InMemorySubscription:
        """Receive the messages published on `channel` from now on."""
        sub = InMemorySubscription(self, channel, self._buffer)
        # Copy-on-write so a publish iterating the old list is not disturbed.
        self._subscribers[channel] = [*self._subscribers.get(channel, ()), sub]
        return sub

    def _remove(self, sub: InMemorySubscription) -> None:
        rest = [s for s in self._subscribers.get(sub.channel, ()) if s is not sub]
        if rest:
            self._subscribers[sub.channel] = rest
        else:
            self._subscribers.pop(sub.channel, None)

    async def set_last(self, key: str, value: bytes) -> None:
        """Store `value` as the latest for `key`."""
        self._last[key] = value

    async def get_last(self, key: str) -> bytes | None:
        """The latest value of `key`, or None."""
        return self._last.get(key)

    async def close(self) -> None:
        """End every subscription."""
        for subs in list(self._subscribers.values()):
            for sub in subs:
                await sub.close()


# --- work queue ----------------------------------------------------------------------------


@dataclass(slots=True)
class _Message:
    body: bytes
    message_id: str
    attempt: int = 1
    headers: dict[str, str] = field(default_factory=dict)


class _Queue:
    """FIFO with waiters handed messages directly (a minimal asyncio.Queue that can requeue
    at the front, which a consumer interrupted mid-message needs)."""

    def __init__(self) -> None:
        self.items: deque[_Message] = deque()
        self.waiters: deque[asyncio.Future[_Message]] = deque()

    def put(self, message: _Message, *, front: bool = False) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(message)
                return
        if front:
            self.items.appendleft(message)
        else:
            self.items.append(message)

    async def get(self) -> _Message:
        if self.items:
            return self.items.popleft()
        waiter: asyncio.Future[_Message] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            # Cancelled after being handed a message: give it back, never lose it.
            if waiter.done() and not waiter.cancelled():
                self.put(waiter.result(), front=True)
            with contextlib.suppress(ValueError):
                self.waiters.remove(waiter)
            raise


class _Worker:
    __slots__ = ("busy", "task")

    def __init__(self) -> None:
        self.busy = False
        self.task: asyncio.Task[None] | None = None


class InMemoryWorkQueue:
    """Acknowledged work distribution within one process (competing consumers, FIFO).

    A handler that returns acks its message; one that raises has it re-enqueued after
    `retry_base_delay · 2^(n-1)` seconds (capped at `retry_max_delay`) until it has failed
    `max_retries + 1` times, then it is dead-lettered with `x-error` and `x-attempts`.
    Messages are lost when the process exits: use RabbitMQ for durability.
    """

    def __init__(
        self,
        *,
        max_retries: int = 5,
        retry_base_delay: float = 0.5,
        retry_max_delay: float = 60.0,
    ) -> None:
        self.max_retries = max_retries
        self.retry_base_delay = retry_base_delay
        self.retry_max_delay = retry_max_delay
        self._queues: dict[str, _Queue] = {}
        self._dead: dict[str, list[Delivery]] = {}
        self._workers: list[_Worker] = []
        self._retry_timers: set[asyncio.TimerHandle] = set()
        self._stopping = False

    def _queue(self, name: str) -> _Queue:
        queue = self._queues.get(name)
        if queue is None:
            queue = self._queues[name] = _Queue()
        return queue

    async def prepare(self, queue: str) -> None:
        """Create `queue` if it does not exist yet."""
        self._queue(queue)

    async def publish(self, queue: str, body: bytes, *, message_id: str) -> None:
        """Enqueue `body` (immediately visible to consumers)."""
        self._queue(queue).put(_Message(body, message_id))

    async def consume(self, queue: str, handler: Handler, *, prefetch: int = 16) -> None:
        """Run up to `prefetch` handlers concurrently until `stop()` or cancellation.

        On cancellation, handlers still running are cancelled and their messages go back to
        the front of the queue (like an unacked message on a closed channel)."""
        if prefetch < 1:
            raise ValueError("prefetch must be at least 1")
        source = self._queue(queue)
        workers = [_Worker() for _ in range(prefetch)]
        for worker in workers:
            worker.task = asyncio.create_task(self._work(queue, source, handler, worker))
        self._workers.extend(workers)
        try:
            # return_exceptions: workers cancelled by `stop()` end `consume` normally.
            await asyncio.gather(
                *(w.task for w in workers if w.task is not None), return_exceptions=True
            )
        finally:
            for worker in workers:
                if worker.task is not None and not worker.task.done():
                    worker.task.cancel()
            await asyncio.gather(
                *(w.task for w in workers if w.task is not None), return_exceptions=True
            )
            self._workers = [w for w in self._workers if w not in workers]

    async def _work(self, name: str, source: _Queue, handler: Handler, worker: _Worker) -> None:
        since_yield = 0
        while True:
            message = await source.get()
            worker.busy = True
            try:
                delivery = Delivery(
                    message.body,
                    message.message_id,
                    message.attempt,
                    final=message.attempt > self.max_retries,
                )
                delivery.headers.update(message.headers)
                try:
                    await handler(delivery)
                except asyncio.CancelledError:
                    source.put(message, front=True)
                    raise
                except Exception as exc:
                    self._failed(name, message, exc)
            finally:
                worker.busy = False
            if self._stopping:
                return
            since_yield += 1
            if since_yield >= _YIELD_EVERY:
                since_yield = 0
                await asyncio.sleep(0)

    def _failed(self, name: str, message: _Message, exc: Exception) -> None:
        if message.attempt > self.max_retries or isinstance(exc, PermanentError):
            log.warning(
                "dead-lettering %s on %s after %d attempts: %r",
                message.message_id,
                name,
                message.attempt,
                exc,
            )
            headers = {
                **message.headers,
                "x-error": error_reason(exc),
                "x-attempts": str(message.attempt),
            }
            self._dead.setdefault(name, []).append(
                Delivery(message.body, message.message_id, message.attempt, headers)
            )
            return
        delay = backoff_delay(self.retry_base_delay, message.attempt, self.retry_max_delay)
        log.info(
            "retrying %s on %s in %.3fs (attempt %d failed: %r)",
            message.message_id,
            name,
            delay,
            message.attempt,
            exc,
        )
        retry = _Message(message.body, message.message_id, message.attempt + 1, message.headers)
        handle: asyncio.TimerHandle

        def requeue() -> None:
            self._retry_timers.discard(handle)
            self._queue(name).put(retry)

        handle = asyncio.get_running_loop().call_later(delay, requeue)
        self._retry_timers.add(handle)

    async def dead_letters(self, queue: str) -> list[Delivery]:
        """Drain and return the dead letters of `queue` (headers `x-error`, `x-attempts`)."""
        return self._dead.pop(queue, [])

    async def depth(self, queue: str) -> int:
        """Messages waiting in `queue` (not those in flight or waiting for a retry)."""
        found = self._queues.get(queue)
        return len(found.items) if found is not None else 0

    async def stop(self) -> None:
        """Stop taking messages; returns once the handlers in flight have finished."""
        self._stopping = True
        workers = list(self._workers)
        for worker in workers:
            if not worker.busy and worker.task is not None:
                worker.task.cancel()  # idle: waiting for a message, nothing to finish
        await asyncio.gather(
            *(w.task for w in workers if w.task is not None), return_exceptions=True
        )
        self._stopping = False

    async def close(self) -> None:
        """Stop consuming at once; pending retries are discarded (the process is going)."""
        for worker in list(self._workers):
            if worker.task is not None:
                worker.task.cancel()
        await asyncio.gather(
            *(w.task for w in self._workers if w.task is not None), return_exceptions=True
        )
        for handle in self._retry_timers:
            handle.cancel()
        self._retry_timers.clear()

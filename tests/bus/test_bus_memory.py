"""In-process bus: the shared contract plus what only the in-process implementation has."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from sigma.bootstrap import make_pubsub, make_work_queue
from sigma.bus import Delivery
from sigma.bus.memory import InMemoryPubSub, InMemoryWorkQueue, backoff_delay, error_reason
from tests.bus.bus_contract import QUEUE, PubSubContract, WorkQueueContract, eventually, take


@pytest.fixture
async def make_pubsub_() -> AsyncIterator[Any]:
    made: list[InMemoryPubSub] = []

    async def make() -> InMemoryPubSub:
        made.append(InMemoryPubSub())
        return made[-1]

    yield make
    for bus in made:
        await bus.close()


@pytest.fixture
async def make_queue_() -> AsyncIterator[Any]:
    made: list[InMemoryWorkQueue] = []

    async def make(max_retries: int = 5, retry_base_delay: float = 0.01) -> InMemoryWorkQueue:
        made.append(InMemoryWorkQueue(max_retries=max_retries, retry_base_delay=retry_base_delay))
        return made[-1]

    yield make
    for queue in made:
        await queue.close()


class TestInMemoryPubSub(PubSubContract):
    @pytest.fixture
    def make_pubsub(self, make_pubsub_: Any) -> Any:
        return make_pubsub_


class TestInMemoryWorkQueue(WorkQueueContract):
    @pytest.fixture
    def make_queue(self, make_queue_: Any) -> Any:
        return make_queue_


# --- pub/sub specifics ------------------------------------------------------------------------


async def test_slow_subscriber_drops_oldest_and_counts_never_blocks_publisher() -> None:
    bus = InMemoryPubSub(buffer=3)
    slow = await bus.subscribe("prices")
    for i in range(10):
        await bus.publish("prices", str(i).encode())  # never waits for the subscriber
    assert slow.dropped == 7
    assert await take(slow, 3) == [b"7", b"8", b"9"]
    await bus.close()


async def test_buffer_must_be_positive() -> None:
    with pytest.raises(ValueError, match="buffer"):
        InMemoryPubSub(buffer=0)


async def test_publish_without_subscribers_is_dropped() -> None:
    bus = InMemoryPubSub()
    await bus.publish("nobody", b"x")
    sub = await bus.subscribe("nobody")
    await bus.publish("nobody", b"y")
    assert await take(sub, 1) == [b"y"]


async def test_long_backlog_lets_other_tasks_run() -> None:
    bus = InMemoryPubSub()
    sub = await bus.subscribe("prices")
    for i in range(1000):
        await bus.publish("prices", str(i).encode())
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    other = asyncio.create_task(ticker())
    got = await take(sub, 1000)
    other.cancel()
    assert got[-1] == b"999"
    assert ticks > 1  # the consumer yielded while draining a ready backlog


async def test_close_while_backlog_yield_pending_ends_iteration() -> None:
    bus = InMemoryPubSub()
    sub = await bus.subscribe("prices")
    for i in range(200):
        await bus.publish("prices", str(i).encode())
    got: list[bytes] = []

    async def read() -> None:
        async for message in sub:
            got.append(message)

    reader = asyncio.create_task(read())
    while len(got) < 127:
        await asyncio.sleep(0)
    await sub.close()
    await asyncio.wait_for(reader, 1)
    assert len(got) == 127  # closed during the periodic yield: nothing more is handed out


# --- work queue specifics ---------------------------------------------------------------------


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff_delay(0.5, n, 3.0) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 3.0]


def test_error_reason_is_type_and_message_truncated() -> None:
    assert error_reason(KeyError("k")) == "KeyError: 'k'"
    long = error_reason(RuntimeError("x" * 50), limit=20)
    assert long == "RuntimeError: xxx..." and len(long) == 20


async def test_close_discards_pending_retries() -> None:
    queue = InMemoryWorkQueue(max_retries=3, retry_base_delay=0.05)
    calls: list[int] = []

    async def fail(delivery: Delivery) -> None:
        calls.append(delivery.attempt)
        raise RuntimeError("down")

    task = asyncio.create_task(queue.consume(QUEUE, fail))
    await queue.publish(QUEUE, b"x", message_id="m")
    await eventually(lambda: _ready(calls == [1]))
    await queue.close()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.1)
    assert calls == [1]
    assert await queue.depth(QUEUE) == 0


async def test_message_handed_to_a_cancelled_waiter_is_not_lost() -> None:
    queue = InMemoryWorkQueue()
    handled: list[str] = []

    async def handle(delivery: Delivery) -> None:
        handled.append(delivery.message_id)

    task = asyncio.create_task(queue.consume(QUEUE, handle, prefetch=1))
    await asyncio.sleep(0.01)  # the worker waits for a message
    await queue.publish(QUEUE, b"x", message_id="m")  # handed to the waiting worker ...
    task.cancel()  # ... which is cancelled before it resumes
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert handled == []
    assert await queue.depth(QUEUE) == 1  # back at the front of the queue


async def _ready(value: bool) -> bool:
    return value


# --- factory ----------------------------------------------------------------------------------


async def test_factory_defaults_to_in_process() -> None:
    assert isinstance(make_pubsub(None), InMemoryPubSub)
    queue = make_work_queue(None, max_retries=2, retry_base_delay=0.1)
    assert isinstance(queue, InMemoryWorkQueue)
    assert (queue.max_retries, queue.retry_base_delay) == (2, 0.1)

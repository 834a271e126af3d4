"""The bus contract, written once and run against every implementation.

A test module subclasses `PubSubContract` / `WorkQueueContract` and provides the fixture
`make_pubsub` (an async factory of fresh `PubSub` instances) or `make_queue` (an async factory
of fresh `WorkQueue` instances taking `max_retries` and `retry_base_delay`). The fixtures own
clean-up (closing instances, deleting server-side queues and keys). Every work-queue test uses
the queue `QUEUE`, so that clean-up knows what to delete.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from sigma.bus import Delivery, PermanentError, PubSub, Subscription, WorkQueue

QUEUE = "work"
TIMEOUT = 10.0

MakePubSub = Callable[[], Awaitable[Any]]
MakeQueue = Callable[..., Awaitable[Any]]


async def take(sub: Subscription, n: int, timeout: float = TIMEOUT) -> list[bytes]:
    """The next `n` messages of `sub` (fails after `timeout`)."""
    out: list[bytes] = []

    async def collect() -> None:
        async for message in sub:
            out.append(message)
            if len(out) == n:
                return

    await asyncio.wait_for(collect(), timeout)
    return out


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = TIMEOUT) -> None:
    """Poll `check` until it is true; fail after `timeout`."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def drained(queue: WorkQueue, wanted: int) -> list[Delivery]:
    """Dead letters of QUEUE, polled until `wanted` have arrived."""
    letters: list[Delivery] = []

    async def enough() -> bool:
        letters.extend(await queue.dead_letters(QUEUE))
        return len(letters) >= wanted

    await eventually(enough)
    return letters


@contextlib.asynccontextmanager
async def consuming(
    queue: WorkQueue, handler: Callable[[Delivery], Awaitable[None]], prefetch: int = 4
) -> AsyncIterator[asyncio.Task[None]]:
    """Run `queue.consume` in a task for the block; stop it afterwards."""
    task = asyncio.create_task(queue.consume(QUEUE, handler, prefetch=prefetch))
    try:
        yield task
    finally:
        await queue.stop()
        await asyncio.wait_for(task, TIMEOUT)


class PubSubContract:
    """What every `PubSub` does."""

    async def test_fan_out_to_every_subscriber_in_order(self, make_pubsub: MakePubSub) -> None:
        bus: PubSub = await make_pubsub()
        first = await bus.subscribe("prices")
        second = await bus.subscribe("prices")
        sent = [f"tick-{i}".encode() for i in range(200)]
        for message in sent:
            await bus.publish("prices", message)
        assert await take(first, len(sent)) == sent
        assert await take(second, len(sent)) == sent

    async def test_channels_are_separate(self, make_pubsub: MakePubSub) -> None:
        bus: PubSub = await make_pubsub()
        fills = await bus.subscribe("fills")
        await bus.publish("prices", b"not for you")
        await bus.publish("fills", b"fill-1")
        assert await take(fills, 1) == [b"fill-1"]

    async def test_publish_many_keeps_order_per_channel(self, make_pubsub: MakePubSub) -> None:
        bus: PubSub = await make_pubsub()
        prices, fills = await bus.subscribe("prices"), await bus.subscribe("fills")
        # Two thousand messages: more than one socket read, and the reader hands them out
        # with pauses for the event loop in between.
        batch = [("prices" if i % 3 else "fills", f"m-{i}".encode()) for i in range(2_000)]
        await bus.publish_many(batch)
        assert await take(prices, 1_333) == [m for c, m in batch if c == "prices"]
        assert await take(fills, 667) == [m for c, m in batch if c == "fills"]

    async def test_unsubscribe_ends_iteration_and_others_still_receive(
        self, make_pubsub: MakePubSub
    ) -> None:
        bus: PubSub = await make_pubsub()
        leaving = await bus.subscribe("prices")
        staying = await bus.subscribe("prices")
        received: list[bytes] = []

        async def listen() -> None:
            async for message in leaving:
                received.append(message)

        listener = asyncio.create_task(listen())
        await bus.publish("prices", b"1")
        await eventually(lambda: _true(received == [b"1"]))
        await leaving.close()
        await asyncio.wait_for(listener, TIMEOUT)  # iteration ended by close()
        await leaving.close()  # idempotent
        await bus.publish("prices", b"2")
        assert await take(staying, 2) == [b"1", b"2"]
        assert received == [b"1"]

    async def test_close_ends_subscriptions(self, make_pubsub: MakePubSub) -> None:
        bus: PubSub = await make_pubsub()
        sub = await bus.subscribe("prices")
        await bus.close()
        assert [m async for m in sub] == []

    async def test_last_value_cache(self, make_pubsub: MakePubSub) -> None:
        bus = await make_pubsub()
        assert await bus.get_last("last_price:BTC/USDT") is None
        await bus.set_last("last_price:BTC/USDT", b"100.5")
        await bus.set_last("last_price:BTC/USDT", b"101.0")
        assert await bus.get_last("last_price:BTC/USDT") == b"101.0"


async def _true(value: bool) -> bool:
    return value


class WorkQueueContract:
    """What every `WorkQueue` does."""

    async def test_competing_consumers_handle_each_message_once(
        self, make_queue: MakeQueue
    ) -> None:
        queue: WorkQueue = await make_queue()
        seen: Counter[str] = Counter()
        by_consumer: Counter[str] = Counter()

        def handler_for(name: str) -> Callable[[Delivery], Awaitable[None]]:
            async def handle(delivery: Delivery) -> None:
                await asyncio.sleep(0.005)  # real work takes time: lets the other one compete
                seen[delivery.message_id] += 1
                by_consumer[name] += 1

            return handle

        ids = [f"order-{i}" for i in range(40)]
        async with consuming(queue, handler_for("a")), consuming(queue, handler_for("b")):
            await asyncio.sleep(0.2)  # both consumers registered before the first message
            for message_id in ids:
                await queue.publish(QUEUE, message_id.encode(), message_id=message_id)
            await eventually(lambda: _true(sum(seen.values()) >= len(ids)))
            await asyncio.sleep(0.1)  # a duplicate would show up now
        assert seen == Counter(ids)
        assert by_consumer["a"] > 0 and by_consumer["b"] > 0
        assert await queue.depth(QUEUE) == 0

    async def test_fifo_with_one_consumer(self, make_queue: MakeQueue) -> None:
        queue: WorkQueue = await make_queue()
        order: list[bytes] = []

        async def handle(delivery: Delivery) -> None:
            order.append(delivery.body)

        sent = [str(i).encode() for i in range(30)]
        for body in sent:
            await queue.publish(QUEUE, body, message_id=body.decode())
        async with consuming(queue, handle, prefetch=1):
            await eventually(lambda: _true(len(order) == len(sent)))
        assert order == sent

    async def test_failing_message_is_retried_then_dead_lettered_others_go_on(
        self, make_queue: MakeQueue
    ) -> None:
        queue: WorkQueue = await make_queue(max_retries=2, retry_base_delay=0.02)
        attempts: list[tuple[int, bool]] = []
        good: list[str] = []

        async def handle(delivery: Delivery) -> None:
            if delivery.message_id == "bad":
                attempts.append((delivery.attempt, delivery.final))
                raise ValueError("broker rejected order " + "x" * 1000)
            good.append(delivery.message_id)

        async with consuming(queue, handle):
            await queue.publish(QUEUE, b"poison", message_id="bad")
            for i in range(5):
                await queue.publish(QUEUE, b"fine", message_id=f"good-{i}")
            letters = await drained(queue, 1)
        assert sorted(good) == [f"good-{i}" for i in range(5)]
        # The last try is marked: the handler can settle what the queue gives up on.
        assert attempts == [(1, False), (2, False), (3, True)]
        (letter,) = letters
        assert letter.message_id == "bad"
        assert letter.body == b"poison"
        assert letter.attempt == 3
        assert letter.headers["x-attempts"] == "3"
        reason = letter.headers["x-error"]
        assert reason.startswith("ValueError: broker rejected order xxx")
        assert len(reason) <= 500
        assert await queue.dead_letters(QUEUE) == []  # drained
        assert await queue.depth(QUEUE) == 0

    async def test_permanent_error_is_dead_lettered_without_retries(
        self, make_queue: MakeQueue
    ) -> None:
        queue: WorkQueue = await make_queue(max_retries=5, retry_base_delay=0.02)
        attempts: list[int] = []

        async def handle(delivery: Delivery) -> None:
            attempts.append(delivery.attempt)
            raise PermanentError("malformed order event: qty missing")

        async with consuming(queue, handle):
            await queue.publish(QUEUE, b"{}", message_id="broken")
            (letter,) = await drained(queue, 1)
        assert attempts == [1]
        assert letter.headers["x-error"] == "PermanentError: malformed order event: qty missing"

    async def test_failure_then_success_is_processed_exactly_once(
        self, make_queue: MakeQueue
    ) -> None:
        queue: WorkQueue = await make_queue(max_retries=3, retry_base_delay=0.02)
        deliveries: list[tuple[str, int]] = []
        done: Counter[str] = Counter()

        async def handle(delivery: Delivery) -> None:
            deliveries.append((delivery.message_id, delivery.attempt))
            if delivery.attempt == 1:
                raise ConnectionError("exchange timeout")
            done[delivery.message_id] += 1

        async with consuming(queue, handle):
            await queue.publish(QUEUE, b"buy 1 BTC", message_id="coid-42")
            await eventually(lambda: _true(done["coid-42"] == 1))
            await asyncio.sleep(0.15)  # no further delivery follows
        assert deliveries == [("coid-42", 1), ("coid-42", 2)]  # message_id kept on retry
        assert done == Counter({"coid-42": 1})
        assert await queue.dead_letters(QUEUE) == []

    async def test_depth_counts_waiting_messages(self, make_queue: MakeQueue) -> None:
        queue: WorkQueue = await make_queue()
        assert await queue.depth(QUEUE) == 0
        await queue.prepare(QUEUE)
        await queue.prepare(QUEUE)  # idempotent
        assert await queue.depth(QUEUE) == 0
        for i in range(3):
            await queue.publish(QUEUE, b"x", message_id=f"m{i}")
        assert await queue.depth(QUEUE) == 3

    async def test_stop_waits_for_in_flight_handlers(self, make_queue: MakeQueue) -> None:
        queue: WorkQueue = await make_queue()
        started = asyncio.Event()
        finished: list[str] = []

        async def slow(delivery: Delivery) -> None:
            started.set()
            await asyncio.sleep(0.3)
            finished.append(delivery.message_id)

        task = asyncio.create_task(queue.consume(QUEUE, slow, prefetch=2))
        await queue.publish(QUEUE, b"x", message_id="slow-1")
        await asyncio.wait_for(started.wait(), TIMEOUT)
        await queue.stop()
        assert finished == ["slow-1"]  # stop returned only after the handler finished
        await asyncio.wait_for(task, TIMEOUT)  # and consume returned normally
        await queue.publish(QUEUE, b"y", message_id="after-stop")
        await asyncio.sleep(0.1)
        assert finished == ["slow-1"]
        assert await queue.depth(QUEUE) == 1  # slow-1 acked, after-stop waits

    async def test_cancelled_consumer_hands_its_message_back(self, make_queue: MakeQueue) -> None:
        queue: WorkQueue = await make_queue()
        started = asyncio.Event()
        completed: list[tuple[str, int]] = []

        async def hang(delivery: Delivery) -> None:
            started.set()
            await asyncio.Event().wait()

        task = asyncio.create_task(queue.consume(QUEUE, hang, prefetch=1))
        await queue.publish(QUEUE, b"x", message_id="m-1")
        await asyncio.wait_for(started.wait(), TIMEOUT)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

        async def record(delivery: Delivery) -> None:
            completed.append((delivery.message_id, delivery.attempt))

        async with consuming(queue, record):
            await eventually(lambda: _true(len(completed) == 1))
        assert completed == [("m-1", 1)]  # a crash is not a handler failure

    async def test_prefetch_must_be_positive(self, make_queue: MakeQueue) -> None:
        queue: WorkQueue = await make_queue()

        async def handle(delivery: Delivery) -> None:  # pragma: no cover - never called
            pass

        try:
            await queue.consume(QUEUE, handle, prefetch=0)
        except ValueError:
            return
        raise AssertionError("prefetch=0 accepted")

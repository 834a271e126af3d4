"""The bus contract against the real Redis and RabbitMQ servers, plus failure scenarios that
only real connections have: a killed Redis subscriber connection, a worker that dies mid-message.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
import redis.exceptions

from sigma.bootstrap import make_pubsub, make_work_queue
from sigma.bus import Delivery, PublishInDoubt
from sigma.bus.rabbitmq import RabbitWorkQueue
from sigma.bus.redis_pubsub import RedisPubSub
from tests.bus.bus_contract import (
    QUEUE,
    TIMEOUT,
    PubSubContract,
    WorkQueueContract,
    consuming,
    eventually,
    take,
)
from tests.integration.private_servers import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
async def make_redis(redis_url: str, bus_prefix: str) -> AsyncIterator[Any]:
    made: list[RedisPubSub] = []

    async def make(**opts: Any) -> RedisPubSub:
        opts.setdefault("client_name", bus_prefix.rstrip("."))
        made.append(RedisPubSub(redis_url, bus_prefix, **opts))
        return made[-1]

    yield make
    for bus in made:
        await bus.close()
    cleaner = aioredis.Redis.from_url(redis_url)
    keys = [key async for key in cleaner.scan_iter(match=f"{bus_prefix}*")]
    if keys:
        await cleaner.delete(*keys)
    await cleaner.aclose()


@pytest.fixture
async def make_rabbit(amqp_url: str, bus_prefix: str) -> AsyncIterator[Any]:
    made: list[RabbitWorkQueue] = []

    async def make(max_retries: int = 5, retry_base_delay: float = 0.02) -> RabbitWorkQueue:
        made.append(RabbitWorkQueue(amqp_url, bus_prefix, max_retries, retry_base_delay))
        return made[-1]

    yield make
    for queue in made:
        await queue.close()
    # A fresh connection deletes what the tests declared (main, retry and dead-letter queues).
    for queue in made:
        await queue.delete_queues(QUEUE)
        await queue.close()


class TestRedisPubSub(PubSubContract):
    @pytest.fixture
    def make_pubsub(self, make_redis: Any) -> Any:
        return make_redis


class TestRabbitWorkQueue(WorkQueueContract):
    @pytest.fixture
    def make_queue(self, make_rabbit: Any) -> Any:
        return make_rabbit


# --- Redis ------------------------------------------------------------------------------------


async def _kill_pubsub_connections(redis_url: str, client_name: str) -> int:
    """`CLIENT KILL TYPE pubsub`, narrowed to our own connections (other test runs may share
    the server)."""
    admin = aioredis.Redis.from_url(redis_url)
    try:
        killed = 0
        for client in await admin.client_list(_type="pubsub"):
            if client.get("name") == client_name:
                killed += await admin.execute_command(  # type: ignore[no-untyped-call]
                    "CLIENT", "KILL", "ID", client["id"], "TYPE", "pubsub"
                )
        return killed
    finally:
        await admin.aclose()


async def test_redis_crosses_processes(make_redis: Any) -> None:
    publisher, subscriber = await make_redis(), await make_redis()
    sub = await subscriber.subscribe("fills")
    await publisher.publish("fills", b"fill-1")
    assert await take(sub, 1) == [b"fill-1"]
    await publisher.set_last("last_price:ETH", b"3000")
    assert await subscriber.get_last("last_price:ETH") == b"3000"


async def test_redis_subscription_survives_a_killed_connection(
    make_redis: Any, redis_url: str, bus_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    bus: RedisPubSub = await make_redis(reconnect_initial=0.02)
    sub = await bus.subscribe("prices")
    await bus.publish("prices", b"before")
    assert await take(sub, 1) == [b"before"]

    received: list[bytes] = []

    async def listen() -> None:
        async for message in sub:
            received.append(message)

    listener = asyncio.create_task(listen())
    assert await _kill_pubsub_connections(redis_url, bus_prefix.rstrip(".")) == 1

    # Messages published while the subscriber is away are lost (at most once); keep
    # publishing until the resubscribed connection receives one.
    async def got_one() -> bool:
        await bus.publish("prices", b"after")
        return bool(received)

    await eventually(got_one)
    assert set(received) == {b"after"}
    assert sub.reconnects == 1
    assert "connection lost" in caplog.text
    await sub.close()
    await asyncio.wait_for(listener, TIMEOUT)


async def test_redis_publisher_reconnects_after_the_server_closed_it_while_idle(
    make_redis: Any, redis_url: str, bus_prefix: str
) -> None:
    """The server ends the publishing connection between two publishes: the publisher has
    noticed, so the next message goes out on a new connection and is not lost."""
    bus: RedisPubSub = await make_redis()
    sub = await bus.subscribe("fills")
    await bus.publish("fills", b"first")
    admin = aioredis.Redis.from_url(redis_url)
    try:
        ours = [
            c
            for c in await admin.client_list(_type="normal")
            if c.get("name") == bus_prefix.rstrip(".") and c.get("cmd") == "publish"
        ]
        assert len(ours) == 1
        await admin.execute_command("CLIENT", "KILL", "ID", ours[0]["id"])  # type: ignore[no-untyped-call]
    finally:
        await admin.aclose()
    await asyncio.sleep(0.2)  # the publisher's reader sees the connection end
    await bus.publish("fills", b"second")
    assert await take(sub, 2) == [b"first", b"second"]


async def test_redis_publishes_in_flight_together_keep_their_order(make_redis: Any) -> None:
    bus: RedisPubSub = await make_redis()
    sub = await bus.subscribe("fills")
    await asyncio.gather(
        *(bus.publish_many([("fills", b"%d-a" % n), ("fills", b"%d-b" % n)]) for n in range(50))
    )
    expected = [m for n in range(50) for m in (b"%d-a" % n, b"%d-b" % n)]
    assert await take(sub, 100) == expected


async def test_redis_publish_fails_when_the_connection_is_lost_before_the_reply() -> None:
    """A server that takes the command and hangs up: the call fails with the reason; the
    message is not sent again (Pub/Sub is at most once)."""
    received: list[bytes] = []

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await reader.read(1024))
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    bus = RedisPubSub(f"redis://127.0.0.1:{port}/0")
    try:
        with pytest.raises(redis.exceptions.ConnectionError, match="connection lost"):
            await bus.publish("fills", b"x")
        assert len(received) == 1 and b"PUBLISH" in received[0]
    finally:
        await bus.close()
        server.close()
        await server.wait_closed()


async def test_redis_reconnect_backs_off_while_the_server_is_unreachable(
    make_redis: Any, redis_url: str, bus_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    bus: RedisPubSub = await make_redis(reconnect_initial=0.02, reconnect_max=0.05)
    sub = await bus.subscribe("prices")
    # Point the reconnect at a closed port (a real refused connection), then drop the link.
    sub.url = "redis://127.0.0.1:1/0"
    received: list[bytes] = []

    async def listen() -> None:
        async for message in sub:
            received.append(message)

    listener = asyncio.create_task(listen())
    await _kill_pubsub_connections(redis_url, bus_prefix.rstrip("."))
    await eventually(lambda: _now("reconnect failed" in caplog.text))
    sub.url = redis_url  # the server is "back"

    async def got_one() -> bool:
        await bus.publish("prices", b"back")
        return bool(received)

    await eventually(got_one)
    assert sub.reconnects == 1
    await sub.close()
    await asyncio.wait_for(listener, TIMEOUT)


async def test_redis_subscribe_fails_fast_when_unreachable() -> None:
    bus = RedisPubSub("redis://127.0.0.1:1/0")
    with pytest.raises(redis.exceptions.ConnectionError):
        await bus.subscribe("prices")
    await bus.close()


async def test_redis_close_while_reading_ends_the_iteration(make_redis: Any) -> None:
    bus: RedisPubSub = await make_redis(health_check_interval=5.0)
    sub = await bus.subscribe("prices")
    reader = asyncio.create_task(take(sub, 1))
    await asyncio.sleep(0.05)  # blocked in a read
    await bus.close()  # closes the connection under the reader
    assert await asyncio.wait_for(reader, TIMEOUT) == []


async def test_factory_builds_server_implementations(
    redis_url: str, amqp_url: str, bus_prefix: str
) -> None:
    pubsub = make_pubsub(redis_url, bus_prefix)
    queue = make_work_queue(amqp_url, bus_prefix, max_retries=1)
    assert isinstance(pubsub, RedisPubSub) and pubsub.prefix == bus_prefix
    assert isinstance(queue, RabbitWorkQueue) and queue.max_retries == 1
    await pubsub.close()
    await queue.close()


async def _now(value: bool) -> bool:
    return value


# --- RabbitMQ ---------------------------------------------------------------------------------


async def test_rabbit_worker_crash_mid_message_is_redelivered_and_deduped(
    make_rabbit: Any,
) -> None:
    """A worker applies the effect, then dies before acking: the broker redelivers to the
    other worker, which recognises the message_id and only acks (exactly-once effect)."""
    crashing: RabbitWorkQueue = await make_rabbit()
    survivor: RabbitWorkQueue = await make_rabbit()
    applied: Counter[str] = Counter()
    deliveries: list[tuple[str, str, dict[str, str]]] = []
    effect_done = asyncio.Event()

    async def apply(delivery: Delivery, worker: str) -> None:
        deliveries.append((worker, delivery.message_id, dict(delivery.headers)))
        if delivery.message_id in applied:
            return  # idempotency: already applied before the crash
        applied[delivery.message_id] += 1
        if worker == "crashing":
            effect_done.set()
            await asyncio.Event().wait()  # dies here, before the ack

    async def crashing_handler(delivery: Delivery) -> None:
        await apply(delivery, "crashing")

    async def survivor_handler(delivery: Delivery) -> None:
        await apply(delivery, "survivor")

    crash_task = asyncio.create_task(crashing.consume(QUEUE, crashing_handler, prefetch=1))
    await crashing.publish(QUEUE, b"buy", message_id="coid-7")
    await asyncio.wait_for(effect_done.wait(), TIMEOUT)
    async with consuming(survivor, survivor_handler):
        await crashing.close()  # the connection goes away with the message unacked
        await asyncio.wait_for(crash_task, TIMEOUT)
        await eventually(lambda: _now(len(deliveries) == 2))
    assert [(w, m) for w, m, _ in deliveries] == [
        ("crashing", "coid-7"),
        ("survivor", "coid-7"),
    ]
    assert deliveries[1][2].get("x-redelivered") == "true"
    assert applied == Counter({"coid-7": 1})
    assert await survivor.depth(QUEUE) == 0


async def test_rabbit_retry_copy_waits_in_the_broker(make_rabbit: Any) -> None:
    """While a retry waits out its backoff, the copy is in the retry queue, not in the worker:
    stopping every consumer then starting a new one still delivers it."""
    queue: RabbitWorkQueue = await make_rabbit(max_retries=2, retry_base_delay=0.3)
    attempts: list[int] = []

    async def fail_first(delivery: Delivery) -> None:
        attempts.append(delivery.attempt)
        if delivery.attempt == 1:
            raise TimeoutError("exchange slow")

    async with consuming(queue, fail_first):
        await queue.publish(QUEUE, b"x", message_id="m")
        await eventually(lambda: _now(attempts == [1]))
    assert await queue.depth(QUEUE) == 0  # acked; the copy sits in the retry queue
    async with consuming(queue, fail_first):
        await eventually(lambda: _now(attempts == [1, 2]))
    assert queue.retry_queue_names(QUEUE) == [
        f"{queue.prefix}{QUEUE}.retry.300ms",
        f"{queue.prefix}{QUEUE}.retry.600ms",
    ]


async def test_rabbit_publish_without_a_confirm_is_in_doubt(make_rabbit: Any) -> None:
    """A publish that gets no confirmation in time raises `PublishInDoubt` (the broker may
    have queued it); a publish on a closed channel was never sent: a plain error, and it
    queues nothing."""
    queue: RabbitWorkQueue = await make_rabbit()
    await queue.prepare(QUEUE)
    queue.publish_timeout = 1e-9  # no broker confirms that fast
    with pytest.raises(PublishInDoubt, match="the broker may have it"):
        await queue.publish(QUEUE, b"order", message_id="m-doubt")
    queue.publish_timeout = 30.0
    await asyncio.sleep(0.2)  # had the message gone out, it is queued by now
    before = await queue.depth(QUEUE)
    channel = await queue._publish_channel()
    await channel.close()
    with pytest.raises(Exception) as closed:
        await queue.publish(QUEUE, b"other", message_id="m-closed")
    assert not isinstance(closed.value, PublishInDoubt)
    assert await queue.depth(QUEUE) == before


async def test_rabbit_close_while_consuming_ends_consume(make_rabbit: Any) -> None:
    queue: RabbitWorkQueue = await make_rabbit()

    async def handle(delivery: Delivery) -> None:  # pragma: no cover - nothing published
        pass

    task = asyncio.create_task(queue.consume(QUEUE, handle))
    # Consuming: its consumer is registered on the broker (not a fixed sleep, which a busy
    # machine outlasts).
    await eventually(lambda: _now(any(c.tag is not None for c in queue._consumers)))
    await queue.close()
    await asyncio.wait_for(task, TIMEOUT)


async def test_rabbit_failed_ack_is_logged_and_redelivered(
    make_rabbit: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The channel dies while the handler runs: the late ack fails, is logged, and the
    broker redelivers the message."""
    queue: RabbitWorkQueue = await make_rabbit()
    seen: list[tuple[int, bool]] = []
    release = asyncio.Event()

    async def handle(delivery: Delivery) -> None:
        seen.append((delivery.attempt, "x-redelivered" in delivery.headers))
        if len(seen) == 1:
            await release.wait()

    async with consuming(queue, handle):
        await queue.publish(QUEUE, b"x", message_id="m")
        await eventually(lambda: _now(len(seen) == 1))
        (consumer,) = queue._consumers
        underlay = await consumer.channel.get_underlay_channel()
        await underlay.close()  # the broker requeues the unacked message
        release.set()
        await eventually(lambda: _now(len(seen) == 2))
    assert seen == [(1, False), (1, True)]
    assert "could not settle message m" in caplog.text
    with contextlib.suppress(Exception):
        await queue.close()


async def test_rabbit_unreachable_names_the_broker_without_its_password() -> None:
    """Nothing listens where the URL points: the error says which broker (the password
    masked), so the supervisor's alert does too; it stays a ConnectionError."""
    port = free_port()
    queue = RabbitWorkQueue(f"amqp://guest:secret@127.0.0.1:{port}/", "unreachable-")
    try:
        with pytest.raises(ConnectionError) as raised:
            await queue.prepare("orders")
    finally:
        await queue.close()
    message = str(raised.value)
    assert message.startswith(f"cannot reach RabbitMQ at amqp://guest:***@127.0.0.1:{port}/: ")
    assert "secret" not in message
    assert RabbitWorkQueue("amqp://127.0.0.1/").where == "amqp://127.0.0.1/"

"""Messages per second through the bus, publish → consume: in-process, Redis and RabbitMQ.

    .venv/bin/python benchmarks/bus_throughput.py            # full message counts
    .venv/bin/python benchmarks/bus_throughput.py --quick    # a tenth of them

One JSON line per implementation on stdout (`msgs_per_s`, also as `value` for run_all's
comparison); progress on stderr. The servers come from SIGMA_BENCH_REDIS_URL /
SIGMA_BENCH_AMQP_URL (defaults: the local ones); an unreachable server gives a line with
`skipped` instead of a figure. Server-side names carry a unique prefix and are removed.

What is timed: from the first publish until the consumer has handled the last message.
The in-process and Redis publishers await each publish in turn (the way a feed publishes
ticks); the RabbitMQ publisher keeps `WINDOW` confirmed publishes in flight (the way a burst
of orders is sent), since one confirm round trip per message would measure latency only.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import AMQP_URL, REDIS_URL, emit, note

from sigma.bus import Delivery
from sigma.bus.memory import InMemoryPubSub, InMemoryWorkQueue
from sigma.bus.rabbitmq import RabbitWorkQueue
from sigma.bus.redis_pubsub import RedisPubSub
from sigma.runtime.event_loop import run

BENCH = "bus_throughput"
WINDOW = 64
BODY = b'{"symbol":"BTC/USDT","price":"64000.12","ts":"2024-01-01T00:00:00Z"}'


def _row(impl: str, messages: int, seconds: float, **extra: Any) -> dict[str, Any]:
    rate = round(messages / seconds, 1)
    return {
        "bench": BENCH,
        "impl": impl,
        "messages": messages,
        "msgs_per_s": rate,
        "value": rate,
        "seconds": round(seconds, 4),
        **extra,
    }


async def _pubsub(bus: Any, n: int, yield_every: int) -> tuple[float, int]:
    """(seconds, messages received) for `n` messages through one subscriber."""
    sub = await bus.subscribe("bench")
    received = 0
    done = asyncio.Event()

    async def consume() -> None:
        nonlocal received
        async for _ in sub:
            received += 1
            if received == n:
                done.set()
                return

    consumer = asyncio.create_task(consume())
    await asyncio.sleep(0.01)
    start = time.perf_counter()
    for i in range(n):
        await bus.publish("bench", BODY)
        if yield_every and i % yield_every == 0:
            await asyncio.sleep(0)  # the in-process publish never suspends by itself
    deadline = time.perf_counter() + 60
    # Finished when everything arrived or was dropped by the bounded buffer (in-process).
    while not done.is_set() and received + getattr(sub, "dropped", 0) < n:
        if time.perf_counter() > deadline:
            break
        await asyncio.sleep(0.001)
    seconds = time.perf_counter() - start
    consumer.cancel()
    await asyncio.gather(consumer, return_exceptions=True)
    await sub.close()
    return seconds, received


async def _work_queue(queue: Any, n: int, window: int) -> float:
    done = asyncio.Event()
    handled = 0

    async def handle(delivery: Delivery) -> None:
        nonlocal handled
        handled += 1
        if handled == n:
            done.set()

    consumer = asyncio.create_task(queue.consume("bench", handle, prefetch=256))
    await asyncio.sleep(0.05)
    start = time.perf_counter()
    if window <= 1:
        for i in range(n):
            await queue.publish("bench", BODY, message_id=str(i))
    else:
        for lo in range(0, n, window):
            await asyncio.gather(
                *(
                    queue.publish("bench", BODY, message_id=str(i))
                    for i in range(lo, min(n, lo + window))
                )
            )
    await asyncio.wait_for(done.wait(), 120)
    seconds = time.perf_counter() - start
    await queue.stop()
    await consumer
    return seconds


async def _run(quick: bool) -> list[dict[str, Any]]:
    scale = 10 if quick else 1
    rows: list[dict[str, Any]] = []
    prefix = f"bench{uuid.uuid4().hex[:8]}."

    n = 200_000 // scale
    note(f"in-process pub/sub, {n} messages")
    bus = InMemoryPubSub(buffer=10_000)
    # The publisher yields every 100 messages, as a feed awaiting its socket would.
    seconds, received = await _pubsub(bus, n, yield_every=100)
    emit(_row("memory_pubsub", n, seconds, received=received), rows)

    note(f"in-process work queue, {n} messages")
    seconds = await _work_queue(InMemoryWorkQueue(), n, window=1)
    emit(_row("memory_work_queue", n, seconds), rows)

    n = 50_000 // scale
    note(f"Redis pub/sub, {n} messages")
    redis_bus = RedisPubSub(REDIS_URL, prefix)
    try:
        seconds, received = await _pubsub(redis_bus, n, yield_every=0)
        emit(_row("redis_pubsub", n, seconds, received=received), rows)
    except Exception as exc:  # unreachable server: report, do not abort the other figures
        emit({"bench": BENCH, "impl": "redis_pubsub", "skipped": repr(exc)}, rows)
    finally:
        await redis_bus.close()

    n = 20_000 // scale
    note(f"RabbitMQ work queue, {n} messages, {WINDOW} confirmed publishes in flight")
    rabbit = RabbitWorkQueue(AMQP_URL, prefix)
    try:
        seconds = await _work_queue(rabbit, n, window=WINDOW)
        emit(_row("rabbitmq_work_queue", n, seconds, publish_window=WINDOW), rows)
        await rabbit.delete_queues("bench")
    except Exception as exc:
        emit({"bench": BENCH, "impl": "rabbitmq_work_queue", "skipped": repr(exc)}, rows)
    finally:
        await rabbit.close()
    return rows


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a tenth of the messages")
    args, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    return run(_run(args.quick))


if __name__ == "__main__":
    main()

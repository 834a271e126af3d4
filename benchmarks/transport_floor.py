"""The least latency the live pipeline's hops allow on this machine, with nothing else to do.

    .venv/bin/python benchmarks/transport_floor.py            # 300 events per burst size
    .venv/bin/python benchmarks/transport_floor.py --quick    # 100

The live pipeline's chain without strategies, risk checks or settlement:
this process publishes an event on Redis Pub/Sub → a `bot` process publishes N persistent,
confirmed messages on a durable RabbitMQ queue → a `worker` process consumes each, inserts
one row per message in PostgreSQL through the worker's `GroupCommit` (one durable commit per
batch of waiting messages) and announces it on Redis, stamped with the time its commit
returned → this process. Events are 10 ms apart. N = 2 is `live_latency.py`'s case: the bar's
order pair (close and open) on each of two symbols, one message per symbol (`OrderBatch`).

One JSON line per burst size N: latency from publishing the event to each of its N rows
being committed (the worker's stamp, the same wall clock), p50/p90/p99/max in ms (`value` is
p99), as `live_latency.py` measures; `seen_p50_ms`/`seen_p99_ms` to receiving the
announcement. It uses SIGMA's own bus and group commit classes, so it is the floor for the
code as built, on the servers it runs against.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import AMQP_URL, REDIS_URL, emit, note, scratch_database
from sqlalchemy import Column, MetaData, String, Table, create_engine

from sigma.bus.base import Delivery
from sigma.bus.rabbitmq import RabbitWorkQueue
from sigma.bus.redis_pubsub import RedisPubSub
from sigma.runtime.event_loop import run
from sigma.store.group_commit import GroupCommit, Shared
from sigma.store.pipeline import Batch, Plan

BENCH = "transport_floor"
GAP = 0.01
BURSTS = (1, 2, 4)
rows = Table("floor_rows", MetaData(), Column("key", String(64), primary_key=True))
INSERT = rows.insert()


def insert_rows(dialect: str, keys: list[str]) -> Plan[list[None]]:
    """Every waiting message's row in one round trip."""
    yield [Batch(INSERT, [{"key": k} for k in keys])]
    return [None] * len(keys)


async def bot(prefix: str, burst: int) -> None:
    """Each event on `in` becomes `burst` confirmed messages on the `orders` queue."""
    pubsub, queue = RedisPubSub(REDIS_URL, prefix), RabbitWorkQueue(AMQP_URL, prefix)
    await queue.prepare("orders")
    events = await pubsub.subscribe("in")
    print("ready", flush=True)
    sending: set[asyncio.Task[None]] = set()
    async for raw in events:
        for i in range(burst):
            body = raw + f":{i}".encode()
            task = asyncio.create_task(queue.publish("orders", body, message_id=body.decode()))
            sending.add(task)
            task.add_done_callback(sending.discard)


async def worker(prefix: str, database_url: str) -> None:
    """Books one row per message and announces it on `out`."""
    pubsub, queue = RedisPubSub(REDIS_URL, prefix), RabbitWorkQueue(AMQP_URL, prefix)
    group = GroupCommit(create_engine(database_url))
    await group.warm()

    async def handle(delivery: Delivery) -> None:
        await group.run(Shared(insert_rows, delivery.body.decode()))
        await pubsub.publish("out", delivery.body + f"@{time.time()!r}".encode())

    print("ready", flush=True)
    await queue.consume("orders", handle)


async def measure(burst: int, events: int) -> dict[str, Any]:
    """Run the chain for `events` events of `burst` messages each."""
    prefix = f"floor{uuid.uuid4().hex[:6]}."
    with scratch_database("floor") as url:
        engine = create_engine(url)
        rows.metadata.create_all(engine)
        engine.dispose()
        children = [
            subprocess.Popen(
                [sys.executable, __file__, "--role", role, prefix, str(burst), url],
                stdout=subprocess.PIPE,
                text=True,
            )
            for role in ("worker", "bot")
        ]
        pubsub = RedisPubSub(REDIS_URL, prefix)
        try:
            for child in children:
                assert child.stdout is not None
                if child.stdout.readline().strip() != "ready":
                    raise RuntimeError(f"{BENCH}: a child process did not start")
            received: dict[str, float] = {}
            committed: dict[str, float] = {}
            announced = await pubsub.subscribe("out")

            async def listen() -> None:
                async for raw in announced:
                    key, _, stamp = raw.decode().partition("@")
                    received[key] = time.time()
                    committed[key] = float(stamp)

            listener = asyncio.create_task(listen())
            await asyncio.sleep(1.0)  # connections and queues settle; not measured
            sent: dict[str, float] = {}
            for n in range(events):
                sent[f"e{n}"] = time.time()
                await pubsub.publish("in", f"e{n}".encode())
                await asyncio.sleep(GAP)
            deadline = time.perf_counter() + 5.0
            while len(received) < events * burst and time.perf_counter() < deadline:
                await asyncio.sleep(0.05)
            listener.cancel()
        finally:
            for child in children:
                child.kill()
                child.wait()
            await pubsub.close()
            queue = RabbitWorkQueue(AMQP_URL, prefix)
            await queue.delete_queues("orders")
            await queue.close()
    keys = [(f"{key}:{i}", at) for key, at in sent.items() for i in range(burst)]
    ms = np.array([committed[k] - at for k, at in keys if k in committed]) * 1000
    seen = np.array([received[k] - at for k, at in keys if k in received]) * 1000
    return {
        "impl": f"burst_{burst}",
        "events": events,
        "messages": events * burst,
        "received": len(ms),
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p90_ms": round(float(np.percentile(ms, 90)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "max_ms": round(float(ms.max()), 3),
        "seen_p50_ms": round(float(np.percentile(seen, 50)), 3),
        "seen_p99_ms": round(float(np.percentile(seen, 99)), 3),
    }


def main(argv: list[str]) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args, _ = parser.parse_known_args(argv)
    events = 100 if args.quick else 300
    out: list[dict[str, Any]] = []
    for burst in BURSTS:
        note(f"{BENCH}: {burst} message(s) per event ...")
        try:
            result = run(measure(burst, events))
        except OSError as exc:
            result = {"impl": f"burst_{burst}", "skipped": f"service unreachable: {exc}"}
        emit({"bench": BENCH, **result, "value": result.get("p99_ms")}, out)
    return out


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--role":
        role, prefix, burst, url = sys.argv[2:6]
        run(bot(prefix, int(burst)) if role == "bot" else worker(prefix, url))
    else:
        main(sys.argv[1:])

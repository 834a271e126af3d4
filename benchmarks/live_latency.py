"""Tick → persisted order latency and sustained tick rate through the live pipeline.

    .venv/bin/python benchmarks/live_latency.py            # 5,000 ticks/s real, 50,000 in-process
    .venv/bin/python benchmarks/live_latency.py --quick    # shorter runs

Two set-ups, one JSON line each:

* `real`: ticks published on Redis Pub/Sub → TradingBot → RabbitMQ (publisher confirms) →
  OrderWorker → PostgreSQL (a throwaway database), the bot and the worker in this process;
* `in_process`: the embedded defaults (in-process bus, SQLite).

Ticks are replayed at a fixed rate (in 5 ms batches) for two symbols. A benchmark strategy
reverses its position on every bar (one bar per 50 ticks per symbol), so orders are frequent.
Latency is measured per order: from the publish of the tick that closed the bar to the commit
of the order's fill, position and ledger rows. `ticks_per_s` is the rate the bot actually
processed (published ticks / time until the bot had handled the last one).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import emit, note

from sigma.app import App
from sigma.bus.base import CHANNEL_PRICE_UPDATE
from sigma.config import load_settings
from sigma.domain import Tick
from sigma.feeds.ticks import encode_tick
from sigma.runtime.system import System

BENCH = "live_latency"
REDIS_URL = os.environ.get("SIGMA_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("SIGMA_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
PG_ADMIN = os.environ.get("SIGMA_BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
SYMBOLS = ("AAA", "BBB")
TICKS_PER_BAR = 50
BATCH_SECONDS = 0.005

FLIP_STRATEGY = '''
from sigma.strategies import Strategy


class BenchFlip(Strategy):
    """Long on even bars, short on odd ones: an order on every bar."""

    name = "bench_flip"

    def on_bar(self):
        if len(self.data) % 2:
            self.go_long()
        else:
            self.go_short()
'''


def ticks(n: int) -> list[Tick]:
    """`n` ticks alternating between the symbols, one bar (1 s) per 50 ticks per symbol."""
    rng = np.random.default_rng(5)
    prices = np.round(100 * np.exp(np.cumsum(rng.normal(0, 0.0005, n))), 2)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    step = timedelta(seconds=1) / TICKS_PER_BAR
    return [
        Tick(SYMBOLS[i % 2], start + step * (i // 2), Decimal(repr(float(prices[i]))), Decimal(1))
        for i in range(n)
    ]


async def measure(app: App, rate: int, seconds: float) -> dict[str, Any]:
    """Replay `rate` ticks/s for `seconds` through bot and worker; latency per order."""
    stream = ticks(int(rate * seconds))
    system = System(app, ("bot", "worker"))
    stop = asyncio.Event()
    runner = asyncio.create_task(system.run(stop))
    while not system.ready.is_set():
        if runner.done():
            runner.result()
        await asyncio.sleep(0.01)
    bot, worker = system.bot, system.worker
    assert bot is not None and worker is not None
    published: dict[tuple[str, datetime], float] = {}
    decided: dict[str, float] = {}
    latencies: list[float] = []
    current: list[float] = [0.0]

    on_tick, submit, book = bot.on_tick, bot.executor.submit, worker.book

    async def timed_tick(tick: Tick, received: float | None = None) -> None:
        current[0] = published.pop((tick.symbol, tick.ts), time.perf_counter())
        await on_tick(tick, received)

    async def timed_submit(order: Any, ref_price: Decimal) -> Any:
        decided[order.client_order_id] = current[0]
        return await submit(order, ref_price)

    async def timed_book(*args: Any) -> Any:
        booked = await book(*args)
        started = decided.pop(args[-1].client_order_id, None)
        if started is not None:
            latencies.append(time.perf_counter() - started)
        return booked

    bot.on_tick = timed_tick  # type: ignore[method-assign]
    bot.executor.submit = timed_submit  # type: ignore[method-assign]
    worker.book = timed_book  # type: ignore[method-assign]

    per_batch = max(1, int(rate * BATCH_SECONDS))
    t0 = time.perf_counter()
    for i in range(0, len(stream), per_batch):
        due = t0 + (i / rate)
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        for tick in stream[i : i + per_batch]:
            published[(tick.symbol, tick.ts)] = time.perf_counter()
            await system.pubsub.publish(CHANNEL_PRICE_UPDATE, encode_tick(tick))
    # A subscriber that falls behind loses ticks (Pub/Sub is at most once): stop waiting once
    # nothing has arrived for a second and report how many were processed.
    processed_at, seen = time.perf_counter(), -1
    while bot.counters.ticks < len(stream) and (
        bot.counters.ticks != seen or time.perf_counter() - processed_at < 1.0
    ):
        if bot.counters.ticks != seen:
            seen, processed_at = bot.counters.ticks, time.perf_counter()
        await asyncio.sleep(0.001)
    deadline = processed_at + 60
    while worker.processed < bot.counters.orders_sent and time.perf_counter() < deadline:
        await asyncio.sleep(0.005)
    stop.set()
    await runner
    lat = np.array(latencies) * 1000 if latencies else np.array([np.nan])
    return {
        "target_ticks_per_s": rate,
        "ticks": len(stream),
        "ticks_processed": bot.counters.ticks,
        "ticks_per_s": round(bot.counters.ticks / (processed_at - t0), 1),
        "orders": bot.counters.orders_sent,
        "orders_persisted": worker.processed,
        "p50_ms": round(float(np.percentile(lat, 50)), 3),
        "p99_ms": round(float(np.percentile(lat, 99)), 3),
        "max_ms": round(float(lat.max()), 3),
    }


def app_for(database_url: str, plugins: Path, **services: Any) -> App:
    """An App running the flip strategy on the benchmark symbols."""
    return App(
        load_settings(
            database_url=database_url,
            symbols=list(SYMBOLS),
            live_strategies=["bench_flip"],
            strategy_paths=[plugins],
            bar_seconds=1,
            max_drawdown=None,
            max_open_orders=None,
            adaptive=False,
            **services,
        )
    )


async def real(rate: int, seconds: float, plugins: Path) -> dict[str, Any]:
    """Redis → bot → RabbitMQ → worker → PostgreSQL."""
    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    app = app_for(url, plugins, redis_url=REDIS_URL, amqp_url=AMQP_URL, bus_prefix=prefix)
    try:
        return {"impl": "real", **await measure(app, rate, seconds)}
    finally:
        app.close()
        from sigma.bus.rabbitmq import RabbitWorkQueue

        queue = RabbitWorkQueue(AMQP_URL, prefix)
        await queue.delete_queues("orders")
        await queue.close()
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def in_process(rate: int, seconds: float, plugins: Path, folder: Path) -> dict[str, Any]:
    """In-process bus and SQLite."""
    app = app_for(f"sqlite:///{folder / 'bench.db'}", plugins)
    try:
        return {"impl": "in_process", **await measure(app, rate, seconds)}
    finally:
        app.close()


def main(argv: list[str]) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--real-rate", type=int, default=5_000)
    parser.add_argument("--memory-rate", type=int, default=50_000)
    parser.add_argument("--only", choices=("in_process", "real"))
    args, _ = parser.parse_known_args(argv)
    seconds = 2.0 if args.quick else 6.0
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        plugins = folder / "plugins"
        plugins.mkdir()
        (plugins / "bench_flip.py").write_text(FLIP_STRATEGY)
        for label, job in (
            ("in_process", in_process(args.memory_rate, seconds, plugins, folder)),
            ("real", real(args.real_rate, seconds, plugins)),
        ):
            if args.only and label != args.only:
                job.close()
                continue
            note(f"{BENCH}: {label} ...")
            try:
                result = asyncio.run(job)
            except OSError as exc:
                result = {"impl": label, "skipped": f"service unreachable: {exc}"}
            emit({"bench": BENCH, **result, "value": result.get("ticks_per_s")}, rows)
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])

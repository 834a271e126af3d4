"""Tick → persisted order latency and sustained tick rate through the live pipeline.

    .venv/bin/python benchmarks/live_latency.py            # 5,000 ticks/s real, 50,000 in-process
    .venv/bin/python benchmarks/live_latency.py --quick    # shorter runs

Two set-ups, one JSON line each:

* `real`: ticks published on Redis Pub/Sub → `sigma up --only bot` → RabbitMQ (publisher
  confirms) → `sigma worker` → PostgreSQL (a throwaway database); bot and worker are separate
  processes, as deployed;
* `in_process`: bot and worker in this process on the embedded defaults (in-process bus,
  SQLite).

This process replays ticks at a fixed rate (in 5 ms batches, one publish round trip each) for
two symbols. A benchmark strategy reverses its position (a close and an open order) every
`--flip-every` bars, by default every bar (one bar per 50 ticks per symbol): a stress rate of
about four orders per 100 ticks. Latency is measured per order, from the publish of the tick
that closed the bar: `p50_ms`/`p99_ms`/`max_ms` to the order being persisted, which is the
time stamped on the worker's `filled` status (`OrderStatusEvent.ts`, taken once the commit of
the order's fill, position and ledger rows returned); `seen_p50_ms`/`seen_p99_ms` to this
process receiving that status (one Pub/Sub hop more). Both ends read the same wall clock.
`ticks_per_s` is the rate the bot actually processed: ticks it handled / time until it
handled the last one.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import AMQP_URL, REDIS_URL, emit, note, scratch_database

from sigma.bootstrap import App
from sigma.bus.base import CHANNEL_ORDER_STATUS, CHANNEL_PRICE_UPDATE
from sigma.bus.rabbitmq import RabbitWorkQueue
from sigma.bus.redis_pubsub import RedisPubSub
from sigma.config import load_settings
from sigma.domain import Tick
from sigma.execution.events import OrderStatusEvent
from sigma.feeds.ticks import encode_tick
from sigma.runtime.event_loop import run
from sigma.runtime.services import Services

BENCH = "live_latency"
SYMBOLS = ("AAA", "BBB")
TICKS_PER_BAR = 50
BAR = timedelta(seconds=1)
WARMUP_SECONDS = 1.0
SIGMA = Path(sys.executable).with_name("sigma")
BATCH_SECONDS = 0.005
# Every reversal pays commission on the whole equity: with the default 10,000 the account
# could no longer buy one unit after some 9,600 orders, and the rest of a long run had none.
CASH = Decimal(10**12)

FLIP_STRATEGY = '''
from sigma.strategies import Strategy


class BenchFlip(Strategy):
    """Reverses its position every FLIP_EVERY bars (two orders: close and open)."""

    name = "bench_flip"

    def on_bar(self):
        if len(self.data) % FLIP_EVERY:
            return
        if len(self.data) // FLIP_EVERY % 2:
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
            initial_cash=CASH,
            **services,
        )
    )


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def started(command: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    """`sigma <command>` as a child process, returned once it announced it is ready."""
    process = subprocess.Popen(
        [str(SIGMA), *command],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    seen = []
    while True:
        line = await asyncio.to_thread(process.stdout.readline)
        seen.append(line)
        if "Ctrl-C stops" in line:
            # Keep draining its output so a chatty child never blocks on a full pipe.
            asyncio.get_running_loop().run_in_executor(None, process.stdout.read)
            return process
        if not line:
            raise RuntimeError(f"sigma {' '.join(command)} did not start:\n{''.join(seen)}")


class Filled:
    """When each order was persisted (the worker's stamp on its `filled` status) and when
    this process received that status, wall-clock seconds by client order id."""

    def __init__(self) -> None:
        self.persisted: dict[str, float] = {}
        self.seen: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self.seen)

    async def listen(self, sub: Any) -> None:
        """Note each `filled` status arriving on `sub`."""
        async for raw in sub:
            seen = time.time()
            event = OrderStatusEvent.model_validate_json(raw)
            if event.status == "filled" and event.client_order_id not in self.seen:
                self.seen[event.client_order_id] = seen
                self.persisted[event.client_order_id] = event.ts.timestamp()

    def latencies(
        self,
        orders: list[tuple[str, str, datetime]],
        published: dict[tuple[str, datetime], float],
    ) -> dict[str, Any]:
        """Percentiles of tick → persisted and tick → seen over `orders` (client order id,
        symbol, bar start) whose closing tick was measured."""
        measured = [
            (coid, published[(symbol, created + BAR)])
            for coid, symbol, created in orders
            if coid in self.seen and (symbol, created + BAR) in published
        ]
        seen = percentiles([self.seen[coid] - at for coid, at in measured])
        return {
            **percentiles([self.persisted[coid] - at for coid, at in measured]),
            "seen_p50_ms": seen["p50_ms"],
            "seen_p99_ms": seen["p99_ms"],
        }


def scrape(port: int, name: str) -> int:
    """One counter from a process's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + " "):
                return int(float(line.split()[1]))
    raise LookupError(f"{name} not exported on port {port}")


async def settle(
    read: Callable[[], int], idle: float = 1.0, every: float = 0.05
) -> tuple[int, float]:
    """Poll `read` every `every` seconds until it has not changed for `idle` seconds; (last
    value, when it was seen to change - up to `every` late, which `ticks_per_s` pays for).

    Pub/Sub is at most once: a subscriber that falls behind loses messages, so waiting for
    a fixed total could wait forever."""
    value, changed = read(), time.perf_counter()
    while time.perf_counter() - changed < idle:
        await asyncio.sleep(every)
        now = read()
        if now != value:
            value, changed = now, time.perf_counter()
    return value, changed


async def replay(
    stream: list[Tick], rate: int, published: dict[tuple[str, datetime], float], pubsub: Any
) -> float:
    """Publish `stream` at `rate` ticks/s in 5 ms batches (one round trip each); the start.

    Publish times (wall clock, as the worker stamps its commits) are kept only after the
    first `WARMUP_SECONDS`: orders decided on earlier ticks pay one-off costs (first
    connections, statement compilation) and are not measured."""
    warmup = int(rate * WARMUP_SECONDS)
    per_batch = max(1, int(rate * BATCH_SECONDS))
    bodies = [(CHANNEL_PRICE_UPDATE, encode_tick(tick)) for tick in stream]
    # The stream is this load generator's, not the system's: kept out of the collector's
    # sight, or each full collection (in `in_process`, in the bot's interpreter) walks it.
    gc.collect()
    gc.freeze()
    t0 = time.perf_counter()
    for i in range(0, len(stream), per_batch):
        delay = t0 + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if i >= warmup:
            now = time.time()
            for tick in stream[i : i + per_batch]:
                published[(tick.symbol, tick.ts)] = now
        await pubsub.publish_many(bodies[i : i + per_batch])
    return t0


def figures(
    rate: int, sent: int, processed: int, elapsed: float, orders: int, persisted: int
) -> dict[str, Any]:
    """The throughput half of a result row."""
    return {
        "target_ticks_per_s": rate,
        "ticks": sent,
        "ticks_processed": processed,
        "ticks_per_s": round(processed / elapsed, 1),
        "orders": orders,
        "orders_persisted": persisted,
    }


def percentiles(latencies: list[float]) -> dict[str, Any]:
    """p50/p99/max in milliseconds."""
    lat = np.array(latencies) * 1000 if latencies else np.array([np.nan])
    return {
        "latency_samples": len(latencies),
        "p50_ms": round(float(np.percentile(lat, 50)), 3),
        "p99_ms": round(float(np.percentile(lat, 99)), 3),
        "max_ms": round(float(lat.max()), 3),
    }


async def real(rate: int, seconds: float, plugins: Path) -> dict[str, Any]:
    """Redis → `sigma up --only bot` → RabbitMQ → `sigma worker` → PostgreSQL, each process
    as in a deployment; this process publishes the ticks and listens to the order status."""
    with scratch_database("bench") as url:
        return await _real(url, rate, seconds, plugins)


async def _real(url: str, rate: int, seconds: float, plugins: Path) -> dict[str, Any]:
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    metrics_port = free_port()
    env = {
        **os.environ,
        "SIGMA_DATABASE_URL": url,
        "SIGMA_REDIS_URL": REDIS_URL,
        "SIGMA_AMQP_URL": AMQP_URL,
        "SIGMA_BUS_PREFIX": prefix,
        "SIGMA_SYMBOLS": ",".join(SYMBOLS),
        "SIGMA_LIVE_STRATEGIES": "bench_flip",
        "SIGMA_STRATEGY_PATHS": str(plugins),
        "SIGMA_BAR_SECONDS": "1",
        "SIGMA_MAX_DRAWDOWN": "none",
        "SIGMA_MAX_OPEN_ORDERS": "none",
        "SIGMA_ADAPTIVE": "false",
        "SIGMA_INITIAL_CASH": str(CASH),
        "SIGMA_LOG_LEVEL": "WARNING",
    }
    App(load_settings(database_url=url)).close()  # migrate once, before two processes start
    pubsub = RedisPubSub(REDIS_URL, prefix)
    filled = Filled()
    processes: list[subprocess.Popen[str]] = []
    try:
        status = await pubsub.subscribe(CHANNEL_ORDER_STATUS)
        listener = asyncio.create_task(filled.listen(status))
        for command in (["worker"], ["up", "--only", "bot"]):
            extra = {"SIGMA_METRICS_PORT": str(metrics_port)} if "bot" in command else {}
            processes.append(await started(command, {**env, **extra}))
        stream = ticks(int(rate * (WARMUP_SECONDS + seconds)))
        published: dict[tuple[str, datetime], float] = {}
        t0 = await replay(stream, rate, published, pubsub)
        # Scraped every 5 ms: `ticks_per_s` is then at most 0.1 % under the rate the bot
        # sustained (at 50 ms a 7 s run read up to 0.7 % low).
        bot_ticks, processed_at = await settle(
            lambda: scrape(metrics_port, "sigma_bot_ticks_total"), every=0.005
        )
        orders_sent = scrape(metrics_port, "sigma_bot_orders_sent_total")
        await settle(lambda: len(filled), idle=2.0)
        listener.cancel()
        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as db:
            rows = db.execute("SELECT client_order_id, symbol, created_at FROM orders").fetchall()
        return {
            "impl": "real",
            **figures(rate, len(stream), bot_ticks, processed_at - t0, orders_sent, len(rows)),
            **filled.latencies(rows, published),
        }
    finally:
        for process in processes:
            process.send_signal(signal.SIGINT)
        for process in processes:
            process.wait(timeout=60)
        await pubsub.close()
        queue = RabbitWorkQueue(AMQP_URL, prefix)
        await queue.delete_queues("orders")
        await queue.close()


async def in_process(rate: int, seconds: float, plugins: Path, folder: Path) -> dict[str, Any]:
    """Bot and worker in this process on the in-process bus and SQLite."""
    database = folder / "bench.db"
    app = app_for(f"sqlite:///{database}", plugins)
    system = Services(app, ("bot", "worker"))
    stop = asyncio.Event()
    runner = asyncio.create_task(system.run(stop))
    filled = Filled()
    try:
        while not system.ready.is_set():
            if runner.done():
                runner.result()
            await asyncio.sleep(0.01)
        bot = system.bot
        assert bot is not None
        listener = asyncio.create_task(
            filled.listen(await system.pubsub.subscribe(CHANNEL_ORDER_STATUS))
        )
        stream = ticks(int(rate * (WARMUP_SECONDS + seconds)))
        published: dict[tuple[str, datetime], float] = {}
        t0 = await replay(stream, rate, published, system.pubsub)
        # Reading the counter costs nothing here, so poll it often: at 50 ms a 3 s run would
        # report 2 % below the rate the bot sustained.
        processed, processed_at = await settle(lambda: bot.counters.ticks, every=0.001)
        await settle(lambda: len(filled), idle=2.0)
        listener.cancel()
        stop.set()
        await runner
        with sqlite3.connect(database) as db:
            rows = db.execute("SELECT client_order_id, symbol, created_at FROM orders").fetchall()
        orders = [
            (coid, symbol, datetime.fromisoformat(ts).replace(tzinfo=UTC))
            for coid, symbol, ts in rows
        ]
        return {
            "impl": "in_process",
            **figures(
                rate, len(stream), processed, processed_at - t0, bot.counters.orders_sent, len(rows)
            ),
            **filled.latencies(orders, published),
        }
    finally:
        stop.set()
        await asyncio.gather(runner, return_exceptions=True)
        app.close()


def main(argv: list[str]) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--real-rate", type=int, default=5_000)
    parser.add_argument("--memory-rate", type=int, default=50_000)
    parser.add_argument("--only", choices=("in_process", "real"))
    parser.add_argument(
        "--flip-every", type=int, default=1, help="bars between reversals (default: every bar)"
    )
    args, _ = parser.parse_known_args(argv)
    seconds = 2.0 if args.quick else 6.0
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        plugins = folder / "plugins"
        plugins.mkdir()
        (plugins / "bench_flip.py").write_text(f"FLIP_EVERY = {args.flip_every}\n{FLIP_STRATEGY}")
        for label, job in (
            ("in_process", in_process(args.memory_rate, seconds, plugins, folder)),
            ("real", real(args.real_rate, seconds, plugins)),
        ):
            if args.only and label != args.only:
                job.close()
                continue
            note(f"{BENCH}: {label} ...")
            try:
                result = run(job)
            except OSError as exc:
                result = {"impl": label, "skipped": f"service unreachable: {exc}"}
            row = {"bench": BENCH, **result, "flip_every": args.flip_every}
            emit({**row, "value": result.get("ticks_per_s")}, rows)
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])

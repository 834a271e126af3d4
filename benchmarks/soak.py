"""Soak: the whole system (`sigma up`: market, prices, bot, worker, sim, scheduler, API) on the
synthetic market for a while, on the real PostgreSQL, Redis and RabbitMQ.

    .venv/bin/python benchmarks/soak.py                  # 10 minutes
    .venv/bin/python benchmarks/soak.py --seconds 180
    .venv/bin/python benchmarks/soak.py --quick          # 30 s (what `run_all.py` runs)

The system runs in this process, as `sigma up` does, on a throwaway database and its own bus
prefix (both removed afterwards). The built-in market plays `--speed` bar-minutes per second
(600: ten 1-minute bars per second per symbol) and the bot trades the default live strategies
plus, unless `--no-flip`, `soak_flip`, which orders on every bar. The regime loop is on, as in
`sigma up`, so it pauses the strategies that lose (the flip does, by its commissions) and their
orders become rejections; `--no-adaptive` keeps the orders flowing at the flip's full rate.

Every `--every` seconds one JSON line samples the run; at the end one line sums it up: ticks
processed, orders, fills, tick -> order latency (p50/p99/max, from tick received to order
confirmed by the queue; the orders in flight while the harness itself held the loop for a full
collection before reading RSS are left out and counted in `latencies_excluded`) and order ->
fill latency, RSS after the warm-up vs at the end and its
growth in %, RSS growth per minute over the second half, the errors seen (log records at ERROR
or above, by logger; the alerts SIGMA raised on purpose are counted apart) and whether the
database holds every order once with positions equal to the sum of fills. Targets: no error,
RSS growth under 10%, every order booked once (`"ok": true`).

Environment: SIGMA_BENCH_PG_ADMIN, SIGMA_BENCH_REDIS_URL, SIGMA_BENCH_AMQP_URL (defaults:
the services on 127.0.0.1).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import socket
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import AMQP_URL, REDIS_URL, emit, note, scratch_database

from sigma.api.server import serve_embedded
from sigma.bootstrap import App
from sigma.bus.base import QUEUE_ORDERS
from sigma.config import load_settings
from sigma.runtime.event_loop import run
from sigma.runtime.services import COMPONENTS, Services

BENCH = "soak"
DEFAULT_SECONDS = 600.0
QUICK_SECONDS = 30.0
# `run_all.py` runs the quick soak; the full one is run on its own.
RUN_ALL_ARGV = ["--quick"]
TARGET_RSS_GROWTH_PCT = 10.0

FLIP_STRATEGY = '''
from sigma.strategies import Strategy


class SoakFlip(Strategy):
    """One unit long on even bars, flat on odd ones: an order on every bar."""

    name = "soak_flip"

    def on_bar(self):
        if len(self.data) % 2:
            self.sell(1)
        else:
            self.buy(1)
'''


def rss_bytes() -> int:
    """Resident set size of this process (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# Alerts SIGMA raises on purpose (a strategy paused by the regime loop, an order refused)
# are logged by the log channel under this name at their severity; they are counted apart.
ALERT_LOGGER = "sigma.alerts"


class ErrorLog(logging.Handler):
    """Counts log records at WARNING or above by logger, keeping the first error messages;
    alerts (logger `sigma.alerts`) by level."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.errors: Counter[str] = Counter()
        self.first: list[str] = []
        self.warnings: Counter[str] = Counter()
        self.alerts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == ALERT_LOGGER:
            self.alerts[record.levelname.lower()] += 1
        elif record.levelno < logging.ERROR:
            self.warnings[record.name] += 1
        else:
            self.errors[record.name] += 1
            if len(self.first) < 5:
                self.first.append(f"{record.name}: {record.getMessage()[:300]}")


class Latencies:
    """The last `size` latencies in a buffer allocated (and touched) up front, so recording
    them does not show up as growth of the process.

    A latency whose interval overlaps a stall of the harness's own (`harness_stalls`, in
    `time.perf_counter()` seconds, the bot's clock) is counted in `excluded`, not kept: it
    measures the soak, not the system."""

    def __init__(self, size: int = 200_000) -> None:
        self.values = np.full(size, np.nan)
        self.count = 0
        self.excluded = 0
        self.harness_stalls: list[tuple[float, float]] = []

    def wrap(self, chained: Callable[[float], None]) -> Callable[[float], None]:
        def record(seconds: float) -> None:
            now = time.perf_counter()
            if any(start < now and now - seconds < end for start, end in self.harness_stalls):
                self.excluded += 1
            else:
                self.values[self.count % len(self.values)] = seconds
                self.count += 1
            chained(seconds)

        return record

    def percentile_ms(self, q: float) -> float | None:
        seen = self.values[: min(self.count, len(self.values))]
        return round(float(np.percentile(seen, q)) * 1000, 3) if len(seen) else None


def collect_garbage(*latencies: Latencies) -> None:
    """A full collection, for an RSS reading without garbage. It holds the event loop the
    system runs on (about 0.3 s for this heap), so the latencies of the orders in flight
    meanwhile are the harness's, and `latencies` leave them out."""
    start = time.perf_counter()
    gc.collect()
    end = time.perf_counter()
    for measured in latencies:
        measured.harness_stalls.append((start, end))


def db_counts(app: App) -> dict[str, int]:
    """Orders, filled orders and fills stored."""
    from sqlalchemy import func, select

    from sigma.store.models import FillRecord, OrderRecord

    with app.sessions() as s:
        orders = s.scalar(select(func.count()).select_from(OrderRecord)) or 0
        filled = (
            s.scalar(
                select(func.count()).select_from(OrderRecord).where(OrderRecord.status == "filled")
            )
            or 0
        )
        fills = s.scalar(select(func.count()).select_from(FillRecord)) or 0
    return {"orders_stored": orders, "orders_filled": filled, "fills_stored": fills}


def books_ok(app: App) -> bool:
    """Every position is the signed sum of its fills."""
    from decimal import Decimal

    from sqlalchemy import select

    from sigma.store.models import FillRecord, OrderRecord, PositionRecord

    with app.sessions() as s:
        expected: dict[tuple[str, str], Decimal] = {}
        for strategy, symbol, side, qty in s.execute(
            select(OrderRecord.strategy, OrderRecord.symbol, OrderRecord.side, FillRecord.qty).join(
                FillRecord, FillRecord.client_order_id == OrderRecord.client_order_id
            )
        ):
            key = (strategy, symbol)
            expected[key] = expected.get(key, Decimal(0)) + (qty if side == "buy" else -qty)
        held = {(p.strategy, p.symbol): p.qty for p in s.scalars(select(PositionRecord)) if p.qty}
    return held == {k: v for k, v in expected.items() if v}


async def drain(app: App) -> float:
    """Run a worker alone, as the next start would, until the order queue is empty and every
    stored order is filled: order events published just before the stop wait in the durable
    queue. Returns the seconds it took."""
    started = time.monotonic()
    system = Services(app, ("worker",))
    stop = asyncio.Event()
    runner = asyncio.create_task(system.run(stop))
    try:
        while not system.ready.is_set():
            if runner.done():
                runner.result()
            await asyncio.sleep(0.05)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            counts = await asyncio.to_thread(db_counts, app)
            if await system.queue.depth(QUEUE_ORDERS) == 0 and (
                counts["orders_stored"] == counts["orders_filled"]
            ):
                break
            await asyncio.sleep(0.2)
    finally:
        stop.set()
        await asyncio.wait_for(runner, 60)
    return time.monotonic() - started


def accepted_ids(app: App) -> tuple[set[str], set[str]]:
    """Client order ids of the bot's `order_sent` decisions in the audit trail, and of the
    orders stored."""
    from sqlalchemy import select

    from sigma.store.models import ActionLog, OrderRecord

    with app.sessions() as s:
        sent = {
            str(d["client_order_id"])
            for d in s.scalars(select(ActionLog.details).where(ActionLog.action == "order_sent"))
        }
        stored = set(s.scalars(select(OrderRecord.client_order_id)))
    return sent, stored


async def soak(
    app: App, components: list[str], seconds: float, warmup: float, every: float
) -> dict[str, Any]:
    booted = time.monotonic()
    system = Services(app, components, serve_embedded)
    stop = asyncio.Event()
    runner = asyncio.create_task(system.run(stop))
    while not system.ready.is_set():
        if runner.done():
            runner.result()  # why it did not start
        await asyncio.sleep(0.05)
    startup = time.monotonic() - booted
    bot, worker, prices = system.bot, system.worker, system.prices
    assert bot is not None and prices is not None
    # Tick received -> order confirmed by the queue, and order sent -> fill reported back.
    to_order, to_fill = Latencies(), Latencies()
    bot.on_latency = to_order.wrap(bot.on_latency)
    bot.on_fill_latency = to_fill.wrap(bot.on_fill_latency)
    t0 = time.monotonic()
    rss0 = rss_bytes()
    samples: list[tuple[float, int]] = []
    rss_start: int | None = None
    at_warmup = (0, 0)  # (ticks the price client accepted, ticks the bot processed)
    next_sample = t0 + every
    while (now := time.monotonic()) - t0 < seconds:
        if runner.done():
            runner.result()  # a component died: the soak failed
            raise RuntimeError("the system stopped by itself")
        if rss_start is None and now - t0 >= warmup:
            collect_garbage(to_order, to_fill)
            rss_start, at_warmup = rss_bytes(), (prices.accepted, bot.counters.ticks)
        if now >= next_sample:
            rss = rss_bytes()
            samples.append((now - t0, rss))
            row = {
                "bench": BENCH,
                "sample_s": round(now - t0),
                "ticks_received": prices.received,
                "ticks_processed": bot.counters.ticks,
                "orders": bot.counters.orders_sent,
                "fills": bot.counters.fills,
                "rss_mb": round(rss / 2**20, 1),
            }
            print(json.dumps(row), flush=True)
            next_sample += every
        await asyncio.sleep(0.25)
    elapsed = time.monotonic() - t0
    accepted, ticks = prices.accepted, bot.counters.ticks
    collect_garbage(to_order, to_fill)
    rss_end = rss_bytes()
    # The end: the system stops in order (prices, bot, then the worker finishes what it
    # holds), and a worker started afterwards books what was still queued.
    stopping = time.monotonic()
    stop.set()
    await asyncio.wait_for(runner, 60)
    shutdown = time.monotonic() - stopping
    drained = await drain(app)
    wall = time.monotonic() - booted
    counts = await asyncio.to_thread(db_counts, app)
    sent = bot.counters.orders_sent
    logged, stored = await asyncio.to_thread(accepted_ids, app)
    assert rss_start is not None
    half = [(t, r) for t, r in samples if t >= elapsed / 2]
    slope = (
        float(np.polyfit([t for t, _ in half], [r for _, r in half], 1)[0]) * 60 / 2**20
        if len(half) >= 3
        else None
    )
    arrived, processed = accepted - at_warmup[0], ticks - at_warmup[1]
    return {
        "seconds": round(elapsed, 1),
        "startup_s": round(startup, 1),
        "wall_s": round(wall, 1),
        "components": ",".join(components),
        "ticks_received": prices.received,
        "ticks_processed": bot.counters.ticks,
        "ticks_per_s": round(processed / max(1e-9, elapsed - warmup), 1),
        # Of the ticks published after the warm-up, the share the bot had processed by the
        # end (a bot that falls behind lags the market and, past Redis's output buffer
        # limit, is disconnected and loses ticks).
        "bot_kept_up_pct": round(100.0 * processed / arrived, 1) if arrived else None,
        "shutdown_s": round(shutdown, 1),
        "drain_s": round(drained, 1),
        "bars": bot.counters.bars,
        "orders": sent,
        "orders_rejected": bot.counters.orders_rejected,
        "fills_reported": bot.counters.fills,
        **counts,
        # Every order the bot accepted (audit trail) stored once and filled, nothing else.
        "orders_not_stored": len(logged - stored),
        "orders_not_accepted": len(stored - logged),
        "orders_booked_ok": logged == stored
        and len(logged) == sent
        and counts["orders_stored"] == counts["orders_filled"] == counts["fills_stored"],
        "positions_equal_fills": await asyncio.to_thread(books_ok, app),
        "worker_duplicates": worker.duplicates if worker is not None else None,
        "tick_to_order_p50_ms": to_order.percentile_ms(50),
        "tick_to_order_p99_ms": to_order.percentile_ms(99),
        "tick_to_order_max_ms": to_order.percentile_ms(100),
        "order_to_fill_p50_ms": to_fill.percentile_ms(50),
        "order_to_fill_p99_ms": to_fill.percentile_ms(99),
        "latencies_excluded": to_order.excluded + to_fill.excluded,
        "rss_boot_mb": round(rss0 / 2**20, 1),
        "rss_start_mb": round(rss_start / 2**20, 1),
        "rss_end_mb": round(rss_end / 2**20, 1),
        "rss_growth_pct": round(100.0 * (rss_end / rss_start - 1.0), 2),
        "rss_slope_mb_per_min_second_half": None if slope is None else round(slope, 3),
        "loadavg_1m_end": round(os.getloadavg()[0], 2),
    }


def settings_for(
    database_url: str,
    prefix: str,
    folder: Path,
    speed: float,
    strategies: list[str],
    adaptive: bool,
) -> App:
    plugins = folder / "plugins"
    plugins.mkdir()
    (plugins / "soak_flip.py").write_text(FLIP_STRATEGY)
    return App(
        load_settings(
            database_url=database_url,
            redis_url=REDIS_URL,
            amqp_url=AMQP_URL,
            bus_prefix=prefix,
            var_dir=folder / "var",
            strategy_paths=[plugins],
            live_strategies=strategies,
            feed_speed=speed,
            api_port=free_port(),
            report_pdf=False,
            adaptive=adaptive,
        )
    )


async def soak_run(args: argparse.Namespace, seconds: float) -> dict[str, Any]:
    prefix = f"soak{uuid.uuid4().hex[:6]}."
    errors = ErrorLog()
    logging.getLogger().addHandler(errors)
    strategies = ["sma_cross", "rsi_reversion"] + ([] if args.no_flip else ["soak_flip"])
    components = [c.strip() for c in args.components.split(",")]
    try:
        with scratch_database("soak") as url, tempfile.TemporaryDirectory() as tmp:
            app = settings_for(url, prefix, Path(tmp), args.speed, strategies, not args.no_adaptive)
            try:
                warmup = min(args.warmup, seconds / 3)
                result = await soak(app, components, seconds, warmup, args.every)
            finally:
                app.close()
    finally:
        logging.getLogger().removeHandler(errors)
        await cleanup(prefix)
    result.update(
        errors=sum(errors.errors.values()),
        errors_by_logger=dict(errors.errors),
        first_errors=errors.first,
        warnings_by_logger=dict(errors.warnings.most_common(8)),
        alerts_by_severity=dict(errors.alerts),
    )
    result["ok"] = bool(
        result["errors"] == 0
        and result["rss_growth_pct"] < TARGET_RSS_GROWTH_PCT
        and result["orders_booked_ok"]
        and result["positions_equal_fills"]
    )
    return result


async def cleanup(prefix: str) -> None:
    """Delete the run's queues and Redis keys."""
    import redis.asyncio as aioredis

    from sigma.bus.base import QUEUE_ORDERS
    from sigma.bus.rabbitmq import RabbitWorkQueue

    queue = RabbitWorkQueue(AMQP_URL, prefix)
    with contextlib.suppress(Exception):
        await queue.delete_queues(QUEUE_ORDERS)
    await queue.close()
    client = aioredis.Redis.from_url(REDIS_URL)
    keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def main(argv: list[str]) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=None, help="how long (600)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_SECONDS:.0f} s")
    parser.add_argument("--speed", type=float, default=600.0, help="bar-minutes per second")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds before RSS start")
    parser.add_argument("--every", type=float, default=30.0, help="seconds between samples")
    parser.add_argument("--no-flip", action="store_true", help="default strategies only")
    parser.add_argument("--no-adaptive", action="store_true", help="regime loop off")
    parser.add_argument("--components", default=",".join(COMPONENTS))
    args, _ = parser.parse_known_args(argv)
    seconds = args.seconds or (QUICK_SECONDS if args.quick else DEFAULT_SECONDS)
    if args.quick and args.every > seconds / 3:
        args.every = seconds / 6
    rows: list[dict[str, Any]] = []
    note(f"{BENCH}: {seconds:.0f}s of the full system ...")
    try:
        result = run(soak_run(args, seconds))
    except OSError as exc:
        result = {"skipped": f"service unreachable: {exc}"}
    emit({"bench": BENCH, "impl": "real", **result, "value": result.get("ticks_per_s")}, rows)
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])

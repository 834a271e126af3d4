"""Order round trip through SIGMA's worker: submit -> venue ack -> fill booked.

    .venv/bin/python benchmarks/venue_roundtrip.py            # 500 orders per figure
    .venv/bin/python benchmarks/venue_roundtrip.py --quick    # 100

One `OrderWorker` (SQLite, the booking of every run) executes market orders, alternately a buy
and a sell of the same size, against each broker the composition root can give it:

- ``paper``: the paper broker, settled in this process (the floor: booking alone);
- ``binance``/``upbit``: the venue's execution client through real ccxt over HTTP to
  `sigma venue`, started as its own process (manual prices, rate limits raised): per order the
  lookup of the client id, the placement and its fills, then the booking.

Per broker: ``sequential`` (one order at a time: p50/p99 of the whole round trip as
`OrderWorker.execute` takes it, and orders/s for one worker) and ``concurrentN`` (N orders in
flight in one worker, as its prefetch lets them: orders/s). One JSON line per figure
(``value`` = orders/s for run_all's comparison); progress on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import emit, note
from venue_throughput import CONFIG, KEY, PROTOCOLS, SECRET, latency_percentiles, start_venue

from sigma.bootstrap import App
from sigma.config import load_settings
from sigma.domain import Side
from sigma.execution.broker import Broker, PaperBroker
from sigma.execution.events import OrderEvent
from sigma.execution.worker import OrderWorker
from sigma.runtime.event_loop import run
from sigma.venues.emulator.server import ccxt_config
from sigma.venues.factory import make_ccxt_broker

BENCH = "venue_roundtrip"
# protocol -> (SIGMA symbol -> ccxt symbol, the order size, the decision price)
ORDERS = {
    "binance": ({"BTC": "BTC/USDT"}, Decimal("0.001"), Decimal("92000")),
    "upbit": ({"BTC": "BTC/KRW"}, Decimal("0.0001"), Decimal("130000000")),
}


def _event(i: int, size: Decimal, price: Decimal, mode: str) -> OrderEvent:
    return OrderEvent(
        client_order_id=uuid.uuid4().hex,
        symbol="BTC",
        side=Side.BUY if i % 2 == 0 else Side.SELL,
        qty=size,
        ref_price=price,
        strategy="bench",
        mode="live" if mode == "live" else "paper",
        created_at=datetime.now(UTC),
    )


async def _measure(
    impl: str, execute: Callable[[int], Awaitable[Any]], n: int, concurrency: int
) -> list[dict[str, Any]]:
    async def timed(i: int) -> float:
        started = time.perf_counter()
        await execute(i)
        return time.perf_counter() - started

    for i in range(10):  # warm the connection pool, the database and both sides
        await timed(i)
    rows = []
    started = time.perf_counter()
    latencies = [await timed(i) for i in range(n)]
    elapsed = time.perf_counter() - started
    rows.append(_row(f"{impl}/sequential", n, elapsed, latencies))
    gate = asyncio.Semaphore(concurrency)

    async def gated(i: int) -> float:
        async with gate:
            return await timed(i)

    started = time.perf_counter()
    latencies = list(await asyncio.gather(*(gated(i) for i in range(n))))
    elapsed = time.perf_counter() - started
    rows.append(_row(f"{impl}/concurrent{concurrency}", n, elapsed, latencies))
    return rows


def _row(impl: str, n: int, elapsed: float, latencies: list[float]) -> dict[str, Any]:
    return {
        "bench": BENCH,
        "impl": impl,
        "orders": n,
        "workers": 1,
        "orders_per_s": round(n / elapsed, 1),
        "value": round(n / elapsed, 1),
        **latency_percentiles(latencies),
    }


async def _broker_rows(
    impl: str, broker: Broker, folder: Path, n: int, concurrency: int
) -> list[dict[str, Any]]:
    """The figures of one worker on ``broker``, booking into a database of its own."""
    app = App(load_settings(database_url=f"sqlite:///{folder / impl}.db"))
    worker = OrderWorker(app.sessions, broker)
    _, size, price = ORDERS.get(impl, ORDERS["binance"])
    mode = "paper" if isinstance(broker, PaperBroker) else "live"

    async def execute(i: int) -> None:
        booked = await worker.execute(_event(i, size, price, mode))
        assert booked is not None and booked.status == "filled", booked

    try:
        await worker.db.warm()
        return await _measure(impl, execute, n, concurrency)
    finally:
        await worker.close()
        await broker.close()
        app.close()


async def _run(n: int, concurrency: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        note(f"paper: {n} orders one at a time, then {concurrency} in flight")
        for row in await _broker_rows("paper", PaperBroker(), folder, n, concurrency):
            emit(row, rows)
        config_path = folder / "venue.yaml"
        config_path.write_text(CONFIG)
        process, url = await start_venue(config_path)
        try:
            for protocol, *_ in PROTOCOLS:
                note(f"{protocol}: {n} orders one at a time, then {concurrency} in flight")
                ccxt = {
                    **ccxt_config(protocol, url, url.replace("http://", "ws://")),
                    "apiKey": KEY,
                    "secret": SECRET,
                    # The venue's limits are raised for the run; ccxt's own throttle would
                    # measure itself.
                    "enableRateLimit": False,
                }
                broker = make_ccxt_broker(protocol, ORDERS[protocol][0], ccxt)
                for row in await _broker_rows(protocol, broker, folder, n, concurrency):
                    emit(row, rows)
        finally:
            process.terminate()
            process.wait(timeout=20)
    return rows


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="100 orders per figure")
    parser.add_argument("--orders", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16)
    args, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    return run(_run(100 if args.quick else args.orders, args.concurrency))


if __name__ == "__main__":
    main()

"""Orders per second and order latency of `sigma venue` through ccxt on loopback.

    .venv/bin/python benchmarks/venue_throughput.py            # 1,000 orders per figure
    .venv/bin/python benchmarks/venue_throughput.py --quick    # 200

The venue runs as its own process (`sigma venue`, manual prices, rate limits raised so they do
not throttle the run); this process is the client, with ccxt's async exchange (its own rate
limiter off). Per protocol:

- ``sequential``: one order at a time (a market buy, then a market sell of the same size, and
  so on): p50/p99 of create_order's round trip as ccxt sees it (signing, HTTP, the venue's
  matching, parsing), and orders/s.
- ``concurrent``: ``--concurrency`` orders in flight from one client: orders/s, the venue's
  capacity as one busy client sees it.

One JSON line per figure (``value`` = orders/s for run_all's comparison); progress on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import emit, note

from sigma.runtime.event_loop import run
from sigma.venues.emulator.server import ccxt_config

BENCH = "venue_throughput"
KEY, SECRET = "bench-key", "bench-secret"
# (protocol, ccxt symbol, order size, its funds)
PROTOCOLS = (
    ("binance", "BTC/USDT", 0.001, "USDT=1000000000,BTC=10000"),
    ("upbit", "BTC/KRW", 0.0001, "KRW=1000000000000,BTC=10000"),
)
# High enough that the venue's own rate limits never refuse a benchmark order.
CONFIG = """
source: manual
history_bars: 0
binance:
  maker_fee: '0.001'
  taker_fee: '0.001'
  settings: {weight_limit: 100000000, orders_per_10s: 100000000, orders_per_day: 100000000}
upbit:
  maker_fee: '0.0005'
  taker_fee: '0.0005'
  settings: {order_per_window: 100000000, exchange_per_window: 100000000,
             quotation_per_window: 100000000}
"""


def latency_percentiles(seconds: list[float]) -> dict[str, float]:
    """p50/p99/max of ``seconds`` in milliseconds (shared with venue_roundtrip.py)."""
    ms = np.array(seconds) * 1000
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "max_ms": round(float(ms.max()), 3),
    }


async def start_venue(config_path: Path) -> tuple[subprocess.Popen[str], str]:
    """`sigma venue` with the benchmark accounts, as a child process; (process, its URL)."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sigma.cli.main",
            "venue",
            "--config",
            str(config_path),
            "--port",
            "0",
            *(
                a
                for p, _, _, funds in PROTOCOLS
                for a in ("--account", f"{p}:{KEY}:{SECRET}:{funds}")
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    line = await asyncio.to_thread(process.stdout.readline)
    if not line.startswith("sigma venue on "):
        process.kill()
        raise RuntimeError(f"sigma venue did not start: {line!r}")
    return process, line.split(" on ")[1].split(" ")[0]


async def _orders(
    protocol: str, symbol: str, size: float, http_url: str, n: int, concurrency: int
) -> list[dict[str, Any]]:
    import ccxt.async_support as ccxt_async

    ws_url = http_url.replace("http://", "ws://")
    config = {**ccxt_config(protocol, http_url, ws_url), "apiKey": KEY, "secret": SECRET}
    exchange = getattr(ccxt_async, protocol)({**config, "enableRateLimit": False})
    rows: list[dict[str, Any]] = []
    try:
        await exchange.load_markets()
        price = (await exchange.fetch_ticker(symbol))["last"]
        params = {"cost": size * price} if protocol == "upbit" else {}

        async def one(i: int) -> float:
            started = time.perf_counter()
            if i % 2 == 0:
                await exchange.create_order(symbol, "market", "buy", size, price, params)
            else:
                await exchange.create_order(symbol, "market", "sell", size)
            return time.perf_counter() - started

        for _ in range(20):  # warm the connection pool and both code paths
            await one(_)
        started = time.perf_counter()
        latencies = [await one(i) for i in range(n)]
        elapsed = time.perf_counter() - started
        rows.append(
            {
                "bench": BENCH,
                "impl": f"{protocol}/sequential",
                "orders": n,
                "orders_per_s": round(n / elapsed, 1),
                "value": round(n / elapsed, 1),
                **latency_percentiles(latencies),
            }
        )
        gate = asyncio.Semaphore(concurrency)

        async def gated(i: int) -> float:
            async with gate:
                return await one(i)

        started = time.perf_counter()
        latencies = await asyncio.gather(*(gated(i) for i in range(n)))
        elapsed = time.perf_counter() - started
        rows.append(
            {
                "bench": BENCH,
                "impl": f"{protocol}/concurrent{concurrency}",
                "orders": n,
                "orders_per_s": round(n / elapsed, 1),
                "value": round(n / elapsed, 1),
                **latency_percentiles(list(latencies)),
            }
        )
    finally:
        await exchange.close()
    return rows


async def _run(n: int, concurrency: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder:
        config_path = Path(folder) / "venue.yaml"
        config_path.write_text(CONFIG)
        process, url = await start_venue(config_path)
        try:
            for protocol, symbol, size, _ in PROTOCOLS:
                note(f"{protocol}: {n} orders one at a time, then {concurrency} in flight")
                for row in await _orders(protocol, symbol, size, url, n, concurrency):
                    emit(row, rows)
        finally:
            process.terminate()
            process.wait(timeout=20)
    return rows


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="200 orders per figure")
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    args, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    return run(_run(200 if args.quick else args.orders, args.concurrency))


if __name__ == "__main__":
    main()

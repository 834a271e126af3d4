"""API latency under load, and WebSocket fan-out latency.

    .venv/bin/python benchmarks/api_load.py            # 10 s per endpoint at 500 req/s
    .venv/bin/python benchmarks/api_load.py --quick    # 3 s per endpoint

The API runs as `sigma api` in its own process on a fresh PostgreSQL database holding 10,000
orders (with their fills and ledger entries) and on Redis Pub/Sub; this process is the load
generator. Targets (issue 6): p99 < 20 ms at 500 req/s for `/api/orders` and `/api/pnl`, and
p99 < 50 ms to fan one `price_update` out to 200 WebSocket clients.

Requests are sent open-loop: one every 1/rate seconds whether or not earlier ones answered,
so a slow server shows up as latency instead of a silently lower rate. Latency counts from
when a request was due (time spent waiting for one of the IN_FLIGHT connections included: no
coordinated omission). The load generator shares the machine's cores with the server and
PostgreSQL, so it must be cheap: aiohttp on uvloop costs about 0.3 ms of CPU per request here,
where httpx cost 3 ms and could not send 500 requests a second at all.

Fan-out latency is from the publish into Redis until each client has the message (both ends
on this machine's clock); the 200 clients share this process, so the figure includes their
own scheduling.

One JSON line per measurement on stdout (`p99_ms` also as `value`); an unreachable
PostgreSQL or Redis gives a line with `skipped`.

    .venv/bin/python benchmarks/api_load.py --trading [--quick] [--rate 200] [--db sqlite]

`--trading` measures the API while the bot trades (issue 22): the whole `sigma up` (built-in
market at TRADING_FEED_SPEED, bot, worker, recorder, simulation, scheduler and API on the
in-process bus) runs on the same seeded orders, once on a SQLite file (the embedded default)
and once on PostgreSQL, while this process reads `/api/orders` and `/api/pnl` open-loop. Each
line carries `db`, the answers that were 5xx, the orders the bot wrote meanwhile, and what
the server logged: kill-switch misreads ("could not read the kill_switch flag"), "database
is locked" and component deaths. The embedded default holds when every 5xx and misread
count is 0 while `bot_orders` grows.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
import psycopg
import uvloop
from common import PG_ADMIN, REDIS_URL, emit, note, scratch_database
from sqlalchemy import func, select

from sigma.bus.redis_pubsub import RedisPubSub
from sigma.store.db import create_db_engine, init_db, read_engine, session_factory, session_scope
from sigma.store.models import FillRecord, LedgerEntry, OrderRecord

BENCH = "api_load"
ORDERS = 10_000
RATE = 500
TRADING_RATE = 200  # per endpoint; `sigma up` shares the two cores with the load generator
TRADING_FEED_SPEED = 600  # market seconds per second: a 1-minute bar every 0.1 s
TRADING_WARMUP = 90.0  # seconds the bot may take to place its first order
# What the server's log must not say while the API is read (counted per run).
TRADING_LOG_MARKS = {
    "kill_switch_misreads": "could not read the kill_switch flag",
    "locked_errors": "database is locked",
    "component_deaths": "died (",
}
IN_FLIGHT = 64
REQUEST_TIMEOUT = 10.0  # seconds; slower answers count as failed instead of stalling the run
CLIENTS = 200
FANOUT_MESSAGES = 50
PASSWORD = "bench-admin-pw"
ROOT = Path(__file__).resolve().parents[1]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _row(impl: str, latencies_ms: list[float], **extra: Any) -> dict[str, Any]:
    if not latencies_ms:
        return {"bench": BENCH, "impl": impl, "skipped": "no request answered", **extra}
    p99 = round(_percentile(latencies_ms, 0.99), 2)
    return {
        "bench": BENCH,
        "impl": impl,
        "samples": len(latencies_ms),
        "p50_ms": round(statistics.median(latencies_ms), 2),
        "p99_ms": p99,
        "max_ms": round(max(latencies_ms), 2),
        "value": p99,
        **extra,
    }


def _seed(url: str, mode: str = "paper") -> None:
    """10,000 orders over 10 days on 4 symbols, each with a fill and a ledger entry, in
    `mode` (the paper bot restores nothing from "live" ones)."""
    engine = init_db(url)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    with session_scope(session_factory(engine)) as session:
        for i in range(ORDERS):
            ts = start + timedelta(seconds=86.4 * i)
            coid = f"bench-{i}"
            price = Decimal(100 + i % 50) + Decimal("0.25")
            session.add(
                OrderRecord(
                    client_order_id=coid,
                    mode=mode,
                    symbol=("BTC", "ETH", "SOL", "ADA")[i % 4],
                    side="buy" if i % 2 else "sell",
                    qty=Decimal("0.5"),
                    status="filled",
                    strategy=("sma_cross", "rsi_reversion")[i % 2],
                    filled_qty=Decimal("0.5"),
                    avg_fill_price=price,
                    created_at=ts,
                )
            )
            session.add(FillRecord(client_order_id=coid, qty=Decimal("0.5"), price=price, ts=ts))
            session.add(
                LedgerEntry(
                    ts=ts,
                    mode=mode,
                    symbol=("BTC", "ETH", "SOL", "ADA")[i % 4],
                    strategy=("sma_cross", "rsi_reversion")[i % 2],
                    cash_delta=price / 2,
                    fee=Decimal("0.01"),
                    realized_pnl=Decimal(i % 7 - 3),
                    reason="fill",
                    client_order_id=coid,
                )
            )
            if i % 1000 == 999:
                session.flush()
    # A database in service has its planner statistics; without this, autovacuum would gather
    # them for the freshly loaded tables during the measurement.
    if engine.dialect.name == "sqlite":
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    else:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    engine.dispose()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _wait_ready(base: str, server: subprocess.Popen[bytes]) -> None:
    async with aiohttp.ClientSession() as client:
        for _ in range(300):
            if server.poll() is not None:
                raise RuntimeError(f"sigma api exited with {server.returncode}")
            try:
                async with client.get(f"{base}/api/health") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("sigma api did not start within 30 s")


async def _load(
    base: str, headers: dict[str, str], path: str, rate: int, seconds: float
) -> tuple[list[float], int, int, float]:
    """Open-loop GETs of `path` at `rate` per second: (latencies in ms of the answered
    requests, requests that failed or took over REQUEST_TIMEOUT, of those the ones answered
    with a 5xx, CPU seconds this process spent).

    At most IN_FLIGHT requests are on the wire (the connector's limit); a request due while
    all connections are busy waits for one, and that wait is part of its latency."""
    latencies: list[float] = []
    failed = server_errors = 0
    connector = aiohttp.TCPConnector(limit=IN_FLIGHT)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    async with aiohttp.ClientSession(
        base, connector=connector, headers=headers, timeout=timeout
    ) as client:

        async def one(due: float) -> None:
            nonlocal failed, server_errors
            try:
                async with client.get(path) as response:
                    await response.read()
                    ok = response.status == 200
                    server_errors += response.status >= 500
            except (aiohttp.ClientError, TimeoutError):
                ok = False
            if ok:
                latencies.append((time.perf_counter() - due) * 1000)
            else:
                failed += 1

        await one(time.perf_counter())  # warm the connection and the server's caches
        latencies.clear()
        tasks = []
        cpu = time.process_time()
        begin = time.perf_counter()
        for i in range(int(rate * seconds)):
            due = begin + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(due)))
        await asyncio.gather(*tasks)
        cpu = time.process_time() - cpu
    return latencies, failed, server_errors, cpu


async def _fanout(base: str, token: str, prefix: str) -> list[float]:
    """Latency (ms) from a Redis publish to each of CLIENTS WebSocket clients."""
    url = base.replace("http://", "ws://") + f"/ws?token={token}&channels=price_update"
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    clients = [await session.ws_connect(url, max_msg_size=0) for _ in range(CLIENTS)]
    bus = RedisPubSub(REDIS_URL, prefix)
    latencies: list[float] = []
    try:

        async def receive(ws: aiohttp.ClientWebSocketResponse, sent: dict[int, float]) -> None:
            for _ in range(FANOUT_MESSAGES):
                message = json.loads(await ws.receive_str())
                latencies.append((time.perf_counter() - sent[message["data"]["n"]]) * 1000)

        sent: dict[int, float] = {}
        readers = [asyncio.create_task(receive(ws, sent)) for ws in clients]
        await asyncio.sleep(0.5)  # let the API's Redis subscription settle
        for n in range(FANOUT_MESSAGES):
            body = {"symbol": "BTC", "price": "100.5", "ts": "2024-01-01T00:00:00Z", "n": n}
            sent[n] = time.perf_counter()
            await bus.publish("price_update", json.dumps(body).encode())
            await asyncio.sleep(0.05)
        await asyncio.wait_for(asyncio.gather(*readers), 60)
    finally:
        await bus.close()
        for ws in clients:
            await ws.close()
        await session.close()
    return latencies


async def _run(quick: bool, rate: int, rows: list[dict[str, Any]]) -> None:
    seconds = 3.0 if quick else 10.0
    try:
        psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5).close()
        RedisPubSub(REDIS_URL)  # the URL parses; reachability shows at the first publish
    except (psycopg.OperationalError, ValueError) as exc:
        emit({"bench": BENCH, "impl": "orders", "skipped": str(exc)}, rows)
        return
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with scratch_database("bench_api") as url:
        note(f"seeding {ORDERS:,} orders into {url.rsplit('/', 1)[1]}")
        _seed(url)
        # The seeding's ORM objects stay reachable; frozen, they no longer make this process's
        # full collections pause for ~180 ms mid-measurement, latency the server never caused.
        gc.collect()
        gc.freeze()
        with tempfile.TemporaryDirectory() as tmp, Path(tmp, "api.log").open("wb") as log:
            env = {
                **os.environ,
                "SIGMA_DATABASE_URL": url,
                "SIGMA_REDIS_URL": REDIS_URL,
                "SIGMA_BUS_PREFIX": prefix,
                "SIGMA_VAR_DIR": tmp,
                "SIGMA_ADMIN_PASSWORD": PASSWORD,
                "SIGMA_API_PORT": str(port),
            }
            sigma = Path(sys.executable).with_name("sigma")
            server = subprocess.Popen(
                [str(sigma), "api"], env=env, cwd=tmp, stdout=log, stderr=subprocess.STDOUT
            )
            try:
                await _measure(base, prefix, rate, seconds, rows, server)
            finally:
                server.terminate()
                server.wait(timeout=30)


async def _measure(
    base: str,
    prefix: str,
    rate: int,
    seconds: float,
    rows: list[dict[str, Any]],
    server: subprocess.Popen[bytes],
) -> None:
    await _wait_ready(base, server)
    token = await _token(base)
    headers = {"Authorization": f"Bearer {token}"}
    for impl, path in (("orders", "/api/orders?limit=100"), ("pnl", "/api/pnl?by=day")):
        note(f"{path}: {rate} req/s for {seconds:.0f} s")
        cpu = _cpu_seconds(server.pid)
        latencies, failed, _, load_cpu = await _load(base, headers, path, rate, seconds)
        extra = {
            "rate": rate,
            "answered_per_s": round(len(latencies) / seconds, 1),
            "failed": failed,
            "server_cpu_ms_per_req": _per_request(_cpu_seconds(server.pid) - cpu, rate, seconds),
            "loadgen_cpu_ms_per_req": _per_request(load_cpu, rate, seconds),
            "orders": ORDERS,
            "target_p99_ms": 20,
        }
        emit(_row(impl, latencies, **extra), rows)
    note(f"fan-out to {CLIENTS} WebSocket clients")
    latencies = await _fanout(base, token, prefix)
    emit(_row("ws_fanout", latencies, clients=CLIENTS, target_p99_ms=50), rows)


async def _token(base: str) -> str:
    """The admin's access token."""
    async with (
        aiohttp.ClientSession(base) as client,
        client.post("/api/auth/token", data={"username": "admin", "password": PASSWORD}) as login,
    ):
        token: str = (await login.json())["access_token"]
    return token


@contextlib.contextmanager
def _trading_database(kind: str) -> Iterator[str]:
    """A fresh SQLite file or PostgreSQL database for one trading run."""
    if kind == "postgresql":
        with scratch_database("bench_api_trading") as url:
            yield url
        return
    with tempfile.TemporaryDirectory() as tmp:
        yield f"sqlite:///{tmp}/sigma.db"


def _bot_orders(url: str) -> int:
    """Orders the bot has placed so far (the seeded ones are in mode "live"), read on
    read-only connections so the count takes no write lock from the bot."""
    writer = create_db_engine(url)
    reader = read_engine(writer)
    try:
        with reader.connect() as conn:
            query = select(func.count()).select_from(OrderRecord).where(OrderRecord.mode == "paper")
            return int(conn.execute(query).scalar_one())
    finally:
        reader.dispose()
        writer.dispose()


async def _run_trading(
    quick: bool, rate: int, kinds: list[str], rows: list[dict[str, Any]]
) -> None:
    seconds = 5.0 if quick else 25.0
    for kind in kinds:
        try:
            with _trading_database(kind) as url:
                note(f"{kind}: seeding {ORDERS:,} orders, then `sigma up` with a trading bot")
                _seed(url, mode="live")
                gc.collect()
                gc.freeze()
                await _trade_and_read(kind, url, rate, seconds, rows)
        except psycopg.OperationalError as exc:
            emit({"bench": BENCH, "impl": "orders", "db": kind, "skipped": str(exc)}, rows)


async def _trade_and_read(
    kind: str, url: str, rate: int, seconds: float, rows: list[dict[str, Any]]
) -> None:
    """Start `sigma up` on `url`, wait for the bot's first order, then load the API."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        log_path = Path(tmp, "up.log")
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SIGMA_")},
            "SIGMA_DATABASE_URL": url,
            "SIGMA_VAR_DIR": tmp,
            "SIGMA_ADMIN_PASSWORD": PASSWORD,
            "SIGMA_API_PORT": str(port),
            "SIGMA_FEED_SPEED": str(TRADING_FEED_SPEED),
        }
        sigma = Path(sys.executable).with_name("sigma")
        with log_path.open("wb") as log:
            server = subprocess.Popen(
                [str(sigma), "up"], env=env, cwd=tmp, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            await _wait_ready(base, server)
            deadline = time.monotonic() + TRADING_WARMUP
            while _bot_orders(url) == 0:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"the bot placed no order within {TRADING_WARMUP:.0f} s")
                await asyncio.sleep(1)
            headers = {"Authorization": f"Bearer {await _token(base)}"}
            logged = log_path.read_text(errors="replace")
            for impl, path in (("orders", "/api/orders?limit=100"), ("pnl", "/api/pnl?by=day")):
                note(f"{kind}: {path}: {rate} req/s for {seconds:.0f} s while the bot trades")
                before = _bot_orders(url)
                latencies, failed, server_errors, _ = await _load(
                    base, headers, path, rate, seconds
                )
                now_logged = log_path.read_text(errors="replace")
                new = now_logged[len(logged) :]
                logged = now_logged
                marks = {key: new.count(text) for key, text in TRADING_LOG_MARKS.items()}
                extra = {
                    "db": kind,
                    "trading": True,
                    "rate": rate,
                    "answered_per_s": round(len(latencies) / seconds, 1),
                    "failed": failed,
                    "server_5xx": server_errors,
                    "bot_orders": _bot_orders(url) - before,
                    **marks,
                    "orders": ORDERS,
                }
                emit(_row(impl, latencies, **extra), rows)
        finally:
            server.terminate()
            server.wait(timeout=60)


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of process `pid` so far, from /proc; 0 where there is none."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _per_request(cpu_seconds: float, rate: int, seconds: float) -> float:
    return round(cpu_seconds * 1000 / max(1, int(rate * seconds)), 3)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="3 s per endpoint instead of 10")
    parser.add_argument("--rate", type=int, default=None, help="requests per second")
    parser.add_argument(
        "--trading",
        action="store_true",
        help="on SQLite and PostgreSQL while `sigma up` trades, instead of `sigma api` alone",
    )
    parser.add_argument(
        "--db",
        choices=("sqlite", "postgresql"),
        action="append",
        help="with --trading: only this database (repeatable; default both)",
    )
    args, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    rows: list[dict[str, Any]] = []
    # uvloop: the load generator's own scheduling is part of every latency it reports.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        if args.trading:
            kinds = args.db or ["sqlite", "postgresql"]
            runner.run(_run_trading(args.quick, args.rate or TRADING_RATE, kinds, rows))
        else:
            runner.run(_run(args.quick, args.rate or RATE, rows))
    return rows


if __name__ == "__main__":
    # A plain SIGTERM would skip the `finally` blocks that stop the server and drop the database.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    main()

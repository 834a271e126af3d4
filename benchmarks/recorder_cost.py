"""What recording costs: the price loop's time per tick, rows written per second, and the
storage a day of ticks takes, on SQLite and PostgreSQL.

    .venv/bin/python benchmarks/recorder_cost.py            # 200,000 ticks per database
    .venv/bin/python benchmarks/recorder_cost.py --quick    # 20,000

One JSON line per database on stdout; progress on stderr. PostgreSQL is a scratch database on
SIGMA_BENCH_PG_ADMIN's server (dropped afterwards); an unreachable server gives a line with
`skipped`.

What is measured: ticks of `SYMBOLS` symbols, one every `TICK_MS` ms of market time each, go
through what the recorder component does per bus message on the loop (`decode_tick`, then
`MarketRecorder.record`), as fast as the loop can, while the writer thread writes behind it
(1-minute and 5-minute bars included). `loop_us_*` is the time of that per tick, measured on
the caller's thread (so the writer's share of the GIL shows in it; start-up objects are
frozen out of the garbage collector's sight, as `sigma up` does); `rows_per_s` is rows
written from the first tick until `close` returned (a backlog the writer had to catch up on,
i.e. its throughput, not the feed's rate). Storage: `pg_total_relation_size('ticks')` (table,
primary key index, TOAST) on PostgreSQL; on SQLite the growth of the database file (after a
WAL checkpoint) over the run, bars included; per day at `--rate` ticks per second.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import emit, note, scratch_database
from sqlalchemy import Engine, func, select, text

from sigma.domain import Tick
from sigma.feeds.ticks import decode_tick, encode_tick
from sigma.store.db import init_db
from sigma.store.models import TickRecord
from sigma.store.recorder import MarketRecorder

BENCH = "recorder_cost"
SYMBOLS = ("BTC", "ETH")
TICK_MS = 250
START = datetime(2024, 1, 1, tzinfo=UTC)
DAY = 86_400


def messages(n: int) -> list[bytes]:
    """`n` wire ticks: a random-ish walk per symbol with quotes, as a venue sends them."""
    out: list[bytes] = []
    for i in range(n):
        symbol = SYMBOLS[i % len(SYMBOLS)]
        price = Decimal(64_000 + (i * 7919) % 500) / 10 + Decimal("0.01") * (i % 97)
        ts = START + timedelta(milliseconds=TICK_MS * (i // len(SYMBOLS)))
        tick = Tick(symbol, ts, price, Decimal("0.0125"), bid=price - 1, ask=price + 1)
        out.append(encode_tick(tick))
    return out


def _file_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def _stored_bytes(engine: Engine, sqlite_file: Path | None) -> int:
    if sqlite_file is not None:
        # Outside a transaction (the engine's begin one): the WAL folded into the file.
        raw = engine.raw_connection()
        try:
            raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            raw.close()
        return _file_bytes(sqlite_file)
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_total_relation_size('ticks')")).scalar_one())


def measure(url: str, raw: list[bytes], rate: float, sqlite_file: Path | None) -> dict[str, Any]:
    """One run on the database at `url`."""
    engine = init_db(url)
    try:
        before = _stored_bytes(engine, sqlite_file)
        recorder = MarketRecorder(engine, (timedelta(minutes=1), timedelta(minutes=5)))
        recorder.start()
        # As `sigma up` does (`sigma.runtime.event_loop.serve`): what start-up loaded is kept
        # out of the collector's sight, else a full collection pauses the loop for 0.3 s.
        gc.collect()
        gc.freeze()
        costs: list[float] = []
        clock = time.perf_counter
        started = clock()
        for message in raw:
            t0 = clock()
            recorder.record(decode_tick(message))
            costs.append(clock() - t0)
        fed = clock() - started
        lost = recorder.close(timeout=600)
        drained = clock() - started
        gc.unfreeze()
        with engine.connect() as conn:
            stored = int(conn.execute(select(func.count()).select_from(TickRecord)).scalar_one())
        size = _stored_bytes(engine, sqlite_file) - before
    finally:
        engine.dispose()
    per_tick = size / stored if stored else float("nan")
    per_day = rate * DAY
    costs.sort()
    mean_us = statistics.fmean(costs) * 1e6
    return {
        "ticks": len(raw),
        "ticks_stored": stored,
        "bars_stored": recorder.bars,
        "rows_lost": lost,
        "loop_us_per_tick_mean": round(mean_us, 2),
        "loop_us_p50": round(costs[len(costs) // 2] * 1e6, 2),
        "loop_us_p99": round(costs[int(len(costs) * 0.99)] * 1e6, 2),
        "loop_us_max": round(costs[-1] * 1e6, 1),
        "feed_seconds": round(fed, 3),
        "rows_per_s": round(recorder.writer.written / drained, 1),
        "bytes_per_tick": round(per_tick, 1),
        "rate_ticks_per_s": rate,
        "ticks_per_day": int(per_day),
        "mb_per_day": round(per_tick * per_day / 1e6, 1),
        "value": round(mean_us, 2),
    }


@contextmanager
def _sqlite() -> Iterator[tuple[str, Path]]:
    with tempfile.TemporaryDirectory(prefix="sigma-bench-") as folder:
        path = Path(folder) / "sigma.db"
        yield f"sqlite:///{path}", path


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Run the benchmark; returns the rows it printed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="20,000 ticks instead of 200,000")
    parser.add_argument(
        "--rate", type=float, default=10.0, help="ticks per second the per-day figure assumes"
    )
    args, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    raw = messages(20_000 if args.quick else 200_000)
    rows: list[dict[str, Any]] = []
    note(f"{BENCH}: {len(raw)} ticks per database")
    with _sqlite() as (url, path):
        emit({"bench": BENCH, "impl": "sqlite", **measure(url, raw, args.rate, path)}, rows)
    try:
        with scratch_database("sigma_bench_recorder") as url:
            emit({"bench": BENCH, "impl": "postgresql", **measure(url, raw, args.rate, None)}, rows)
    except Exception as exc:  # the server is away: say so instead of a figure
        emit({"bench": BENCH, "impl": "postgresql", "skipped": repr(exc)}, rows)
    return rows


if __name__ == "__main__":
    main()

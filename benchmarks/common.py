"""Shared pieces of the benchmarks: synthetic minute bars, timing, JSON lines, scratch databases.

Every backtest benchmark trades the same SMA crossover (fast 10 / slow 20 unless told
otherwise): decide on bar i's close, close the position and reverse at bar i+1's open with all
the cash in whole units, commission a fraction of notional. The competitors (`_ref_jobs.py`,
run in their own environment by `_reference.py`) get the *same* SMA values as SIGMA: the
benchmark compares engines, and identical indicator floats make "same trades" a meaningful
check (float-different rolling means can flip a crossover on an exact tie of cent prices).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import psycopg

T = TypeVar("T")

# The servers the service benchmarks use (defaults: this machine's).
PG_ADMIN = os.environ.get("SIGMA_BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("SIGMA_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("SIGMA_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


@contextmanager
def scratch_database(prefix: str) -> Iterator[str]:
    """A new database `<prefix>_<random>` on PG_ADMIN's server for one run, as a SQLAlchemy
    URL; dropped afterwards whatever happened, so no run leaves state behind."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    server = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    try:
        yield f"{server}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def minute_bars(n: int, seed: int = 20240101) -> pd.DataFrame:
    """`n` one-minute bars of a seeded random walk, prices rounded to cents (index `ts`, UTC)."""
    rng = np.random.default_rng(seed)
    close = np.round(100 * np.exp(np.cumsum(rng.normal(0, 0.001, n))), 2)
    open_ = np.round(np.concatenate(([100.0], close[:-1])) * (1 + rng.normal(0, 2e-4, n)), 2)
    high = np.round(np.maximum(open_, close) + rng.uniform(0, 0.05, n), 2)
    low = np.round(np.minimum(open_, close) - rng.uniform(0, 0.05, n), 2)
    idx = pd.date_range("2024-01-01", periods=n, freq="1min", tz="UTC", name="ts")
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": 1_000.0}, index=idx
    )


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    """(fn(), seconds)."""
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def emit(row: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """Print one JSON line and keep it."""
    clean = {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()
    }
    print(json.dumps(clean), flush=True)
    rows.append(clean)


def note(message: str) -> None:
    """Human progress on stderr (stdout carries only JSON lines)."""
    print(message, file=sys.stderr, flush=True)

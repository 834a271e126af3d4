"""The price filter's cost per tick (issue 23): `AnomalyDetector.check` alone, and with the
feed health (rejection-ratio alarm, entry pause) and its Prometheus metrics, as the live feed
runs it.

    .venv/bin/python benchmarks/price_filter.py            # 200k ticks
    .venv/bin/python benchmarks/price_filter.py --quick    # 50k ticks

One line per (impl, scenario): ``ns_per_tick`` (also as ``value``, which `run_all.py`
compares between runs; lower is better) and ``rejected``, the ticks the filter dropped.
Scenarios: ``steady`` (a random walk at one volatility) and ``regimes`` (calm, then three
times normal, then normal again, with one bad print in a hundred).
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import emit, note

from sigma.domain import Tick
from sigma.ops.metrics import Metrics
from sigma.risk.anomaly import AnomalyDetector
from sigma.risk.feed_health import FeedHealth
from sigma.runtime.telemetry import PriceFilterGauges
from sigma.store.restart import StoredPrice

BENCH = "price_filter"
T0 = datetime(2024, 1, 1, tzinfo=UTC)
SIGMA = 0.001


def scenario(name: str, n: int, seed: int = 5) -> list[Tick]:
    """`n` ticks of `name`, one a second, prices rounded to cents."""
    rng = random.Random(seed)
    price, out = 100.0, []
    for i in range(n):
        if name == "regimes":
            vol = (SIGMA / 5, 3 * SIGMA, SIGMA)[(3 * i // n) % 3]
            bad = rng.random() < 0.01
        else:
            vol, bad = SIGMA, False
        price *= math.exp(rng.gauss(0, vol))
        shown = price * (1.05 if bad else 1.0)
        out.append(Tick.of("BTC", T0 + timedelta(seconds=i), Decimal(f"{shown:.2f}")))
    return out


def run(impl: str, ticks: list[Tick]) -> tuple[float, int]:
    """(ns per tick, ticks rejected) of one pass over `ticks`."""
    stored = StoredPrice(ticks[0].price, ticks[0].ts)
    detector = AnomalyDetector(reference=lambda symbol: stored)
    health = FeedHealth(sinks=[PriceFilterGauges(Metrics())]) if impl == "with_health" else None
    rejected = 0
    start = time.perf_counter_ns()
    for tick in ticks:
        verdict = detector.check(tick)
        if health is not None:
            health.record(tick, verdict)
        rejected += not verdict.ok
    return (time.perf_counter_ns() - start) / len(ticks), rejected


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50k ticks")
    args, _ = parser.parse_known_args(argv)
    n = 50_000 if args.quick else 200_000
    rows: list[dict[str, Any]] = []
    for name in ("steady", "regimes"):
        ticks = scenario(name, n)
        for impl in ("detector", "with_health"):
            note(f"price filter: {impl} on {n} {name} ticks")
            ns, rejected = run(impl, ticks)
            row = {"bench": BENCH, "impl": f"{impl}_{name}", "bars": n}
            emit({**row, "ns_per_tick": round(ns), "value": round(ns), "rejected": rejected}, rows)
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])

"""Optimisation throughput (backtests per second): one optuna study in PostgreSQL worked on by
1 and by 2 processes (`optimize(..., storage=PG, workers=w)`), TPE over sma_cross's bounds.

    .venv/bin/python benchmarks/optimize_throughput.py            # 100k bars, 120 trials
    .venv/bin/python benchmarks/optimize_throughput.py --quick    # 20k bars, 40 trials

A throwaway database is created on the server named by SIGMA_BENCH_PG_ADMIN (default
postgresql://postgres@127.0.0.1:5432/postgres) and dropped afterwards. The 2-process time
includes spawning the second worker; both share the trials through the study's tables.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import emit, minute_bars, note, scratch_database, timed

from sigma.research.optimize import optimize
from sigma.strategies.builtin import SmaCross

BENCH = "optimize_throughput"
BOUNDS = {"fast": (2.0, 100.0), "slow": (3.0, 400.0)}


def run_size(n: int, trials: int, url: str, rows: list[dict[str, Any]]) -> None:
    bars = minute_bars(n)
    optimize(SmaCross, bars.iloc[:500], n_trials=2)  # JIT warm-up
    for workers in (1, 2):
        note(f"[{n}] optuna study on PostgreSQL, workers={workers} ...")
        result, seconds = timed(
            lambda w=workers: optimize(  # type: ignore[misc]
                SmaCross,
                bars,
                n_trials=trials,
                seed=1,
                bounds=BOUNDS,
                storage=url,
                study_name=f"bench-{n}-w{w}",
                workers=w,
            )
        )
        emit(
            {
                "bench": BENCH,
                "impl": f"optuna_pg_w{workers}",
                "bars": n,
                "trials": result.n_trials,
                "value": round(result.n_trials / seconds, 2),
                "unit": "backtests_per_s",
                "seconds": round(seconds, 3),
            },
            rows,
        )


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20k bars, 40 trials")
    args, _ = parser.parse_known_args(argv)
    rows: list[dict[str, Any]] = []
    with scratch_database("sigma_bench") as url:
        n, trials = (20_000, 40) if args.quick else (100_000, 120)
        run_size(n, trials, url, rows)
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])

"""Parameter-sweep throughput (combinations per second): SIGMA's `sweep` on one and two worker
processes and with the workers it chooses itself, against backtesting.py's `Backtest.optimize`
(a process pool on every core) and vectorbt (one run over a column per combination), over the
same grid: fast 5..45 step 5 × slow 10..90 step 10 with fast < slow (61 combinations).

    .venv/bin/python benchmarks/sweep_speed.py            # 20k, 100k (+ SIGMA alone at 1M)
    .venv/bin/python benchmarks/sweep_speed.py --quick    # 20k bars

SIGMA's time includes starting the worker pool and sending the bars to it (the fastest of 3
sweeps up to 100k bars, of 2 at 1M, the worker counts taking turns). The competitors run
in their own environment (`_reference.py`). Everyone maximises the final equity; the lines say
whether each found SIGMA's best combination and equity (`same_best`). Ratio lines: two workers
over one, the chosen workers over one, and SIGMA over each competitor (> 1: SIGMA is faster).
"""

from __future__ import annotations

import argparse
import os
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _reference import bars_file, run_job, scratch
from common import emit, minute_bars, note, timed

from sigma.engine.fill_model import FillModel
from sigma.research.sweep import sweep, sweep_workers

BENCH = "sweep_speed"
GRID = {"fast": range(5, 50, 5), "slow": range(10, 100, 10)}
CASH = 1_000_000
COMMISSION = "0.00001"
# How each competitor is run, and its name in the lines.
COMPETITORS = {"backtesting_py_optimize": "backtesting_optimize", "vectorbt": "vectorbt_sweep"}


def _ratio(name: str, n: int, value: float, rows: list[dict[str, Any]]) -> None:
    emit({"bench": BENCH, "ratio": name, "bars": n, "value": round(value, 2)}, rows)


def run_size(n: int, folder: Path, rows: list[dict[str, Any]], competitors: bool = True) -> None:
    bars = minute_bars(n)
    fm = FillModel(commission_pct=Decimal(COMMISSION))
    # Untimed: compiles the loop and touches the bars, so the first timed sweep (one worker)
    # does not carry costs the others skip.
    sweep("sma_cross", bars, {"fast": [5], "slow": [10]}, fill_model=fm, workers=1)
    rates: dict[str, float] = {}
    best: dict[str, list[Any]] = {}
    # The fastest of `repeats`, the worker counts taking turns: the other work on the machine
    # drifts over a run, and each count then meets it alike.
    repeats = 3 if n <= 100_000 else 2
    seconds: dict[str, float] = {}
    tables: dict[str, Any] = {}
    impls = {1: "sigma_sweep_w1", 2: "sigma_sweep_w2", None: "sigma_sweep_auto"}
    for _ in range(repeats):
        for workers, impl in impls.items():
            note(f"[{n}] SIGMA sweep, {impl} ...")
            tables[impl], once = timed(
                lambda w=workers: sweep(  # type: ignore[misc]
                    "sma_cross",
                    bars,
                    GRID,
                    initial_cash=CASH,
                    fill_model=fm,
                    workers=w,
                    sort_by="final_equity",
                )
            )
            seconds[impl] = min(seconds.get(impl, float("inf")), once)
    for workers, impl in impls.items():
        table = tables[impl]
        rates[impl] = len(table) / seconds[impl]
        top = table.iloc[0]
        best[impl] = [int(top["fast"]), int(top["slow"]), round(float(top["final_equity"]), 2)]
        emit(
            {
                "bench": BENCH,
                "impl": impl,
                "bars": n,
                "workers": sweep_workers(61, n, workers),
                "combos": len(table),
                "combos_per_s": round(rates[impl], 2),
                "seconds": round(seconds[impl], 3),
                "repeats": repeats,
                "best": best[impl],
                # Other work on the machine: a second worker only helps on a free core.
                "load_1m": round(os.getloadavg()[0], 2),
            },
            rows,
        )
    _ratio(
        "sigma_sweep_w2/sigma_sweep_w1", n, rates["sigma_sweep_w2"] / rates["sigma_sweep_w1"], rows
    )
    _ratio(
        "sigma_sweep_auto/sigma_sweep_w1",
        n,
        rates["sigma_sweep_auto"] / rates["sigma_sweep_w1"],
        rows,
    )
    if not competitors:
        return
    path = bars_file(bars, {p for values in GRID.values() for p in values}, folder)
    grid = {key: [r.start, r.stop, r.step] for key, r in GRID.items()}
    for impl, job in COMPETITORS.items():
        note(f"[{n}] {impl} ...")
        answer = run_job(job, path, cash=CASH, commission=float(COMMISSION), grid=grid)
        rates[impl] = answer["combos"] / answer["seconds"]
        emit(
            {
                "bench": BENCH,
                "impl": impl,
                "bars": n,
                "combos": answer["combos"],
                "combos_per_s": round(rates[impl], 2),
                "seconds": round(answer["seconds"], 3),
                "best": answer["best"],
                "same_best": answer["best"] == best["sigma_sweep_auto"],
            },
            rows,
        )
        for ours in ("sigma_sweep_auto", "sigma_sweep_w2", "sigma_sweep_w1"):
            _ratio(f"{ours}/{impl}", n, rates[ours] / rates[impl], rows)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20k bars only")
    args, _ = parser.parse_known_args(argv)
    rows: list[dict[str, Any]] = []
    with scratch() as tmp:
        for n in [20_000] if args.quick else [20_000, 100_000]:
            run_size(n, Path(tmp), rows)
        if not args.quick:  # where two processes pay off; backtesting.py would need ~4 minutes
            run_size(1_000_000, Path(tmp), rows, competitors=False)
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])

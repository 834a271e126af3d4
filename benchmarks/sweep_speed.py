"""Parameter-sweep throughput (combinations per second): SIGMA's `sweep` on two worker processes
against backtesting.py's `Backtest.optimize` (which uses a process pool on every core too),
over the same grid: fast 5..45 step 5 × slow 10..90 step 10 with fast < slow (61 combinations).

    .venv/bin/python benchmarks/sweep_speed.py            # 20k, 100k (+ SIGMA alone at 1M)
    .venv/bin/python benchmarks/sweep_speed.py --quick    # 20k bars

SIGMA's time includes starting the worker pool and sending the bars to it. Both maximise the
final equity; the lines report whether they found the same best combination and equity.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import backtesting_py_strategy, capitalised, emit, minute_bars, note, timed

from sigma.engine.fill_model import FillModel
from sigma.research.sweep import sweep

BENCH = "sweep_speed"
GRID = {"fast": range(5, 50, 5), "slow": range(10, 100, 10)}
CASH = 1_000_000
COMMISSION = "0.00001"


def run_size(n: int, rows: list[dict[str, Any]], competitor: bool = True) -> None:
    bars = minute_bars(n)
    fm = FillModel(commission_pct=Decimal(COMMISSION))
    sweep("sma_cross", bars.iloc[:500], {"fast": [5], "slow": [10]}, fill_model=fm)  # JIT warm
    rates: dict[str, float] = {}
    best: dict[str, tuple[int, int, float]] = {}
    for workers in (1, 2):
        note(f"[{n}] SIGMA sweep, workers={workers} ...")
        table, seconds = timed(
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
        impl = f"sigma_sweep_w{workers}"
        rates[impl] = len(table) / seconds
        top = table.iloc[0]
        best[impl] = (int(top["fast"]), int(top["slow"]), round(float(top["final_equity"]), 2))
        emit(
            {
                "bench": BENCH,
                "impl": impl,
                "bars": n,
                "combos": len(table),
                "combos_per_s": round(rates[impl], 2),
                "seconds": round(seconds, 3),
                "best": best[impl],
            },
            rows,
        )

    if not competitor:
        return
    from backtesting import Backtest

    note(f"[{n}] backtesting.py optimize ...")
    bt = Backtest(
        capitalised(bars),
        backtesting_py_strategy(),
        cash=CASH,
        commission=float(COMMISSION),
        exclusive_orders=True,
        finalize_trades=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (stats, heatmap), seconds = timed(
            lambda: bt.optimize(
                n1=range(5, 50, 5),
                n2=range(10, 100, 10),
                constraint=lambda p: p.n1 < p.n2,
                maximize="Equity Final [$]",
                return_heatmap=True,
            )
        )
    combos = int(heatmap.notna().sum())
    rates["backtesting_py"] = combos / seconds
    strat = stats["_strategy"]
    theirs = (int(strat.n1), int(strat.n2), round(float(stats["Equity Final [$]"]), 2))
    emit(
        {
            "bench": BENCH,
            "impl": "backtesting_py_optimize",
            "bars": n,
            "combos": combos,
            "combos_per_s": round(rates["backtesting_py"], 2),
            "seconds": round(seconds, 3),
            "best": theirs,
            "same_best": theirs == best["sigma_sweep_w2"],
        },
        rows,
    )
    for ours in ("sigma_sweep_w2", "sigma_sweep_w1"):
        emit(
            {
                "bench": BENCH,
                "ratio": f"{ours}/backtesting_py_optimize",
                "bars": n,
                "value": round(rates[ours] / rates["backtesting_py"], 1),
            },
            rows,
        )


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20k bars only")
    args, _ = parser.parse_known_args(argv)
    rows: list[dict[str, Any]] = []
    for n in [20_000] if args.quick else [20_000, 100_000]:
        run_size(n, rows)
    if not args.quick:  # where two processes pay off; backtesting.py would need ~4 minutes
        run_size(1_000_000, rows, competitor=False)
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])

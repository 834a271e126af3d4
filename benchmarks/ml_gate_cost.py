"""What the ML entry gate costs: one decision of the gate, and a backtest with and without it.

    .venv/bin/python benchmarks/ml_gate_cost.py            # 2,000 decisions, 20k-bar backtests
    .venv/bin/python benchmarks/ml_gate_cost.py --quick    # 500 decisions, 5k-bar backtests

The model is the `ml_tune` default (100 trees of depth 2) trained on a seeded synthetic market.
Lines: ``decision`` (ms per decision on a new bar: the features of the newest 200 bars and the
model's probability; a second engine asking about the same bar is served from the cache and
costs microseconds, as ``decision_cached``), ``backtest_ungated`` and ``backtest_gated`` (the
exact engine on RSI reversion, whose entries are retried on every bar while vetoed, the
gate's worst case), with the vetoes and both returns.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import emit, note, timed

from sigma.domain import Order, Side
from sigma.engine.engine import frame_to_data
from sigma.feeds.synthetic import generate_bars
from sigma.research.backtest import run_backtest
from sigma.research.ml_gate import ActiveModel, ActiveModels, MLGate
from sigma.research.ml_tune import TuneConfig, train
from sigma.strategies.builtin import RsiReversion

BENCH = "ml_gate_cost"
SEED = 21


def run(decisions: int, bars_n: int, rows: list[dict[str, Any]]) -> None:
    bars, _ = generate_bars(max(bars_n, decisions + 1000), seed=SEED)
    note(f"ml gate: training on {len(bars)} bars")
    model = train(bars, TuneConfig()).model
    gate = MLGate(ActiveModels({"SYN": ActiveModel(1, model)}))
    data = frame_to_data(bars)
    order = Order("SYN", Side.BUY, equity_fraction=Decimal(1))
    fresh: list[float] = []
    cached: list[float] = []
    for i in range(len(bars) - decisions, len(bars)):
        data.cursor.i = i
        for sink in (fresh, cached):
            start = time.perf_counter()
            gate.allows(order, data)
            sink.append(time.perf_counter() - start)
    for impl, times in (("decision", fresh), ("decision_cached", cached)):
        ms = sorted(1000 * t for t in times)
        emit(
            {
                "bench": BENCH,
                "impl": impl,
                "decisions": decisions,
                "p50_ms": round(statistics.median(ms), 3),
                "p99_ms": round(ms[int(0.99 * (len(ms) - 1))], 3),
                "value": round(statistics.median(ms), 3),
            },
            rows,
        )
    window = bars.iloc[-bars_n:]
    run_backtest(RsiReversion(), window.iloc[:500], symbol="SYN")  # compiled indicators loaded
    for impl, entry_gate in (("backtest_ungated", None), ("backtest_gated", gate)):
        (result, engine), seconds = timed(
            lambda g=entry_gate: run_backtest(RsiReversion(), window, symbol="SYN", entry_gate=g)
        )
        emit(
            {
                "bench": BENCH,
                "impl": impl,
                "bars": bars_n,
                "bars_per_s": round(bars_n / seconds, 1),
                "value": round(bars_n / seconds, 1),
                "trades": len(result.trades),
                "vetoes": engine.vetoes,
                "return_pct": round(result.stats["total_return_pct"], 2),
            },
            rows,
        )


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500 decisions, 5k bars")
    args, _ = parser.parse_known_args(argv)
    rows: list[dict[str, Any]] = []
    if args.quick:
        run(500, 5_000, rows)
    else:
        run(2_000, 20_000, rows)
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])

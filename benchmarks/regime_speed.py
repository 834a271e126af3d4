"""The adaptive layer: regime detection speed and accuracy, and what it costs a backtest.

    .venv/bin/python benchmarks/regime_speed.py            # 20k and 100k bars
    .venv/bin/python benchmarks/regime_speed.py --quick    # 20k bars only

Lines: ``detector`` (bars per second of `detect_frame`, its balanced accuracy against the
synthetic market's true regimes as ``value``), ``backtest_plain`` and ``backtest_adaptive``
(the exact engine on SMA crossover without and with the adaptive hook, built-in presets,
baseline shadow on), and the adaptive run's return next to the plain one.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import emit, note, timed

from sigma.feeds.synthetic import generate_bars
from sigma.regime.backtest import build_hook, run_adaptive_backtest
from sigma.regime.detector import balanced_accuracy, confusion_matrix, detect_frame
from sigma.regime.presets import BUILTIN_PRESETS
from sigma.research.backtest import run_backtest
from sigma.strategies.builtin.sma_cross import SmaCross

BENCH = "regime_speed"
SEED = 20


def run_size(n: int, rows: list[dict[str, Any]]) -> None:
    bars, labels = generate_bars(n, seed=SEED)
    note(f"regime: {n} bars")
    states, seconds = timed(lambda: detect_frame(bars, symbol="SYN"))
    warm = next(i for i, s in enumerate(states) if s.features is not None)
    matrix = confusion_matrix(labels[warm:], [s.regime.value for s in states[warm:]])
    row = {"bench": BENCH, "impl": "detector", "bars": n, "bars_per_s": round(n / seconds, 1)}
    emit({**row, "value": round(balanced_accuracy(matrix), 4)}, rows)

    (plain, _), seconds = timed(lambda: run_backtest(SmaCross(), bars, symbol="SYN"))
    emit(
        {
            "bench": BENCH,
            "impl": "backtest_plain",
            "bars": n,
            "bars_per_s": round(n / seconds, 1),
            "return_pct": round(plain.stats["total_return_pct"], 2),
        },
        rows,
    )
    hook = build_hook(BUILTIN_PRESETS)
    run, seconds = timed(lambda: run_adaptive_backtest(SmaCross(), bars, symbol="SYN", hook=hook))
    emit(
        {
            "bench": BENCH,
            "impl": "backtest_adaptive",
            "bars": n,
            "bars_per_s": round(n / seconds, 1),
            "return_pct": round(run.result.stats["total_return_pct"], 2),
            "parameter_changes": len(run.updates),
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
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])

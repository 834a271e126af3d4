"""Seconds to write a backtest's report: the HTML page (interactive chart, monthly returns,
trade table) and the trades/equity/monthly exports in CSV, JSON and Parquet, after one
SMA-crossover backtest on the same seeded minute bars as backtest_speed (100k, 1M).

    .venv/bin/python benchmarks/report_speed.py            # 100k and 1M bars
    .venv/bin/python benchmarks/report_speed.py --quick    # 100k only

Each result is one JSON line on stdout: `impl` html or exports, `value` seconds, the trade
count and the page's size in bytes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import emit, minute_bars, note, timed

from sigma.reports import export_result, render_backtest_html
from sigma.research.backtest import run_backtest
from sigma.strategies import load_strategies


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Time the report of one backtest per size; returns the JSON rows."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="100k bars only")
    args = parser.parse_args(argv)
    rows: list[dict[str, Any]] = []
    for n in (100_000,) if args.quick else (100_000, 1_000_000):
        note(f"report_speed: backtest on {n:,} bars")
        strategy = load_strategies(entry_points_group=False).create("sma_cross", fast=50, slow=200)
        result, _ = run_backtest(strategy, minute_bars(n), symbol="SYN")
        page, seconds = timed(lambda: render_backtest_html(result))  # noqa: B023
        base = {"bench": "report_speed", "bars": n, "trades": len(result.trades)}
        emit({**base, "impl": "html", "value": seconds, "bytes": len(page.encode())}, rows)
        with tempfile.TemporaryDirectory() as folder:
            _, seconds = timed(lambda: export_result(result, folder))  # noqa: B023
        emit({**base, "impl": "exports", "value": seconds}, rows)
    return rows


if __name__ == "__main__":
    main()

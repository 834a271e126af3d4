"""Bars per second of one SMA-crossover backtest: SIGMA's exact engine, SIGMA's fast path,
backtesting.py and backtrader, on the same seeded minute bars (10k, 100k, 1M); and the fast
path of every built-in strategy against its memory-bandwidth floor.

    .venv/bin/python benchmarks/backtest_speed.py            # 10k, 100k, 1M for everyone
    .venv/bin/python benchmarks/backtest_speed.py --quick    # 10k and 100k only

Each result is one JSON line on stdout; progress goes to stderr. Every implementation's trade
count (closed round trips; the last position stays open) and final equity are checked against
SIGMA's exact engine and reported in the line (`same_trades`, `same_equity`).

The fast path's lines also carry `floor_ratio`: its time (indicators included) over the time of
one numpy pass that reads the bars it needs (open and close) and writes its output (the equity
curve) once, the least any implementation must move through memory.
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

import numpy as np
import pandas as pd
from common import (
    backtesting_py_strategy,
    capitalised,
    emit,
    minute_bars,
    note,
    run_backtrader,
    timed,
)

from sigma.engine.fast import fast_backtest
from sigma.engine.fill_model import FillModel
from sigma.research.backtest import run_backtest
from sigma.strategies.base import Strategy
from sigma.strategies.builtin import BUILTIN_STRATEGIES
from sigma.strategies.builtin.sma_cross import SmaCross

BENCH = "backtest_speed"
FAST, SLOW = 10, 20
CASH = 1_000_000
COMMISSION = "0.00001"  # 0.1 bp: a million minute bars of whipsaw must not bankrupt the account


def _line(
    impl: str,
    bars: int,
    seconds: float,
    trades: int,
    equity: float,
    ref: tuple[int, float] | None,
    **extra: Any,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "bench": BENCH,
        "impl": impl,
        "bars": bars,
        "bars_per_s": round(bars / seconds, 1),
        "seconds": round(seconds, 4),
        "trades": trades,
        "final_equity": round(equity, 2),
    }
    if ref is not None:
        row["same_trades"] = trades == ref[0]
        row["same_equity"] = abs(round(equity, 2) - round(ref[1], 2)) < 0.011
    row.update(extra)
    return row


def floor_seconds(bars: pd.DataFrame, repeats: int = 5) -> float:
    """Best time of one pass reading open and close and writing one float per bar."""
    open_ = bars["open"].to_numpy(dtype=np.float64)
    close = bars["close"].to_numpy(dtype=np.float64)
    return min(timed(lambda: np.add(open_, close))[1] for _ in range(repeats))


def best_fast(
    strategy: type[Strategy], params: dict[str, Any], bars: pd.DataFrame, fm: FillModel
) -> tuple[Any, float]:
    """(result, best seconds of 3) of the fast path, after a warm-up call (JIT/cache)."""
    fast_backtest(strategy, params, bars.iloc[:1000], CASH, fm)
    best = float("inf")
    for _ in range(3):
        result, seconds = timed(lambda: fast_backtest(strategy, params, bars, CASH, fm))
        best = min(best, seconds)
    return result, best


def run_size(n: int, competitors: bool, exact: bool, rows: list[dict[str, Any]]) -> None:
    bars = minute_bars(n)
    fm = FillModel(commission_pct=Decimal(COMMISSION))
    per_impl: dict[str, float] = {}
    floor = floor_seconds(bars)

    result, best = best_fast(SmaCross, {"fast": FAST, "slow": SLOW}, bars, fm)
    fast_ref = (result.n_trades, result.final_equity)

    ref: tuple[int, float] | None = None
    if exact:
        note(f"[{n}] SIGMA exact engine ...")
        (res, _), seconds = timed(
            lambda: run_backtest(
                SmaCross(fast=FAST, slow=SLOW),
                bars,
                symbol="BENCH",
                initial_cash=Decimal(CASH),
                fill_model=fm,
            )
        )
        ref = (len(res.trades), float(res.final_equity))
        per_impl["sigma_exact"] = n / seconds
        emit(_line("sigma_exact", n, seconds, ref[0], ref[1], None), rows)
    per_impl["sigma_fast"] = n / best
    emit(
        _line(
            "sigma_fast",
            n,
            best,
            fast_ref[0],
            fast_ref[1],
            ref,
            repeats=3,
            floor_seconds=round(floor, 5),
            floor_ratio=round(best / floor, 1),
        ),
        rows,
    )
    ref = ref or fast_ref

    if competitors:
        from backtesting import Backtest

        note(f"[{n}] backtesting.py ...")
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
            stats, seconds = timed(bt.run)
        per_impl["backtesting_py"] = n / seconds
        emit(
            _line(
                "backtesting_py",
                n,
                seconds,
                int(stats["# Trades"]),
                float(stats["Equity Final [$]"]),
                ref,
            ),
            rows,
        )

        note(f"[{n}] backtrader ...")
        (trades, value), seconds = timed(
            lambda: run_backtrader(bars, FAST, SLOW, CASH, float(COMMISSION))
        )
        per_impl["backtrader"] = n / seconds
        emit(_line("backtrader", n, seconds, trades, value, ref), rows)

    for ours in ("sigma_fast", "sigma_exact"):
        for theirs in ("backtesting_py", "backtrader"):
            if ours in per_impl and theirs in per_impl:
                emit(
                    {
                        "bench": BENCH,
                        "ratio": f"{ours}/{theirs}",
                        "bars": n,
                        "value": round(per_impl[ours] / per_impl[theirs], 1),
                    },
                    rows,
                )


def run_builtins(n: int, rows: list[dict[str, Any]]) -> None:
    """The fast path of every built-in strategy (default parameters) and its floor ratio."""
    bars = minute_bars(n)
    fm = FillModel(commission_pct=Decimal(COMMISSION))
    floor = floor_seconds(bars)
    for cls in BUILTIN_STRATEGIES:
        result, best = best_fast(cls, {}, bars, fm)
        emit(
            {
                "bench": BENCH,
                "impl": f"sigma_fast_{cls.name}",
                "bars": n,
                "bars_per_s": round(n / best, 1),
                "seconds": round(best, 4),
                "trades": result.n_trades,
                "floor_seconds": round(floor, 5),
                "floor_ratio": round(best / floor, 1),
            },
            rows,
        )


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10k and 100k bars only")
    parser.add_argument(
        "--fast-only", action="store_true", help="only the fast path of every built-in"
    )
    args, _ = parser.parse_known_args(argv)
    sizes = [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000]
    rows: list[dict[str, Any]] = []
    if not args.fast_only:
        for n in sizes:
            run_size(n, competitors=True, exact=True, rows=rows)
    run_builtins(sizes[-1], rows)
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])

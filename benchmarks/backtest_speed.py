"""Bars per second of one SMA-crossover backtest: SIGMA's exact engine and fast path against
backtesting.py, vectorbt and backtrader (up to 100k) on the same seeded minute bars (10k, 100k,
1M); then `sigma backtest` end to end against a plain backtesting.py script on the same CSV
file (wall time, CPU time and peak memory, 100k and 1M bars); then the fast path of every built-in
strategy against its memory-bandwidth floor (`--fast-only`: that part alone).

    .venv/bin/python benchmarks/backtest_speed.py            # 10k, 100k, 1M
    .venv/bin/python benchmarks/backtest_speed.py --quick    # 10k and 100k only
    .venv/bin/python benchmarks/backtest_speed.py --end-to-end   # the CLI against the script

The competitors run in their own environment (`benchmarks/.venv-ref`, made on first use by
`_reference.py`), never in SIGMA's. Each result is one JSON line on stdout; progress goes to
stderr. Every competitor's closed round trips ([entry bar, exit bar, signed units]) and final
equity are checked against SIGMA's exact engine (`same_trades`, `same_equity`); a `ratio` line
gives each of SIGMA's speeds over each competitor's (> 1: SIGMA is faster), and for the end
to end run the competitor's wall time, CPU time and peak RSS over SIGMA's. Engine speeds are
each one's fastest of 10 runs at 10k bars, of 3 at 100k and of one at 1M (backtrader: one
run); the end-to-end figures each side's least of 3 alternating runs at 100k, of one at 1M.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pandas as pd
from _reference import HERE, bars_file, ref_python, run_job, scratch
from common import emit, minute_bars, note, timed

import sigma
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
COMPETITORS = ("backtesting_py", "vectorbt", "backtrader")
_JOB = {"backtesting_py": "backtesting", "vectorbt": "vectorbt", "backtrader": "backtrader"}
SIGMA_CLI = Path(sys.executable).with_name("sigma")
BACKTRADER_MAX_BARS = 100_000  # ~2k bars/s: a million bars would take the run ten minutes


def _line(
    impl: str, bars: int, seconds: float, trades: int, equity: float, **extra: Any
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
    row.update(extra)
    return row


FAST_REPEATS = 10
"""Runs of each built-in's fast path, and of the floor, whose best the floor ratios keep: a
few milliseconds each, at the mercy of anything else the machine does. (Against the other
engines, the fast path keeps its best of 3, as they keep theirs of at most 3.)"""


WARM_RUNS = 3
"""Untimed runs of the fast path on a frame before its timed ones (`fast_runs`)."""


def floor_seconds(bars: pd.DataFrame, repeats: int = FAST_REPEATS) -> float:
    """Best time of one pass reading open and close and writing one float per bar: the least
    any implementation must move through memory (the fast path's `floor_ratio` is over it)."""
    open_ = bars["open"].to_numpy(dtype=np.float64)
    close = bars["close"].to_numpy(dtype=np.float64)
    return min(timed(lambda: np.add(open_, close))[1] for _ in range(repeats))


def fast_runs(
    strategy: type[Strategy],
    params: dict[str, Any],
    bars: pd.DataFrame,
    fm: FillModel,
    repeats: int = FAST_REPEATS,
) -> tuple[Any, list[float]]:
    """(result, seconds of each of `repeats` runs) of the fast path, after a warm-up call
    (JIT, cache) and WARM_RUNS untimed runs on `bars`: the first runs on a new frame are
    slower (at 1M bars here ~8, 5, 4 ms, then ~3.5, with no page fault, a sleep between runs
    changing nothing: the caches settle on the arrays; the floor's runs settle in its first)."""
    fast_backtest(strategy, params, bars.iloc[:1000], CASH, fm)
    for _ in range(WARM_RUNS):
        fast_backtest(strategy, params, bars, CASH, fm)
    times = []
    for _ in range(repeats):
        result, seconds = timed(lambda: fast_backtest(strategy, params, bars, CASH, fm))
        times.append(seconds)
    return result, times


def run_builtins(n: int, rows: list[dict[str, Any]]) -> None:
    """The fast path of every built-in strategy (default parameters) and its floor ratio."""
    bars = minute_bars(n)
    fm = FillModel(commission_pct=Decimal(COMMISSION))
    floor = floor_seconds(bars)
    for cls in BUILTIN_STRATEGIES:
        result, times = fast_runs(cls, {}, bars, fm)
        best = min(times)
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
                "load_1m": round(os.getloadavg()[0], 2),  # other work on the machine
            },
            rows,
        )


def _ratios(n: int, rates: dict[str, float], rows: list[dict[str, Any]]) -> None:
    for ours in ("sigma_exact", "sigma_fast"):
        for theirs in COMPETITORS:
            if ours in rates and theirs in rates:
                emit(
                    {
                        "bench": BENCH,
                        "ratio": f"{ours}/{theirs}",
                        "bars": n,
                        "value": round(rates[ours] / rates[theirs], 2),
                    },
                    rows,
                )


def run_size(n: int, folder: Path, rows: list[dict[str, Any]]) -> None:
    """Engine speed at `n` bars, everyone on the same bars and averages."""
    bars = minute_bars(n)
    fm = FillModel(commission_pct=Decimal(COMMISSION))
    rates: dict[str, float] = {}

    # Everyone's fastest of `repeats` runs: a short run is at the mercy of a busy machine.
    repeats = 10 if n <= 10_000 else 3 if n <= 100_000 else 1
    note(f"[{n}] SIGMA exact engine ...")
    seconds = float("inf")
    for _ in range(repeats):
        (res, _), once = timed(
            lambda: run_backtest(
                SmaCross(fast=FAST, slow=SLOW),
                bars,
                symbol="BENCH",
                initial_cash=Decimal(CASH),
                fill_model=fm,
            )
        )
        seconds = min(seconds, once)
    ours = [[t.entry_bar, t.exit_bar, int(t.qty)] for t in res.trades]
    equity = float(res.final_equity)
    rates["sigma_exact"] = n / seconds
    emit(_line("sigma_exact", n, seconds, len(ours), equity, repeats=repeats), rows)
    del res

    # Against the other engines, the best of the first 3 runs (as they keep theirs); against
    # the floor, the best of FAST_REPEATS, as the floor's.
    result, times = fast_runs(SmaCross, {"fast": FAST, "slow": SLOW}, bars, fm)
    best = min(times[:3])
    floor = floor_seconds(bars)
    rates["sigma_fast"] = n / best
    row = _line("sigma_fast", n, best, result.n_trades, result.final_equity, repeats=3)
    row["same_trades"] = result.n_trades == len(ours)
    row["floor_seconds"] = round(floor, 5)
    row["floor_ratio"] = round(min(times) / floor, 1)
    row["load_1m"] = round(os.getloadavg()[0], 2)
    emit(row, rows)

    path = bars_file(bars, (FAST, SLOW), folder)
    for impl in COMPETITORS:
        if impl == "backtrader" and n > BACKTRADER_MAX_BARS:
            continue
        note(f"[{n}] {impl} ...")
        times = 1 if impl == "backtrader" else repeats  # backtrader: minutes per million
        answer = run_job(
            _JOB[impl],
            path,
            cash=CASH,
            commission=float(COMMISSION),
            fast=FAST,
            slow=SLOW,
            repeats=times,
        )
        theirs = answer["trades"]
        rates[impl] = n / answer["seconds"]
        row = _line(impl, n, answer["seconds"], len(theirs), answer["final_equity"], repeats=times)
        row["same_trades"] = theirs == ours
        row["same_equity"] = abs(round(answer["final_equity"], 2) - round(equity, 2)) < 0.011
        emit(row, rows)
    _ratios(n, rates, rows)


_RSS = re.compile(r"Maximum resident set size \(kbytes\): (\d+)")
_CPU = re.compile(r"(?:User|System) time \(seconds\): ([\d.]+)")


@dataclass(frozen=True)
class Measured:
    """One run of a command under /usr/bin/time -v."""

    seconds: float  # wall
    cpu_seconds: float  # user + system: less at the mercy of a busy machine than the wall
    peak_mb: float  # maximum RSS
    stdout: str


def _measured(command: list[str], cwd: Path, env: dict[str, str]) -> Measured:
    """Wall time, CPU time, peak RSS and stdout of `command` run under /usr/bin/time -v."""
    start = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/time", "-v", *command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} failed: {done.stderr.strip()[-1500:]}")
    match = _RSS.search(done.stderr)
    assert match is not None, "no peak RSS in /usr/bin/time's report"
    cpu = sum(float(found) for found in _CPU.findall(done.stderr))
    return Measured(seconds, cpu, int(match.group(1)) / 1024, done.stdout)


def _best(runs: list[Measured]) -> Measured:
    """Each figure's least over `runs` (the same rule for both sides), the last stdout."""
    return Measured(
        min(r.seconds for r in runs),
        min(r.cpu_seconds for r in runs),
        min(r.peak_mb for r in runs),
        runs[-1].stdout,
    )


def end_to_end(n: int, folder: Path, rows: list[dict[str, Any]]) -> None:
    """`sigma backtest` with its defaults (report, summary.json, stored run) against a
    plain backtesting.py script, both reading the same CSV file in a fresh process."""
    csv = folder / f"bars_{n}.csv"
    minute_bars(n).to_csv(csv)
    var = folder / "var"
    env = {**os.environ, "SIGMA_VAR_DIR": str(var), "TQDM_DISABLE": "1"}
    env.pop("SIGMA_DATABASE_URL", None)  # the run is stored in the scratch var's SQLite file
    ours_cmd = [
        str(SIGMA_CLI),
        "backtest",
        "--data",
        str(csv),
        "--strategy",
        "sma_cross",
        "--param",
        f"fast={FAST}",
        "--param",
        f"slow={SLOW}",
        "--cash",
        str(CASH),
        "--commission",
        COMMISSION,
        "--out",
        str(folder / f"report_{n}"),
    ]
    theirs_cmd = [
        str(ref_python()),
        str(HERE / "_ref_script.py"),
        str(csv),
        str(CASH),
        COMMISSION,
        str(FAST),
        str(SLOW),
    ]
    # The database is made once, as on any machine that has run SIGMA before: not timed. So is
    # SIGMA's bytecode (pip compiled the reference's packages when it installed them): with
    # PYTHONDONTWRITEBYTECODE set, every timed run would compile ~100 modules from source.
    compileall.compile_dir(Path(sigma.__file__).parent, quiet=1)
    subprocess.run(
        [str(SIGMA_CLI), "migrate"], cwd=folder, env=env, capture_output=True, check=True
    )
    # The two sides alternate, and each keeps its best of `repeats` (as the engine figures
    # above): one run of each on a busy machine moved the ratio by tens of percent.
    repeats = 3 if n <= 100_000 else 1
    ours_runs, theirs_runs = [], []
    for _ in range(repeats):
        note(f"[{n}] sigma backtest end to end ...")
        ours_runs.append(_measured(ours_cmd, folder, env))
        note(f"[{n}] backtesting.py script end to end ...")
        theirs_runs.append(_measured(theirs_cmd, folder, env))
    ours_best, theirs_best = _best(ours_runs), _best(theirs_runs)
    summary = json.loads((folder / f"report_{n}" / "summary.json").read_text())
    theirs = json.loads(theirs_best.stdout.strip().splitlines()[-1])
    emit(
        {
            "bench": BENCH,
            "impl": "sigma_backtest_cli",
            "bars": n,
            "seconds": round(ours_best.seconds, 3),
            "cpu_seconds": round(ours_best.cpu_seconds, 3),
            "peak_rss_mb": round(ours_best.peak_mb, 1),
            "repeats": repeats,
            "trades": summary["trades"],
            "final_equity": round(float(summary["final_equity"]), 2),
        },
        rows,
    )
    emit(
        {
            "bench": BENCH,
            "impl": "backtesting_py_script",
            "bars": n,
            "seconds": round(theirs_best.seconds, 3),
            "cpu_seconds": round(theirs_best.cpu_seconds, 3),
            "peak_rss_mb": round(theirs_best.peak_mb, 1),
            "repeats": repeats,
            "trades": theirs["trades"],
            "final_equity": round(theirs["final_equity"], 2),
            "same_trades": theirs["trades"] == summary["trades"],
            "same_equity": abs(theirs["final_equity"] - float(summary["final_equity"])) < 0.011,
        },
        rows,
    )
    for what, value in (
        ("wall", theirs_best.seconds / ours_best.seconds),
        ("cpu", theirs_best.cpu_seconds / ours_best.cpu_seconds),
        ("peak_rss", theirs_best.peak_mb / ours_best.peak_mb),
    ):
        emit(
            {
                "bench": BENCH,
                "ratio": f"backtesting_py_script/sigma_backtest_cli:{what}",
                "bars": n,
                "value": round(value, 2),
            },
            rows,
        )


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10k and 100k bars only")
    parser.add_argument(
        "--fast-only", action="store_true", help="only the fast path of every built-in"
    )
    parser.add_argument(
        "--end-to-end",
        action="store_true",
        help="only `sigma backtest` against the backtesting.py script (100k and 1M bars)",
    )
    args, _ = parser.parse_known_args(argv)
    sizes = [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000]
    rows: list[dict[str, Any]] = []
    if args.end_to_end:
        with scratch() as tmp:
            for n in sizes[1:]:
                end_to_end(n, Path(tmp), rows)
        return rows
    if not args.fast_only:
        with scratch() as tmp:
            folder = Path(tmp)
            for n in sizes:
                run_size(n, folder, rows)
            for n in sizes[1:]:
                end_to_end(n, folder, rows)
    run_builtins(sizes[-1], rows)
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])

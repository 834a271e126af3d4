"""Parameter sweeps: every combination of a grid through the compiled fast path, on every core.

Any strategy with a vectorised twin (`Strategy.targets`: every built-in) sweeps; a built-in is
named, any other strategy is passed as its class.

    table = sweep("sma_cross", bars, {"fast": range(5, 50, 5), "slow": range(10, 100, 10)},
                  fill_model=FillModel(commission_pct=Decimal("0.001")))

Invalid combinations (those the strategy's `validate` rejects, e.g. fast >= slow) are skipped.
The number of worker processes follows the work (`sweep_workers`): one for a small sweep,
where starting a pool costs more than it saves, up to one per core for a large one. With more
than one, the bar arrays go to each worker once, through the pool's initializer (inherited,
not copied, by forked workers, which also inherit the compiled code loaded before the fork),
and the combinations travel in small chunks; the table is the same for any number of workers.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing.context
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numba
import numpy as np
import pandas as pd

from sigma.engine.engine import Cancelled
from sigma.engine.fast import check_fill_model, fast_params, run_twin
from sigma.engine.fill_model import FillModel
from sigma.engine.history_check import check_history
from sigma.strategies.base import Strategy
from sigma.strategies.builtin import BUILTIN_STRATEGIES
from sigma.strategies.series import COLUMNS, FloatArray
from sigma.strategies.vectorised import IndicatorCache, Terms

ProgressFn = Callable[[int, int], None]

DEFAULT_GRIDS: dict[str, dict[str, Sequence[Any]]] = {
    "sma_cross": {"fast": range(5, 50, 5), "slow": range(10, 100, 10)},
    "rsi_reversion": {"period": range(6, 30, 4), "oversold": range(20, 45, 5)},
    "bollinger_breakout": {"period": range(10, 60, 10), "k": [1.5, 2.0, 2.5, 3.0]},
    "donchian_trend": {"entry": range(10, 70, 10), "exit": range(5, 35, 5)},
}
"""The grid `sweep` uses when none is given, by built-in strategy."""

_BUILTIN = {cls.name: cls for cls in BUILTIN_STRATEGIES}

METRICS = ("final_equity", "return_pct", "n_trades", "sharpe", "max_drawdown_pct")

_SECONDS_PER_YEAR = 365.25 * 86_400

WORK_PER_WORKER = 20_000_000
"""Bars × combinations worth a worker process of their own. Measured on SMA crosses (2 cores):
one process sweeps 20-45M bar-combinations a second and a pool of two took 0.05-0.1 s more to
start and feed, so the 61-combination grid on 20k or 100k bars (under 0.15 s of work) was
slower on two processes than on one. Above this much work (0.5-1 s) a second process pays for
itself, where a second core is free."""


def sweep_workers(combos: int, bars: int, workers: int | None = None) -> int:
    """The processes a sweep of `combos` combinations over `bars` bars runs on: `workers` when
    given, else one per WORK_PER_WORKER of work, at least one and at most one per core; never
    more than there are combinations."""
    if workers is None:
        workers = min(os.cpu_count() or 1, max(1, combos * bars // WORK_PER_WORKER))
    elif workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    return max(1, min(workers, combos))


def strategy_class(strategy: str | type[Strategy]) -> type[Strategy]:
    """The class of a built-in named `strategy` (or `strategy` itself when it is a class);
    ValueError for another name."""
    if not isinstance(strategy, str):
        return strategy
    try:
        return _BUILTIN[strategy]
    except KeyError:
        known = ", ".join(sorted(_BUILTIN))
        raise ValueError(
            f"unknown built-in strategy {strategy!r} (pass a plugin's class); known: {known}"
        ) from None


def grid_combinations(
    strategy: str | type[Strategy], grid: Mapping[str, Iterable[Any]]
) -> list[dict[str, Any]]:
    """Every valid combination of `grid`, in grid order (the last key varies fastest)."""
    cls = strategy_class(strategy)
    keys = list(grid)
    combos: list[dict[str, Any]] = []
    for values in itertools.product(*(list(grid[k]) for k in keys)):
        params = dict(zip(keys, values, strict=True))
        try:
            fast_params(cls, params)
        except ValueError as exc:
            if "no fast path" in str(exc):
                raise
            continue
        combos.append(params)
    return combos


def bars_per_year(index: pd.DatetimeIndex) -> float:
    """Bars observed per calendar year (as the engine's statistics annualise)."""
    if len(index) < 2:
        return math.nan
    years = (index[-1] - index[0]).total_seconds() / _SECONDS_PER_YEAR
    return (len(index) - 1) / years if years > 0 else math.nan


@numba.njit(cache=True)
def _curve_stats(equity: FloatArray) -> tuple[float, float, int, float]:  # pragma: no cover
    # Per-bar simple returns (non-finite ones skipped): mean, sample std, count; and the
    # deepest fall below the running peak. Compiled: numpy's version costs more than the
    # simulation itself on long curves.
    count = 0
    total = 0.0
    for i in range(1, len(equity)):
        r = (equity[i] - equity[i - 1]) / equity[i - 1]
        if np.isfinite(r):
            count += 1
            total += r
    mean = total / count if count else 0.0
    sq = 0.0
    for i in range(1, len(equity)):
        r = (equity[i] - equity[i - 1]) / equity[i - 1]
        if np.isfinite(r):
            sq += (r - mean) * (r - mean)
    std = np.sqrt(sq / (count - 1)) if count > 1 else 0.0
    peak = -np.inf
    worst = 0.0
    for x in equity:
        peak = max(peak, x)
        if peak > 0:
            worst = min(worst, x / peak - 1.0)
    return mean, std, count, worst


def curve_metrics(equity: FloatArray, initial_cash: float, per_year: float) -> dict[str, float]:
    """Return %, annualised per-bar Sharpe (zero risk-free rate) and max drawdown % of a curve."""
    final = float(equity[-1])
    mean, std, count, worst = _curve_stats(np.ascontiguousarray(equity, dtype=np.float64))
    sharpe = math.nan
    if count > 1 and std > 0 and math.isfinite(per_year):
        sharpe = mean / std * math.sqrt(per_year)
    return {
        "final_equity": final,
        "return_pct": 100.0 * (final / initial_cash - 1.0),
        "sharpe": sharpe,
        "max_drawdown_pct": 100.0 * worst,
    }


@dataclass(slots=True)
class _Runner:
    """Everything one process needs to evaluate combinations; built once per worker."""

    strategy: type[Strategy]
    columns: dict[str, FloatArray]
    terms: Terms
    per_year: float
    cache: IndicatorCache = field(default_factory=dict)

    def run(self, params: Mapping[str, Any]) -> dict[str, Any]:
        full = fast_params(self.strategy, params)
        result = run_twin(self.strategy, self.columns, full, self.terms, self.cache)
        row = dict(params)
        row.update(curve_metrics(result.equity, self.terms.initial_cash, self.per_year))
        row["n_trades"] = result.n_trades
        return row


_WORKER: _Runner | None = None


def _init_worker(*args: Any) -> None:
    global _WORKER
    _WORKER = _Runner(*args)


def _run_chunk(chunk: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    assert _WORKER is not None, "worker not initialised"
    return [_WORKER.run(params) for params in chunk]


def _chunks(items: list[dict[str, Any]], n: int) -> list[list[dict[str, Any]]]:
    size = max(1, math.ceil(len(items) / n))
    return [items[i : i + size] for i in range(0, len(items), size)]


CHUNKS_PER_WORKER = 16
"""Chunks of combinations per worker. Combinations differ in cost (a run whose sizing meets
a near tie replays its fills in Decimal: tens of milliseconds at a million bars), and the
sweep ends when the slowest worker does: small chunks keep the workers finishing together,
at ~0.1 ms of inter-process traffic per chunk."""

_PREFIX_BARS = 2_000


def _load_before_fork(args: tuple[Any, ...], params: Mapping[str, Any]) -> None:
    """Run `params` on the first bars in this process, so that its compiled code is loaded
    once here and inherited by forked workers, rather than loaded again in each of them."""
    cls, columns, *rest = args
    _Runner(cls, {name: values[:_PREFIX_BARS] for name, values in columns.items()}, *rest).run(
        params
    )


def sweep(
    strategy: str | type[Strategy],
    bars: pd.DataFrame,
    grid: Mapping[str, Iterable[Any]] | None = None,
    *,
    initial_cash: Decimal | float = Decimal(10_000),
    fill_model: FillModel | None = None,
    workers: int | None = None,
    sort_by: str = "sharpe",
    ascending: bool = False,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    mp_context: multiprocessing.context.BaseContext | None = None,
) -> pd.DataFrame:
    """Backtest every valid combination of `grid` with the fast path; one row per
    combination (the grid's parameters, then final_equity, return_pct, n_trades, sharpe,
    max_drawdown_pct), sorted by `sort_by` (best first unless `ascending`; NaN last).

    `workers` sets the number of processes; None lets the work choose (`sweep_workers`).

    `progress(done, total)` is called as combinations finish and `cancel` stops the sweep
    (raising `Cancelled`); `mp_context` picks the worker start method (the platform default
    otherwise; "spawn" is the safe choice inside a threaded server)."""
    cls = strategy_class(strategy)
    if grid is None:
        if cls.name not in DEFAULT_GRIDS:
            fast_params(cls, {})  # raises for strategies without a fast path
            raise ValueError(f"no default grid for {cls.name!r}; pass one")
        grid = DEFAULT_GRIDS[cls.name]
    if bars.empty:
        raise ValueError(f"no bars to sweep {cls.name} on")
    check_history(bars)
    combos = grid_combinations(cls, grid)
    columns = [*grid, *METRICS]
    if sort_by not in columns:
        raise ValueError(f"cannot sort by {sort_by!r}; columns: {', '.join(columns)}")
    fm = fill_model or FillModel()
    check_fill_model(fm)
    args = (
        cls,
        {name: bars[name].to_numpy(dtype=np.float64) for name in COLUMNS if name in bars},
        Terms.of(initial_cash, fm.commission_pct, fm.commission_fixed, fm.lot_size),
        bars_per_year(pd.DatetimeIndex(bars.index)),
    )
    rows: list[dict[str, Any]] = []
    total = len(combos)
    workers = sweep_workers(total, len(bars), workers)

    def _advance() -> None:
        if cancel is not None and cancel.is_set():
            raise Cancelled(f"sweep cancelled after {len(rows)} of {total} combinations")
        if progress is not None:
            progress(len(rows), total)

    _advance()
    if workers == 1:
        runner = _Runner(*args)
        for params in combos:
            rows.append(runner.run(params))
            _advance()
    else:
        context = mp_context or multiprocessing.get_context()
        if context.get_start_method() == "fork":
            _load_before_fork(args, combos[0])
        with ProcessPoolExecutor(
            max_workers=workers,
            mp_context=context,
            initializer=_init_worker,
            initargs=args,
        ) as pool:
            futures: list[Future[list[dict[str, Any]]]] = [
                pool.submit(_run_chunk, chunk)
                for chunk in _chunks(combos, CHUNKS_PER_WORKER * workers)
            ]
            try:
                for future in futures:
                    rows.extend(future.result())
                    _advance()
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    table = pd.DataFrame(rows, columns=columns)
    table["n_trades"] = table["n_trades"].astype(np.int64)
    return table.sort_values(
        sort_by, ascending=ascending, kind="mergesort", na_position="last"
    ).reset_index(drop=True)


__all__ = [
    "DEFAULT_GRIDS",
    "METRICS",
    "bars_per_year",
    "curve_metrics",
    "grid_combinations",
    "strategy_class",
    "sweep",
    "sweep_workers",
]

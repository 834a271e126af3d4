"""Parameter sweeps through the fast path: same table on one or two processes, best row
reproducible with a direct fast backtest, cancel and progress."""

from __future__ import annotations

import threading
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from sigma.engine.engine import Cancelled
from sigma.engine.fast import fast_backtest
from sigma.engine.fill_model import FillModel
from sigma.research import sweep as sweep_module
from sigma.research.sweep import (
    DEFAULT_GRIDS,
    WORK_PER_WORKER,
    bars_per_year,
    curve_metrics,
    grid_combinations,
    sweep,
    sweep_workers,
)
from sigma.strategies import Param, Strategy
from sigma.strategies.builtin import BUILTIN_STRATEGIES, SmaCross

GRID = {"fast": [5, 10, 20], "slow": [10, 20, 40]}


class Plain(Strategy):
    """A strategy without a vectorised twin."""

    name = "plain"
    x = Param(1, low=0, high=5)


class Twin(SmaCross):
    """A plugin with a twin (inherited) and no default grid."""

    name = "twin_plugin"


FM = FillModel(commission_pct=Decimal("0.001"))


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    rng = np.random.default_rng(42)
    n = 5_000
    close = np.round(100 * np.exp(np.cumsum(rng.normal(0, 0.002, n))), 2)
    open_ = np.round(np.concatenate(([100.0], close[:-1])) * (1 + rng.normal(0, 5e-4, n)), 2)
    idx = pd.date_range("2024-01-01", periods=n, freq="1min", tz="UTC", name="ts")
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close),
            "low": np.minimum(open_, close),
            "close": close,
            "volume": 1.0,
        },
        index=idx,
    )


def test_grid_skips_invalid_combinations() -> None:
    combos = grid_combinations("sma_cross", GRID)
    assert combos == [
        {"fast": 5, "slow": 10},
        {"fast": 5, "slow": 20},
        {"fast": 5, "slow": 40},
        {"fast": 10, "slow": 20},
        {"fast": 10, "slow": 40},
        {"fast": 20, "slow": 40},
    ]
    assert len(grid_combinations("sma_cross", DEFAULT_GRIDS["sma_cross"])) == 61


def test_one_and_two_workers_give_the_same_table(bars: pd.DataFrame) -> None:
    seen: list[tuple[int, int]] = []
    one = sweep(
        "sma_cross",
        bars,
        GRID,
        fill_model=FM,
        workers=1,
        progress=lambda done, total: seen.append((done, total)),
    )
    two = sweep("sma_cross", bars, GRID, fill_model=FM, workers=2)
    pd.testing.assert_frame_equal(one, two)
    assert list(one.columns) == [
        "fast",
        "slow",
        "final_equity",
        "return_pct",
        "n_trades",
        "sharpe",
        "max_drawdown_pct",
    ]
    assert len(one) == 6
    assert one["sharpe"].is_monotonic_decreasing
    assert seen[0] == (0, 6) and seen[-1] == (6, 6)

    best = one.iloc[0]
    direct = fast_backtest(
        SmaCross,
        {"fast": int(best["fast"]), "slow": int(best["slow"])},
        bars,
        Decimal(10_000),
        FM,
    )
    assert direct.final_equity == best["final_equity"]
    assert direct.n_trades == best["n_trades"]
    assert best["return_pct"] == pytest.approx(100 * (direct.final_equity / 10_000 - 1))


def test_the_work_chooses_the_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sweep_module.os, "cpu_count", lambda: 4)
    assert sweep_workers(61, 20_000) == 1  # pool start-up would cost more than the work
    assert sweep_workers(61, 2 * WORK_PER_WORKER // 61 + 1) == 2
    assert sweep_workers(61, 1_000_000_000) == 4  # never more than the cores
    assert sweep_workers(3, 1_000_000_000) == 3  # nor than the combinations
    assert sweep_workers(61, 100, workers=2) == 2  # asked for: as asked
    assert sweep_workers(0, 100, workers=2) == 1
    monkeypatch.setattr(sweep_module.os, "cpu_count", lambda: None)
    assert sweep_workers(61, 1_000_000_000) == 1
    with pytest.raises(ValueError, match="workers"):
        sweep_workers(61, 100, workers=0)


def test_sort_by_other_metric_and_default_grid(bars: pd.DataFrame) -> None:
    table = sweep("sma_cross", bars.iloc[:1_000], fill_model=FM, sort_by="final_equity")
    assert len(table) == 61
    assert table["final_equity"].is_monotonic_decreasing
    low = sweep("sma_cross", bars.iloc[:1_000], GRID, sort_by="n_trades", ascending=True)
    assert low["n_trades"].is_monotonic_increasing


def test_curve_metrics() -> None:
    eq = np.array([100.0, 110.0, 99.0, 121.0])
    m = curve_metrics(eq, 100.0, 252.0)
    r = np.diff(eq) / eq[:-1]
    assert m["final_equity"] == 121.0
    assert m["return_pct"] == pytest.approx(21.0)
    assert m["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * np.sqrt(252))
    assert m["max_drawdown_pct"] == pytest.approx(-10.0)
    assert np.isnan(curve_metrics(np.full(5, 100.0), 100.0, 252.0)["sharpe"])
    idx = pd.date_range("2024-01-01", periods=3, freq="1D", tz="UTC")
    assert bars_per_year(idx) == pytest.approx(365.25)
    assert np.isnan(bars_per_year(idx[:1]))


def test_errors_and_cancel(bars: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="no fast path"):
        sweep(Plain, bars, {"x": [1, 2]})
    with pytest.raises(ValueError, match="no fast path"):
        sweep(Plain, bars)
    with pytest.raises(ValueError, match="no default grid"):
        sweep(Twin, bars)
    with pytest.raises(ValueError, match="unknown built-in strategy 'nope'"):
        sweep("nope", bars)
    with pytest.raises(ValueError, match="workers"):
        sweep("sma_cross", bars, GRID, workers=0)
    with pytest.raises(ValueError, match="cannot sort"):
        sweep("sma_cross", bars, GRID, sort_by="nope")
    with pytest.raises(ValueError, match="no bars"):
        sweep("sma_cross", bars.iloc[:0], GRID)
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        sweep("sma_cross", bars, GRID, cancel=stop)
    with pytest.raises(Cancelled):
        sweep("sma_cross", bars, GRID, cancel=stop, workers=2)


def test_spawned_workers_receive_the_bars_once(bars: pd.DataFrame) -> None:
    """With the "spawn" start method the initializer's arrays are pickled to each worker."""
    import multiprocessing

    grid = {"fast": [5, 10], "slow": [20]}
    one = sweep("sma_cross", bars, grid, fill_model=FM)
    spawned = sweep(
        "sma_cross",
        bars,
        grid,
        fill_model=FM,
        workers=2,
        mp_context=multiprocessing.get_context("spawn"),
    )
    pd.testing.assert_frame_equal(one, spawned)


@pytest.mark.parametrize("cls", BUILTIN_STRATEGIES, ids=lambda c: c.name)
def test_every_builtin_sweeps_its_default_grid(cls: type[Strategy], bars: pd.DataFrame) -> None:
    table = sweep(cls.name, bars.iloc[:2_000], fill_model=FM, sort_by="final_equity")
    assert len(table) == len(grid_combinations(cls, DEFAULT_GRIDS[cls.name])) > 10
    params = {k: table[k].iloc[0].item() for k in DEFAULT_GRIDS[cls.name]}
    direct = fast_backtest(cls, params, bars.iloc[:2_000], Decimal(10_000), FM)
    assert table["final_equity"].iloc[0] == direct.final_equity

"""Issue 24 item 6 in the optimiser itself: plugin strategies travel to spawned workers, a
worker that cannot start fails the search at once, a cancelled search hands back its best so
far, and each trial records its score or why it has none."""

from __future__ import annotations

import pickle
import sys
import threading
import types
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from sigma.engine.engine import Cancelled
from sigma.engine.fill_model import FillModel
from sigma.feeds.synthetic import generate_bars
from sigma.research.optimize import OptimizationCancelled, optimize
from sigma.research.space import grid_values, search_space
from sigma.research.trials import TrialObjective
from sigma.research.walk_forward import walk_forward
from sigma.research.workers import WorkerFailed
from sigma.strategies.builtin import SmaCross
from sigma.strategies.registry import PluginRef, load_strategies, portable, resolve
from tests.cli.plugin_strategies import write_plugin


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    frame, _ = generate_bars(500, seed=3, freq="1h")
    return frame


def test_a_plugin_strategy_is_sent_as_its_file(tmp_path: Path, bars: pd.DataFrame) -> None:
    cls = load_strategies([write_plugin(tmp_path)], entry_points_group=False).get("slow_cross")
    ref = portable(cls)
    assert ref == PluginRef(str(tmp_path / "slow_cross.py"), "SlowCross")
    assert portable(SmaCross) is SmaCross and resolve(SmaCross) is SmaCross
    objective = TrialObjective(
        cls, search_space(cls), bars, 0, Decimal(10_000), FillModel(), 3, "sortino"
    )
    data = pickle.dumps(objective)
    # A spawned process has never loaded the plugin: the file is loaded again.
    del sys.modules[cls.__module__]
    copy = pickle.loads(data)
    assert copy.strategy is not cls and copy.strategy.name == "slow_cross"
    assert copy.objective == "sortino" and copy.space == objective.space
    assert resolve(ref) is copy.strategy  # loaded once


def test_a_worker_that_cannot_start_fails_the_search_at_once(
    bars: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A strategy whose module no fresh process can import: the spawned worker dies unpickling.
    ghost = types.ModuleType("sigma_ghost_strategies")
    cls = type("Ghost", (SmaCross,), {"__module__": ghost.__name__, "name": "ghost"})
    ghost.Ghost = cls  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, ghost.__name__, ghost)
    with pytest.raises(WorkerFailed, match="an optimisation worker ended with status 1"):
        optimize(cls, bars, n_trials=4, workers=2)


def test_a_cancelled_search_hands_back_its_best_so_far(bars: pd.DataFrame) -> None:
    cancel = threading.Event()

    def stop_at_three(done: int, _total: int) -> None:
        if done >= 3:
            cancel.set()

    with pytest.raises(OptimizationCancelled) as caught:
        optimize(SmaCross, bars, n_trials=50, progress=stop_at_three, cancel=cancel)
    best = caught.value.best
    assert isinstance(caught.value, Cancelled) and best.n_trials == 3
    assert best.score == max(score for _, score in best.trials)


def test_walk_forward_reports_each_fits_trials_and_cancels_with_its_name(
    bars: pd.DataFrame,
) -> None:
    seen: list[tuple[str, int, int]] = []
    wf = walk_forward(
        SmaCross, bars, folds=2, n_trials=3, min_trades=2, objective="return",
        trial_progress=lambda fit, done, total: seen.append((fit, done, total)),
    )  # fmt: skip
    assert [s for s in seen if s[1] == 3] == [
        ("fold 1/2", 3, 3),
        ("fold 2/2", 3, 3),
        ("final", 3, 3),
    ]
    assert [len(f.search.records) for f in wf.folds] == [3, 3] and len(wf.final.records) == 3
    for fold in wf.folds:
        # The return objective scores the test window by its return.
        assert fold.test.excluded is not None or fold.test.score == fold.test.return_pct
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(OptimizationCancelled, match=r"after 1 trials \(walk-forward fold 1/2\)"):
        walk_forward(SmaCross, bars, folds=2, n_trials=3, cancel=cancel)


def test_trial_records_say_why_a_trial_has_no_score(bars: pd.DataFrame) -> None:
    result = optimize(
        SmaCross, bars, method="grid", n_trials=100, grid_points=2, min_trades=5,
        bounds={"fast": (2.0, 40.0), "slow": (3.0, 30.0)},
    )  # fmt: skip
    records = result.records
    refused = [r for r in records if r.excluded and r.excluded.startswith("refused: ")]
    assert refused and all(r.score is None for r in refused)
    assert all(r.params["fast"] >= r.params["slow"] for r in refused)
    scored = [r for r in records if r.score is not None]
    assert scored and all(r.n_trades is not None and r.n_trades >= 5 for r in scored)
    assert all(set(r.metrics) >= {"sharpe", "sortino", "calmar", "return", "sqn"} for r in scored)
    assert result.best_score == max(r.score for r in scored)
    assert grid_values(SmaCross, search_space(SmaCross, {"fast": (2.0, 40.0)}), 2)["fast"] == [
        2, 10, 40,
    ]  # fmt: skip

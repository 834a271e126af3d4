"""OptimizationModule: search space from Param bounds, optimiser beats defaults within bounds,
grid search, walk-forward without look-ahead, shared studies (resume, two processes on one
PostgreSQL study), progress and cancellation."""

from __future__ import annotations

import os
import re
import socket
import tempfile
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest

from sigma.engine.engine import Cancelled
from sigma.engine.fast import fast_path_ok
from sigma.engine.fill_model import FillModel, FillTiming
from sigma.engine.margin import AccountType, MarginModel
from sigma.feeds.synthetic import generate_bars
from sigma.research.backtest import run_backtest
from sigma.research.evaluation import evaluate
from sigma.research.objectives import NO_SCORE
from sigma.research.optimize import optimize
from sigma.research.space import Dimension, default_params, first_valid, search_space
from sigma.research.walk_forward import best_of, walk_forward, walk_forward_splits
from sigma.strategies.base import Strategy
from sigma.strategies.builtin import DonchianTrend, RsiReversion, SmaCross
from sigma.strategies.params import Param


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    frame, _ = generate_bars(900, seed=3, freq="1h")
    return frame


def test_search_space_follows_declared_bounds_and_narrowing() -> None:
    space = search_space(SmaCross)
    assert space["fast"] == Dimension("fast", "int", 2, 500, 1)
    assert space["slow"].high == 2000
    assert space["allow_short"].kind == "bool"
    narrowed = search_space(SmaCross, {"fast": (5, 20)}, max_int=100)
    assert (narrowed["fast"].low, narrowed["fast"].high) == (5, 20)
    assert narrowed["slow"].high == 100
    rsi = search_space(RsiReversion)
    assert rsi["oversold"].kind == "float"
    with pytest.raises(ValueError, match="within"):
        search_space(SmaCross, {"fast": (1, 20)})
    with pytest.raises(ValueError, match="no parameter"):
        search_space(SmaCross, {"nope": (1, 2)})


def test_parameters_without_bounds_keep_their_default() -> None:
    class Loose(Strategy):
        name = "loose"
        window = Param(10)
        label = Param("x")

    assert search_space(Loose) == {}


def test_grid_points_include_the_default() -> None:
    dim = Dimension("fast", "int", 2, 50)
    assert dim.grid(3, 10) == [2, 10, 26, 50]
    assert dim.contains(50) and not dim.contains(51)
    assert Dimension("k", "float", 1.0, 2.0).grid(2, 1.5) == [1.0, 1.5, 2.0]
    assert Dimension("b", "bool").grid(5, True) == [True, False]


def _in_bounds(params: dict[str, Any], space: dict[str, Dimension]) -> bool:
    return all(
        space[k].low <= v <= space[k].high for k, v in params.items() if space[k].kind != "bool"
    )


def test_optimiser_beats_defaults_and_respects_bounds(bars: pd.DataFrame) -> None:
    bounds = {"fast": (2.0, 60.0), "slow": (3.0, 150.0)}
    result = optimize(SmaCross, bars, n_trials=25, seed=1, bounds=bounds)
    space = search_space(SmaCross, bounds)
    assert result.n_trials == 25
    assert result.score > result.default_score
    assert result.params["fast"] < result.params["slow"]
    assert all(_in_bounds(p, space) for p, _ in result.trials)
    # The defaults are the first trial, so the best can never be worse than them in-sample.
    assert result.trials[0][0] == {"fast": 10, "slow": 20, "allow_short": True}
    again = optimize(SmaCross, bars, n_trials=25, seed=1, bounds=bounds)
    assert again.params == result.params


def test_grid_search_covers_the_grid(bars: pd.DataFrame) -> None:
    bounds = {"fast": (5.0, 30.0), "slow": (20.0, 120.0)}
    result = optimize(SmaCross, bars, method="grid", n_trials=1000, bounds=bounds, grid_points=3)
    # fast 5, 10 (default), 18, 30 x slow 20 (point and default), 70, 120 x allow_short.
    assert result.n_trials == 24
    assert result.score == max(score for _, score in result.trials)
    assert result.score >= result.default_score


def test_exact_engine_path_for_strategies_without_a_fast_path(bars: pd.DataFrame) -> None:
    window = bars.iloc[:300]
    result = optimize(
        DonchianTrend, window, n_trials=4, seed=0, bounds={"entry": (5, 40), "exit": (2, 20)}
    )
    assert result.n_trials == 4
    assert result.score >= result.default_score


def test_evaluate_scores_only_the_window_and_needs_trades(bars: pd.DataFrame) -> None:
    full = evaluate(SmaCross, {"fast": 5, "slow": 20}, bars)
    part = evaluate(SmaCross, {"fast": 5, "slow": 20}, bars, score_from=600)
    assert part.n_trades < full.n_trades
    assert part.score != full.score
    rare = evaluate(SmaCross, {"fast": 5, "slow": 20}, bars, min_trades=10_000)
    assert rare.score == NO_SCORE and rare.sharpe is not None
    with pytest.raises(ValueError, match="score_from"):
        evaluate(SmaCross, {}, bars, score_from=len(bars))


def test_exact_engine_used_when_the_fill_model_needs_it(bars: pd.DataFrame) -> None:
    window = bars.iloc[:200]
    close_fill = FillModel(timing=FillTiming.CLOSE)
    slipped = FillModel(slippage_bps=Decimal(5))
    a = evaluate(SmaCross, {}, window, fill_model=close_fill, min_trades=0)
    b = evaluate(SmaCross, {}, window, fill_model=slipped, min_trades=0)
    c = evaluate(SmaCross, {}, window, min_trades=0)
    assert a.n_trades > 0 and b.n_trades > 0
    assert b.return_pct < c.return_pct


def test_contradicting_parameters_get_no_score(bars: pd.DataFrame) -> None:
    result = optimize(
        SmaCross, bars.iloc[:300], n_trials=6, seed=2, bounds={"fast": (20, 40), "slow": (3, 30)}
    )
    assert any(score == NO_SCORE for _, score in result.trials)
    # The default fast=10 lies outside the narrowed range, so it is not tried.
    assert all(20 <= params["fast"] <= 40 for params, _ in result.trials)
    assert result.params["fast"] < result.params["slow"]


def test_bounds_with_no_valid_parameters_are_refused(bars: pd.DataFrame) -> None:
    message = "no parameters within the bounds are valid for sma_cross: fast (40) must be below"
    with pytest.raises(ValueError, match=re.escape(message)):
        optimize(SmaCross, bars.iloc[:300], n_trials=6, bounds={"fast": (30, 40), "slow": (3, 30)})
    with pytest.raises(ValueError, match=r"bounds for 'fast' go down: 9 > 5"):
        search_space(SmaCross, {"fast": (9, 5)})


def test_first_valid_prefers_the_defaults_moved_into_the_ranges() -> None:
    assert first_valid(SmaCross, search_space(SmaCross)) == {
        "fast": 10,
        "slow": 20,
        "allow_short": True,
    }
    narrowed = search_space(SmaCross, {"fast": (12, 40), "slow": (30, 60)})
    assert first_valid(SmaCross, narrowed) == {"fast": 12, "slow": 30, "allow_short": True}


def test_argument_checks(bars: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="n_trials"):
        optimize(SmaCross, bars, n_trials=0)
    with pytest.raises(ValueError, match="workers"):
        optimize(SmaCross, bars, workers=0)
    with pytest.raises(ValueError, match="unknown method"):
        optimize(SmaCross, bars, method="anneal")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="too few"):
        walk_forward_splits(8, folds=3)
    with pytest.raises(ValueError, match="folds"):
        walk_forward_splits(100, folds=0)
    with pytest.raises(ValueError, match="no walk-forward"):
        best_of([])


def test_walk_forward_splits_are_ordered_and_disjoint() -> None:
    folds = walk_forward_splits(1000, folds=3)
    assert [(f.train.start, f.train.stop, f.test.start, f.test.stop) for f in folds] == [
        (0, 400, 400, 600),
        (200, 600, 600, 800),
        (400, 800, 800, 1000),
    ]
    anchored = walk_forward_splits(1000, folds=2, anchored=True, train_size=300)
    assert all(f.train.start == 0 and f.train.stop == f.test.start for f in anchored)


def test_walk_forward_has_no_look_ahead(bars: pd.DataFrame) -> None:
    bounds = {"fast": (2.0, 40.0), "slow": (3.0, 80.0)}
    base = walk_forward(SmaCross, bars, folds=3, n_trials=8, seed=4, bounds=bounds)
    first_test_end = base.folds[0].fold.test.stop
    # Rewrite every bar after the first fold's test window: that fold must not notice.
    changed = bars.copy()
    rng = np.random.default_rng(0)
    tail = changed.iloc[first_test_end:]
    factor = np.exp(np.cumsum(rng.normal(0, 0.02, len(tail))))
    for column in ("open", "high", "low", "close"):
        changed.iloc[first_test_end:, changed.columns.get_loc(column)] = (
            tail[column].to_numpy() * factor
        )
    other = walk_forward(SmaCross, changed, folds=3, n_trials=8, seed=4, bounds=bounds)
    assert other.folds[0].params == base.folds[0].params
    assert other.folds[0].test == base.folds[0].test
    assert other.folds[0].train_score == base.folds[0].train_score
    assert other.folds[-1].test != base.folds[-1].test


def test_walk_forward_reports_out_of_sample_and_progress(bars: pd.DataFrame) -> None:
    steps: list[tuple[int, int]] = []
    wf = walk_forward(
        SmaCross,
        bars,
        folds=2,
        n_trials=6,
        seed=0,
        bounds={"fast": (2.0, 30.0), "slow": (3.0, 60.0)},
        min_trades=1,
        progress=lambda done, total: steps.append((done, total)),
    )
    assert steps == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert len(wf.folds) == 2
    assert wf.oos_score == pytest.approx(np.mean([f.test.score for f in wf.folds]))
    assert wf.default_oos_score == pytest.approx(np.mean([f.default_test.score for f in wf.folds]))
    assert wf.oos_trades == sum(f.test.n_trades for f in wf.folds)
    assert set(wf.params) == set(default_params(SmaCross))
    assert best_of([wf]) is wf


def test_cancel_stops_the_search(bars: pd.DataFrame) -> None:
    cancel = threading.Event()
    seen: list[int] = []

    def progress(done: int, _total: int) -> None:
        seen.append(done)
        if done >= 3:
            cancel.set()

    with pytest.raises(Cancelled, match="cancelled after 3 trials"):
        optimize(SmaCross, bars, n_trials=50, seed=0, progress=progress, cancel=cancel)
    assert seen == [1, 2, 3]


def test_stored_study_resumes(tmp_path: Any, bars: pd.DataFrame) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    cancel = threading.Event()

    def stop_at_four(done: int, _total: int) -> None:
        if done >= 4:
            cancel.set()

    with pytest.raises(Cancelled):
        optimize(
            SmaCross, bars, n_trials=10, storage=storage, study_name="s", cancel=cancel,
            progress=stop_at_four,
        )  # fmt: skip
    resumed = optimize(SmaCross, bars, n_trials=10, storage=storage, study_name="s")
    assert resumed.n_trials == 10
    # Already complete: nothing more runs.
    again = optimize(SmaCross, bars, n_trials=10, storage=storage, study_name="s")
    assert again.n_trials == 10 and again.params == resumed.params


@pytest.mark.pg
def test_two_worker_processes_share_one_postgresql_study(
    pg_schema_url: str, bars: pd.DataFrame
) -> None:
    result = optimize(
        SmaCross,
        bars,
        n_trials=16,
        seed=5,
        bounds={"fast": (2.0, 40.0), "slow": (3.0, 80.0)},
        storage=pg_schema_url,
        study_name="shared",
        workers=2,
    )
    study = optuna.load_study(study_name="shared", storage=pg_schema_url)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) >= 16
    assert result.n_trials == len(complete)
    # Both processes took trials from the one study.
    assert len({t.user_attrs["worker"] for t in complete}) == 2
    assert result.score == max(t.value for t in complete if t.value is not None)


def test_another_machine_joins_a_stored_study(tmp_path: Any, bars: pd.DataFrame) -> None:
    from sigma.research.trials import TrialObjective
    from sigma.research.workers import join_study

    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    first = optimize(SmaCross, bars, n_trials=3, storage=storage, study_name="s", seed=1)
    objective = TrialObjective(
        SmaCross, search_space(SmaCross, {"fast": (2, 30)}), bars, 0, Decimal(10_000),
        FillModel(), 3,
    )  # fmt: skip
    join_study(storage, "s", objective, 6, "tpe", 2, 5)
    study = optuna.load_study(study_name="s", storage=storage)
    assert len(study.trials) == 6 > first.n_trials


def test_studies_beside_sigmas_own_schema_get_a_schema_of_their_own(
    pg_schema_url: str, bars: pd.DataFrame, tmp_path: Any
) -> None:
    from sqlalchemy import create_engine, make_url, text

    from sigma.research.study import study_storage
    from sigma.store import current_revision, head_revision, init_db

    sigma_db = init_db(pg_schema_url)  # SIGMA's tables and alembic_version live here
    schema = make_url(pg_schema_url).query["options"].split("=", 1)[1]  # type: ignore[union-attr]
    try:
        result = optimize(SmaCross, bars, n_trials=3, storage=pg_schema_url, study_name="here")
        assert result.n_trials == 3
        assert current_revision(sigma_db) == head_revision()  # untouched by optuna
        moved = study_storage(pg_schema_url)
        assert make_url(moved).query["options"] == f"-csearch_path={schema}_optuna"
        assert len(optuna.load_study(study_name="here", storage=moved).trials) == 3
        assert study_storage(moved) == moved  # already optuna's own: unchanged
        # A URL of a database without SIGMA's tables is used as given.
        sigma_db.dispose()
        file_url = f"sqlite:///{tmp_path / 'studies.db'}"
        assert study_storage(file_url) == file_url
        # SQLite has no schemas: sharing SIGMA's file is refused.
        own_file = f"sqlite:///{tmp_path / 'sigma.db'}"
        init_db(own_file).dispose()
        with pytest.raises(ValueError, match="SIGMA's own database"):
            study_storage(own_file)
    finally:
        sigma_db.dispose()
        admin = create_engine(make_url(pg_schema_url).difference_update_query(["options"]))
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}_optuna" CASCADE'))
        admin.dispose()


def _temporary_studies() -> set[str]:
    from sigma.research.study import _memory_dir

    return {p.name for p in Path(_memory_dir() or tempfile.gettempdir()).glob("sigma-optuna-*")}


def test_workers_share_a_temporary_study_without_a_database(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import sigma.research.study as study_module
    import sigma.research.workers as workers_module

    # This test's own folder for the temporary journals: other tests running at the same
    # time keep theirs in the shared one.
    monkeypatch.setattr(study_module, "_memory_dir", lambda: str(tmp_path))
    before = _temporary_studies()
    assert before == set()
    me = f"{socket.gethostname()}:{os.getpid()}"
    grid = {"fast": (5.0, 30.0), "slow": (20.0, 120.0)}
    # At-close fills keep the trials on the exact engine, on a longer history: a fast-path
    # trial takes a millisecond, and on a busy machine the parent could take the whole grid
    # before the worker it let go is scheduled.
    exact = FillModel(timing=FillTiming.CLOSE)
    bars, _ = generate_bars(6000, seed=3, freq="1h")
    alone = optimize(
        SmaCross, bars, method="grid", n_trials=1000, bounds=grid, grid_points=3, fill_model=exact
    )
    assert alone.by_worker == {me: 24} and alone.n_trials == 24, alone.by_worker
    # The default (workers=None) on a machine with two cores, for a study deemed long enough.
    monkeypatch.setattr(workers_module, "_PARALLEL_FROM_SECONDS", 0.0)
    monkeypatch.setattr(workers_module.os, "cpu_count", lambda: 2)
    shared = optimize(
        SmaCross,
        bars,
        method="grid",
        n_trials=1000,
        bounds=grid,
        grid_points=3,
        workers=None,
        fill_model=exact,
    )
    # Two processes ran trials, and the result is the single process's: the same grid, each
    # point once, and the same best score.
    assert len(shared.by_worker) == 2 and me in shared.by_worker
    assert all(n > 0 for n in shared.by_worker.values())
    assert shared.n_trials == 24
    assert sorted(map(repr, shared.trials)) == sorted(map(repr, alone.trials))
    assert shared.score == alone.score and shared.default_score == alone.default_score

    bounds = {"fast": (2.0, 40.0), "slow": (3.0, 80.0)}
    tpe = optimize(SmaCross, bars, n_trials=16, seed=5, bounds=bounds, workers=2, fill_model=exact)
    assert len(tpe.by_worker) == 2
    assert tpe.n_trials >= 16
    assert _in_bounds(tpe.params, search_space(SmaCross, bounds))
    assert tpe.score == max(score for _, score in tpe.trials) >= tpe.default_score
    # The temporary journal files are gone.
    assert _temporary_studies() == before


def test_short_studies_stay_in_one_process_by_default(bars: pd.DataFrame) -> None:
    from sigma.research.workers import auto_workers, default_workers

    result = optimize(SmaCross, bars.iloc[:300], n_trials=5, seed=0, workers=None)
    assert result.by_worker == {f"{socket.gethostname()}:{os.getpid()}": 5}
    assert auto_workers(0.5) == 1
    assert auto_workers(3600.0) == default_workers() == (os.cpu_count() or 1)
    assert default_workers(3) == 3
    with pytest.raises(ValueError, match="workers"):
        default_workers(0)


def test_a_study_of_only_refused_parameters_returns_valid_ones() -> None:
    import optuna

    from sigma.research.optimize import _best

    space = search_space(SmaCross, {"fast": (20, 40), "slow": (3, 30)})
    study = optuna.create_study(direction="maximize")
    fast = optuna.distributions.IntDistribution(20, 40)
    slow = optuna.distributions.IntDistribution(3, 30)
    for f, s, invalid in ((35, 10, True), (40, 5, True)):
        study.add_trial(
            optuna.trial.create_trial(
                params={"fast": f, "slow": s},
                distributions={"fast": fast, "slow": slow},
                value=NO_SCORE,
                user_attrs={"invalid": invalid},
            )
        )
    assert _best(study, SmaCross, space) == (first_valid(SmaCross, space), NO_SCORE)
    study.add_trial(
        optuna.trial.create_trial(
            params={"fast": 20, "slow": 30}, distributions={"fast": fast, "slow": slow}, value=0.0
        )
    )
    assert _best(study, SmaCross, space) == ({"fast": 20, "slow": 30}, 0.0)


@pytest.mark.parametrize(
    "margin",
    [
        MarginModel(AccountType.SPOT),
        MarginModel(leverage=Decimal(3)),
        MarginModel(maintenance=Decimal("0.05")),
    ],
    ids=["spot", "leverage", "maintenance"],
)
def test_a_trial_on_another_account_is_scored_by_the_exact_engine(
    bars: pd.DataFrame, margin: MarginModel
) -> None:
    """The fast path models the default account only: any other takes the exact engine."""
    params = {"fast": 5, "slow": 20}
    assert fast_path_ok(SmaCross, FillModel(), MarginModel())
    assert not fast_path_ok(SmaCross, FillModel(), margin)
    got = evaluate(SmaCross, params, bars, margin=margin, min_trades=0)
    exact, _ = run_backtest(SmaCross(**params), bars, symbol="OPT", margin=margin)
    assert got.n_trades == len(exact.trades)
    assert got.return_pct == pytest.approx(float(exact.final_equity / 100 - 100))
    default = evaluate(SmaCross, params, bars, min_trades=0)
    assert (got.n_trades, got.return_pct) != (default.n_trades, default.return_pct)


def test_bars_with_funding_take_the_exact_engine(bars: pd.DataFrame) -> None:
    rates = np.zeros(len(bars))
    assert fast_path_ok(SmaCross, FillModel(), None, bars.assign(funding_rate=rates))
    rates[100::8] = 0.01
    funded = bars.assign(funding_rate=rates)
    assert not fast_path_ok(SmaCross, FillModel(), None, funded)
    params = {"fast": 5, "slow": 20}
    got = evaluate(SmaCross, params, funded, min_trades=0)
    exact, _ = run_backtest(SmaCross(**params), funded, symbol="OPT")
    assert exact.stats["funding_paid"] != 0
    assert got.return_pct == pytest.approx(float(exact.final_equity / 100 - 100))

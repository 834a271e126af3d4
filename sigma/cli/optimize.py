"""`sigma optimize`: search a strategy's parameters (optuna TPE or a grid), validated
walk-forward out of sample, with a trial table, a heatmap and a per-fold report, and saved
only when they beat the parameters in force out of sample."""

from __future__ import annotations

import math
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import pandas as pd
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sigma.cli.backtest import _run_id
from sigma.cli.failures import BadValue, Debug, one_line_errors
from sigma.cli.inputs import (
    AccountOption,
    LeverageOption,
    MaintenanceOption,
    load_history,
    margin_model_of,
    report_folder,
)
from sigma.cli.jobs import _app
from sigma.domain.text import clip
from sigma.engine.margin import AccountType
from sigma.research.objectives import MIN_TRADES, OBJECTIVES, shown
from sigma.store.db import session_scope

if TYPE_CHECKING:  # imported when used: `sigma --help` need not load the research stack
    from sigma.bootstrap import App
    from sigma.reports.optimization import Fit
    from sigma.research.space import Dimension
    from sigma.research.walk_forward import WalkForwardResult
    from sigma.strategies.base import Strategy

console = Console()

TOP_TRIALS = 5
"""Best trials of the last fit printed; the report holds every one."""


def parse_bounds(items: list[str]) -> dict[str, tuple[float, float]]:
    """``NAME=LOW:HIGH`` items as ranges; BadValue naming --bound for a malformed one."""
    bounds = {}
    for item in items:
        name, _, span = item.partition("=")
        low, sep, high = span.partition(":")
        shown_item = clip(repr(item))
        try:
            if not name.strip() or not sep:
                raise ValueError
            pair = (float(low), float(high))
        except ValueError:
            raise BadValue("--bound", f"expected NAME=LOW:HIGH, got {shown_item}") from None
        if not all(math.isfinite(x) for x in pair):
            raise BadValue("--bound", f"LOW and HIGH must be finite numbers, got {shown_item}")
        bounds[name.strip()] = pair
    return bounds


@dataclass(frozen=True, slots=True)
class _Choices:
    """The options that say what is searched and how it is scored."""

    method: str
    objective: str
    trials: int
    folds: int
    workers: int | None
    min_trades: int
    max_drawdown: float | None
    grid_steps: int
    save: bool


def _check(c: _Choices) -> None:
    if c.method not in ("tpe", "grid"):
        raise BadValue("--method", f"use tpe or grid, got {clip(repr(c.method))}")
    if c.objective not in OBJECTIVES:
        names = ", ".join(OBJECTIVES)
        raise BadValue("--objective", f"use one of {names}, got {clip(repr(c.objective))}")
    if c.trials < 1:
        raise BadValue("--trials", f"must be at least 1, got {c.trials}")
    if c.folds < 0:
        raise BadValue("--folds", f"must be 0 or more, got {c.folds}")
    if c.workers is not None and c.workers < 1:
        raise BadValue("--workers", f"must be at least 1, got {c.workers}")
    if c.min_trades < 0:
        raise BadValue("--min-trades", f"must be 0 or more, got {c.min_trades}")
    if c.max_drawdown is not None and not 0 < c.max_drawdown <= 100:
        raise BadValue("--max-drawdown", f"must be in (0, 100] percent, got {c.max_drawdown}")
    if c.grid_steps < 2:
        raise BadValue("--grid-steps", f"must be at least 2, got {c.grid_steps}")
    if c.save and c.folds == 0:
        raise BadValue(
            "--save",
            "needs walk-forward folds (--folds 1 or more): parameters are saved only when "
            "they beat those in force out of sample",
        )


def _heatmap_axes(choice: str | None, space: Mapping[str, Dimension]) -> tuple[str, str] | None:
    """The two parameters of the heatmap: `choice` ("X,Y"), else the first two searched."""
    if choice is None:
        names = list(space)
        return (names[0], names[1]) if len(names) >= 2 else None
    parts = [p.strip() for p in choice.split(",")]
    if len(parts) != 2 or parts[0] == parts[1] or not all(p in space for p in parts):
        raise BadValue(
            "--heatmap",
            f"expected two searched parameters X,Y of {', '.join(space)}, got {clip(repr(choice))}",
        )
    return parts[0], parts[1]


def _print_space(cls: type[Strategy], space: Mapping[str, Dimension], c: _Choices) -> None:
    """What is searched: the ranges, and for a grid every value tried (the grid steps)."""
    from sigma.research.space import grid_values

    if c.method == "grid":
        values = grid_values(cls, space, c.grid_steps)
        size = math.prod(len(v) for v in values.values())
        console.print(
            f"grid: {c.grid_steps} steps per range, plus the default: {size} points"
            + (f", of which --trials {c.trials} are tried" if c.trials < size else ""),
            soft_wrap=True,
        )
        for name, points in values.items():
            console.print(f"  {name}: {', '.join(map(str, points))}", soft_wrap=True)
        return
    ranges = ", ".join(
        f"{d.name} {'true/false' if d.kind == 'bool' else f'{d.low:g}..{d.high:g}'}"
        for d in space.values()
    )
    console.print(f"tpe: {c.trials} trials per fit over {ranges}", soft_wrap=True)


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What the search found, for printing, the report and `--save`."""

    params: dict[str, Any]
    score: float | None
    why: str
    fits: list[Fit]
    walk_forward: WalkForwardResult | None


def optimize(
    strategy: Annotated[str, typer.Option(help="strategy name")] = "sma_cross",
    data: Annotated[str, typer.Option(help="CSV/Parquet file or pg:TABLE")] = "",
    symbol: Annotated[str, typer.Option(help="symbol (filters the data, names the params)")] = "",
    method: Annotated[str, typer.Option(help="tpe or grid")] = "tpe",
    objective: Annotated[
        str, typer.Option(help=f"what is maximised: {', '.join(OBJECTIVES)}")
    ] = "sharpe",
    min_trades: Annotated[
        int, typer.Option(help="closed trades a scored window needs, else it has no score")
    ] = MIN_TRADES,
    max_drawdown: Annotated[
        float | None,
        typer.Option(help="a window falling more than this percent has no score"),
    ] = None,
    account: AccountOption = AccountType.MARGIN,
    leverage: LeverageOption = "1",
    maintenance_margin: MaintenanceOption = "0",
    trials: Annotated[int, typer.Option(help="trials (per walk-forward fit)")] = 50,
    grid_steps: Annotated[
        int, typer.Option(help="grid: values per parameter range (plus the default)")
    ] = 10,
    seed: Annotated[int, typer.Option(help="sampler seed")] = 0,
    bound: Annotated[list[str] | None, typer.Option(help="narrow a range: NAME=LOW:HIGH")] = None,
    folds: Annotated[int, typer.Option(help="walk-forward folds (0: in-sample search only)")] = 3,
    heatmap: Annotated[
        str | None, typer.Option(help="the heatmap's two parameters X,Y (default: the first two)")
    ] = None,
    storage: Annotated[str | None, typer.Option(help="database URL of a shared study")] = None,
    study: Annotated[str | None, typer.Option(help="study name (resumes a stored one)")] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help="processes on the study (default: SIGMA_OPTIMIZE_WORKERS, else one per core "
            "for a study long enough to repay starting them)"
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="report folder")] = None,
    save: Annotated[
        bool,
        typer.Option(
            help="write the result to strategy_param, only if it beats the parameters in "
            "force out of sample (refused with the reason otherwise, exit 1)"
        ),
    ] = False,
    debug: Debug = False,
) -> None:
    """Optimise a strategy's parameters within their bounds (optuna TPE or grid), validated
    walk-forward out of sample; every trial trades the --account; writes trials.csv,
    folds.csv and optimize.html (heatmap, per-fold report). Ctrl-C stops after the running
    trial and prints the best so far (exit 130). A value it cannot use ends it with one line
    on stderr and exit status 2."""
    from sigma.research.space import first_valid, search_space
    from sigma.research.walk_forward import walk_forward_splits

    choices = _Choices(
        method, objective, trials, folds, workers, min_trades, max_drawdown, grid_steps, save
    )
    with one_line_errors(debug=debug):
        _check(choices)
        out = report_folder(out)
        bounds = parse_bounds(bound or [])
        margin = margin_model_of(account, leverage, maintenance_margin)
        with _app() as application:
            s = application.settings
            try:
                cls = application.strategies.get(strategy)
            except KeyError as exc:
                raise BadValue("--strategy", str(exc.args[0])) from None
            try:
                space = search_space(cls, bounds)
                first_valid(cls, space)
            except ValueError as exc:
                raise BadValue("--bound", str(exc)) from None
            axes = _heatmap_axes(heatmap, space)
            bars = load_history(s, data, symbol=symbol or None)
            if folds > 0:
                try:
                    last = walk_forward_splits(len(bars), folds=folds)[-1].train
                except ValueError as exc:
                    raise BadValue("--folds", str(exc)) from None
                # Each fit caps look-backs at half its training window (`walk_forward`).
                space = search_space(cls, bounds, max_int=(last.stop - last.start) // 2)
            _print_space(cls, space, choices)
            console.print(f"account: {margin.label} (every trial)", soft_wrap=True)
            search: dict[str, Any] = {
                "method": method,
                "n_trials": trials,
                "seed": seed,
                "bounds": bounds,
                "initial_cash": s.trading.initial_cash,
                "objective": objective,
                "min_trades": min_trades,
                "max_drawdown_pct": max_drawdown,
                "margin": margin,
                "grid_points": grid_steps,
                "storage": storage or s.research.optuna_storage,
                # Several processes share the study: in `storage`, or else a temporary journal.
                "workers": workers or s.research.optimize_workers,
            }
            outcome = _searched(cls, bars, folds, study, search)
            _print_outcome(strategy, objective, outcome)
            label = symbol or Path(data).stem
            folder = out or s.process.var_dir / "reports" / _run_id([f"optimize-{strategy}"], label)
            _write_report(folder, cls.name, label, choices, outcome, bars, axes)
            if save:
                _save(application, cls, bars, symbol or "*", outcome, search)


def _searched(
    cls: type[Strategy],
    bars: pd.DataFrame,
    folds: int,
    study: str | None,
    search: dict[str, Any],
) -> _Outcome:
    """`_search`, ending the command on Ctrl-C (the best so far printed, exit 130) or when a
    worker process could not start (exit 1)."""
    from sigma.engine.engine import Cancelled
    from sigma.research.workers import WorkerFailed

    try:
        return _search(cls, bars, folds, study, search)
    except Cancelled as exc:
        console.print(f"[yellow]stopped:[/] {exc}", soft_wrap=True)
        best = getattr(exc, "best", None)  # an OptimizationCancelled's best so far
        if best is not None:
            console.print(
                f"best so far: in-sample {OBJECTIVES[search['objective']]} "
                f"{shown(best.best_score)} after {best.n_trials} trials",
                soft_wrap=True,
            )
            console.print(_params_table(best.params, "best so far"))
        raise typer.Exit(130) from None
    except WorkerFailed as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


@contextmanager
def _interruptible() -> Iterator[threading.Event]:
    """An event Ctrl-C sets (the search stops after the running trial) while inside."""
    cancel = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.set())
    try:
        yield cancel
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def _trial_progress() -> Iterator[Callable[[str, int, int], None]]:
    """A progress bar per fit on a terminal; elsewhere (a log, a pipe) a line per trial."""
    if not console.is_terminal:

        def line(fit: str, done: int, total: int) -> None:
            console.print(f"{fit}: trial {done}/{total}", soft_wrap=True)

        yield line
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("optimise", total=None)

        def update(fit: str, done: int, total: int) -> None:
            bar.update(task, description=fit, completed=done, total=total)

        yield update


def _search(
    cls: type[Strategy],
    bars: pd.DataFrame,
    folds: int,
    study: str | None,
    search: dict[str, Any],
) -> _Outcome:
    """Run the search (walk-forward with `folds`, else in-sample) with progress; Ctrl-C stops
    it after the running trial."""
    from sigma.reports.optimization import Fit
    from sigma.research.optimize import optimize as run_optimize
    from sigma.research.walk_forward import walk_forward

    label = OBJECTIVES[search["objective"]]
    with _interruptible() as cancel, _trial_progress() as progress:
        if folds > 0:
            wf = walk_forward(
                cls, bars, folds=folds, cancel=cancel, trial_progress=progress,
                study_name=study, **search,
            )  # fmt: skip
            excluded = [
                f"fold {i} excluded: {f.test.excluded}"
                for i, f in enumerate(wf.folds, 1)
                if f.test.excluded
            ]
            why = (
                f"sigma optimize: walk-forward out-of-sample {label} {shown(wf.oos)} "
                f"vs {shown(wf.default_oos)} with defaults ({folds} folds"
                + "".join(f"; {e}" for e in excluded)
                + ")"
            )
            fits = [Fit(f"fold {i}/{folds}", f.search) for i, f in enumerate(wf.folds, 1)]
            return _Outcome(wf.params, wf.oos, why, [*fits, Fit("final", wf.final)], wf)
        result = run_optimize(
            cls, bars, progress=lambda d, t: progress("in-sample", d, t), cancel=cancel,
            study_name=study, **search,
        )  # fmt: skip
        why = f"sigma optimize: in-sample {label} {shown(result.best_score)}"
        return _Outcome(result.params, result.best_score, why, [Fit("in-sample", result)], None)


def _params_table(params: Mapping[str, Any], title: str) -> Table:
    table = Table("parameter", "value", title=title)
    for key, value in params.items():
        table.add_row(key, str(value))
    return table


def _print_outcome(strategy: str, objective: str, outcome: _Outcome) -> None:
    label = OBJECTIVES[objective]
    wf = outcome.walk_forward
    if wf is not None:
        folds = Table(
            "fold", "trained on", "tested on", "parameters", "in-sample", "out-of-sample",
            "defaults", "trades", title=f"walk-forward ({label})",
        )  # fmt: skip
        for i, f in enumerate(wf.folds, 1):
            folds.add_row(
                str(i),
                f"{f.fold.train.start}..{f.fold.train.stop - 1}",
                f"{f.fold.test.start}..{f.fold.test.stop - 1}",
                ", ".join(f"{k}={v}" for k, v in f.params.items()),
                shown(f.search.best_score),
                shown(f.test.scored) if f.test.excluded is None else f"no score: {f.test.excluded}",
                shown(f.default_test.scored),
                str(f.test.n_trades),
            )
        console.print(folds)
    last = outcome.fits[-1]
    ranked = sorted(
        ((r.score, r) for r in last.result.records if r.score is not None),
        key=lambda pair: -pair[0],
    )
    top = Table("trial", "parameters", label, "trades", title=f"best trials ({last.label})")
    for _, r in ranked[:TOP_TRIALS]:
        params = ", ".join(f"{k}={v}" for k, v in r.params.items())
        top.add_row(str(r.number), params, shown(r.score), str(r.n_trades))
    console.print(top)
    excluded = len(last.result.records) - len(ranked)
    if excluded:
        console.print(f"{excluded} trials without a score (see excluded in trials.csv)")
    title = f"{strategy}: {label} {shown(outcome.score)}"
    console.print(_params_table(outcome.params, title))
    console.print(outcome.why, soft_wrap=True)


def _write_report(
    folder: Path,
    strategy: str,
    label: str,
    c: _Choices,
    outcome: _Outcome,
    bars: pd.DataFrame,
    axes: tuple[str, str] | None,
) -> None:
    from sigma.reports.optimization import write_optimization_report

    summary = {
        "strategy": strategy,
        "data": label,
        "method": c.method,
        "objective": OBJECTIVES[c.objective],
        "min trades": c.min_trades,
        "max drawdown %": "none" if c.max_drawdown is None else c.max_drawdown,
        "grid steps" if c.method == "grid" else "trials per fit": (
            c.grid_steps if c.method == "grid" else c.trials
        ),
        "walk-forward folds": c.folds,
        "result": outcome.why,
        "parameters": ", ".join(f"{k}={v}" for k, v in outcome.params.items()),
    }
    page = write_optimization_report(
        folder,
        title=f"optimisation of {strategy} on {label}",
        summary=summary,
        fits=outcome.fits,
        walk_forward=outcome.walk_forward,
        index=pd.DatetimeIndex(bars.index),
        axes=axes,
    )
    console.print(f"report: {page} (trials.csv beside it)", soft_wrap=True)


def _in_force(application: App, cls: type[Strategy], target: str) -> tuple[dict[str, Any], str]:
    """The parameters in force for the strategy on `target` and what they are: the stored
    set, or the defaults when none is stored (or the strategy no longer accepts it)."""
    from sigma.store.params import get_active_params

    with session_scope(application.sessions) as session:
        stored = get_active_params(session, cls.name, target)
    if stored is None:
        return cls().params, "the defaults"
    try:
        return cls(**stored).params, "the stored parameters"
    except ValueError:
        return cls().params, "the defaults (the stored set is no longer valid)"


def _save(
    application: App,
    cls: type[Strategy],
    bars: pd.DataFrame,
    target: str,
    outcome: _Outcome,
    search: Mapping[str, Any],
) -> None:
    """Store the parameters and tell the bot, if they beat those in force out of sample;
    else refuse with the reason (exit 1)."""
    from sigma.research.save_check import judge_save
    from sigma.research.walk_forward import SCORING_ARGS
    from sigma.runtime.commands import SetParams
    from sigma.runtime.operator import describe, store_params, tell_bot
    from sigma.store.jsonsafe import to_jsonable

    in_force, source = _in_force(application, cls, target)
    scoring = {k: search[k] for k in SCORING_ARGS if k in search}
    wf = outcome.walk_forward
    assert wf is not None, "_check refuses --save without walk-forward folds"
    verdict = judge_save(cls, bars, wf, in_force, source, **scoring)
    if not verdict.allowed:
        typer.echo(f"error: --save refused: {verdict.reason}; nothing saved", err=True)
        raise typer.Exit(1)
    why = f"{outcome.why}; {verdict.reason}"
    with session_scope(application.sessions) as session:
        version = store_params(session, cls.name, target, outcome.params, why, "cli", source="cli")
    console.print(f"saved as strategy_param version {version} ({verdict.reason})", soft_wrap=True)
    change = SetParams(
        author="cli",
        strategy=cls.name,
        symbol=target,
        reason=why,
        params=to_jsonable(outcome.params),
        version=version,
        pin=True,
    )
    console.print(describe(tell_bot(application.settings, change)), soft_wrap=True)

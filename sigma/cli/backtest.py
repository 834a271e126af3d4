"""`sigma backtest`: run strategies over history, print, store and report the results."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from sigma.config import load_settings
from sigma.engine.fill_model import FillModel, FillTiming
from sigma.engine.result import BacktestResult
from sigma.feeds.errors import DataError
from sigma.feeds.loaders import load_bars
from sigma.feeds.resample import resample_bars
from sigma.reports.export import export_result
from sigma.reports.html_report import render_comparison_html, write_backtest_html
from sigma.research.backtest import run_backtest
from sigma.research.compare import compare_results
from sigma.store.backtests import save_backtest
from sigma.store.db import init_db, session_factory
from sigma.strategies import StrategyRegistry, load_strategies

console = Console()

PROGRESS_MIN_BARS = 50_000


def parse_params(items: list[str]) -> dict[str, str]:
    """Turn `k=v` strings into a dict; a malformed item is a BadParameter naming it."""
    params: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"expected key=value, got {item!r}", param_hint="--param")
        params[key.strip()] = value.strip()
    return params


def _decimal(value: str, option: str) -> Decimal:
    try:
        result = Decimal(value)
    except InvalidOperation:
        raise typer.BadParameter(f"not a number: {value!r}", param_hint=option) from None
    if not result.is_finite():
        raise typer.BadParameter(f"must be finite: {value!r}", param_hint=option)
    return result


def _run_id(names: list[str], symbol: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{symbol}_{'-'.join(names)}")
    return f"{stamp}_{slug}"[:120]


def summary_table(result: BacktestResult) -> Table:
    """The statistics of one run as a two-column table."""
    table = Table(title=f"{result.strategy} on {result.symbol}", show_header=False)
    table.add_column("statistic", style="bold")
    table.add_column("value", justify="right")
    for key, value in result.stats.items():
        if isinstance(value, float):
            shown = f"{value:,.4f}"
        elif isinstance(value, Decimal):
            shown = f"{value:,.2f}"
        else:
            shown = "n/a" if value is None else str(value)
        table.add_row(key, shown)
    return table


def backtest(
    strategy: Annotated[str, typer.Option(help="strategy name, e.g. sma_cross")] = "sma_cross",
    data: Annotated[str, typer.Option(help="CSV/Parquet file or pg:TABLE")] = "",
    symbol: Annotated[str, typer.Option(help="symbol to trade (and filter the data by)")] = "",
    start: Annotated[str | None, typer.Option(help="first bar time (ISO)")] = None,
    end: Annotated[str | None, typer.Option(help="last bar time (ISO)")] = None,
    param: Annotated[list[str] | None, typer.Option(help="strategy parameter k=v")] = None,
    cash: Annotated[str, typer.Option(help="initial cash")] = "10000",
    commission: Annotated[str | None, typer.Option(help="commission fraction, 0.001=0.1%")] = None,
    commission_fixed: Annotated[str | None, typer.Option(help="fixed fee per fill")] = None,
    slippage_bps: Annotated[str | None, typer.Option(help="slippage in basis points")] = None,
    fill_at: Annotated[FillTiming, typer.Option(help="when market orders fill")] = (
        FillTiming.NEXT_OPEN
    ),
    lot_size: Annotated[str, typer.Option(help="quantity step: 1 = whole units")] = "1",
    timeframe: Annotated[str | None, typer.Option(help="resample bars, e.g. 1h")] = None,
    compare: Annotated[str | None, typer.Option(help="comma-separated strategies to rank")] = None,
    out: Annotated[Path | None, typer.Option(help="report folder")] = None,
    store: Annotated[bool, typer.Option(help="save bt_summary/bt_trades")] = True,
) -> None:
    """Backtest a strategy (or --compare several) on history and write the report."""
    settings = load_settings()
    if not data:
        raise typer.BadParameter("a data source is required", param_hint="--data")
    fill_model = FillModel(
        commission_pct=_decimal(commission, "--commission")
        if commission is not None
        else settings.commission_pct,
        commission_fixed=_decimal(commission_fixed, "--commission-fixed")
        if commission_fixed is not None
        else settings.commission_fixed,
        slippage_bps=_decimal(slippage_bps, "--slippage-bps")
        if slippage_bps is not None
        else settings.slippage_bps,
        lot_size=_decimal(lot_size, "--lot-size"),
        timing=fill_at,
    )
    initial_cash = _decimal(cash, "--cash")
    if initial_cash <= 0:
        raise typer.BadParameter("must be positive", param_hint="--cash")
    registry = load_strategies(settings.strategy_paths)
    print_plugin_errors(registry)
    names = [n.strip() for n in compare.split(",") if n.strip()] if compare else [strategy]
    params = parse_params(param or [])
    try:
        bars = load_bars(
            data,
            symbol=symbol or None,
            start=start,
            end=end,
            database_url=settings.database_url,
        )
        if timeframe:
            bars = resample_bars(bars, timeframe)
        strategies = [
            registry.create(name, **(params if len(names) == 1 else {})) for name in names
        ]
    except (DataError, KeyError, ValueError) as exc:
        console.print(f"[red]error:[/] {exc.args[0] if exc.args else exc}")
        raise typer.Exit(2) from exc

    label = symbol or Path(data).stem
    run_dir = out or settings.var_dir / "reports" / _run_id(names, label)
    run_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for strat in strategies:
        result = _run_one(strat, bars, label, initial_cash, fill_model)
        results.append(result)
        console.print(summary_table(result))
        target = run_dir / strat.name if len(strategies) > 1 else run_dir
        report = write_backtest_html(result, target / "report.html")
        export_result(result, target)
        console.print(f"report: {report}", soft_wrap=True)
        if store:
            _store(settings.database_url, result, report)
    if len(results) > 1:
        comparison = compare_results(results)
        ranking = Table(title="ranking")
        ranking.add_column("#")
        ranking.add_column("strategy")
        ranking.add_column("sharpe", justify="right")
        for pos, (name, score) in enumerate(comparison.ranking, 1):
            ranking.add_row(str(pos), name, f"{score:.3f}" if score > float("-inf") else "n/a")
        console.print(ranking)
        console.print(f"[bold]recommendation:[/] {comparison.recommendation}", soft_wrap=True)
        page = run_dir / "comparison.html"
        page.write_text(
            render_comparison_html(results, comparison.ranking, comparison.recommendation),
            encoding="utf-8",
        )
        console.print(f"comparison report: {page}", soft_wrap=True)


def _run_one(
    strategy: Any, bars: Any, symbol: str, cash: Decimal, fill_model: FillModel
) -> BacktestResult:
    if len(bars) < PROGRESS_MIN_BARS:
        return run_backtest(
            strategy, bars, symbol=symbol, initial_cash=cash, fill_model=fill_model
        )[0]
    with Progress(
        TextColumn(f"{strategy.name}"),
        BarColumn(),
        TextColumn("{task.completed:,} bars"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("backtest", total=len(bars))
        return run_backtest(
            strategy,
            bars,
            symbol=symbol,
            initial_cash=cash,
            fill_model=fill_model,
            progress=lambda done, _total: bar.update(task, completed=done),
        )[0]


def _store(database_url: str, result: BacktestResult, report: Path) -> None:
    engine = init_db(database_url)
    try:
        with session_factory(engine)() as session:
            run_id = save_backtest(session, result, report_path=str(report))
            session.commit()
        console.print(f"stored as bt_summary id {run_id}")
    finally:
        engine.dispose()


def print_plugin_errors(registry: StrategyRegistry) -> None:
    """Name each strategy plugin that failed to load, and why (it was skipped)."""
    for origin, problem in registry.errors.items():
        console.print(f"[yellow]plugin skipped[/] {origin}: {problem}", soft_wrap=True)

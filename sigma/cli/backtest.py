"""`sigma backtest`: run strategies over history, print, store and report the results."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from sigma.cli.collector import collector_held_back
from sigma.cli.failures import BadValue, Debug, one_line_errors
from sigma.cli.inputs import (
    AccountOption,
    LeverageOption,
    MaintenanceOption,
    create_compared,
    create_strategies,
    fill_model_of,
    load_history,
    margin_model_of,
    parse_cash,
    parse_params,
    report_folder,
)
from sigma.cli.memory import give_back_freed_memory
from sigma.cli.portfolio import is_portfolio, portfolio_bars, write_portfolio
from sigma.config import load_settings
from sigma.engine.fill_model import FillModel, FillTiming
from sigma.engine.margin import AccountType, MarginModel
from sigma.engine.result import BacktestResult
from sigma.reports.export import check_formats, export_result
from sigma.reports.formatting import format_value
from sigma.reports.html_report import render_comparison_html, write_backtest_html
from sigma.reports.portfolio import SYMBOL_COLUMNS
from sigma.research.backtest import run_backtest
from sigma.research.compare import compare_results, run_labels
from sigma.research.lookahead import check_lookahead
from sigma.research.portfolio import PortfolioResult, run_portfolio
from sigma.strategies import StrategyRegistry, load_strategies

console = Console()

PROGRESS_MIN_BARS = 50_000
LOOKAHEAD_FOUND = 1
"""Exit status when --check-lookahead finds a strategy reading the future."""

DEFAULT_EXPORT = "none"
"""What a run exports unless told: no trade, equity or monthly file, only `summary.json` next
to the HTML report (the trades are stored in the database too). Each export format is on
request: at a million bars Parquet alone took seconds and ~60 MB more memory, and loads
pyarrow."""


def _run_id(names: list[str], symbol: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{symbol}_{'-'.join(names)}")
    return f"{stamp}_{slug}"[:120]


def export_formats(text: str) -> list[str]:
    """The formats `--export` names, comma-separated ("none": no export but the summary)."""
    names = [name for name in text.split(",") if name.strip()]
    if [name.strip().lower() for name in names] == ["none"]:
        return []
    try:
        return check_formats(names)
    except ValueError as exc:
        raise BadValue("--export", str(exc)) from None


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
    data: Annotated[
        list[str] | None,
        typer.Option(help="CSV/Parquet file or pg:TABLE; several: one account over them"),
    ] = None,
    symbol: Annotated[
        str,
        typer.Option(help="symbol to trade (and filter the data by); several: BTC,ETH"),
    ] = "",
    portfolio: Annotated[
        bool, typer.Option(help="every symbol of --data's symbol column, one account")
    ] = False,
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
    account: AccountOption = AccountType.MARGIN,
    leverage: LeverageOption = "1",
    maintenance_margin: MaintenanceOption = "0",
    timeframe: Annotated[str | None, typer.Option(help="resample bars, e.g. 1h")] = None,
    compare: Annotated[
        str | None,
        typer.Option(
            help="comma-separated strategies to rank (each takes the --param it has), or "
            "parameter sets: sma_cross:fast=5,sma_cross:fast=10:slow=40"
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="report folder")] = None,
    store: Annotated[bool, typer.Option(help="save bt_summary/bt_trades")] = True,
    lookahead: Annotated[
        bool,
        typer.Option(
            "--check-lookahead",
            help="first rerun on truncated data: stop (exit 1) if an indicator or order "
            "reads bars after its own",
        ),
    ] = False,
    export: Annotated[
        str,
        typer.Option(
            help="export formats, comma-separated: parquet, csv, json; none (the default): "
            "summary.json and the report only"
        ),
    ] = DEFAULT_EXPORT,
    debug: Debug = False,
) -> None:
    """Backtest a strategy (or --compare several) on history and write the report.

    A value it cannot use (an option, a data row, a parameter, a strategy that raises) ends
    it with one line on stderr naming what and where, and exit status 2; a look-ahead found
    by --check-lookahead with one line and exit status 1."""
    with one_line_errors(debug=debug), collector_held_back():
        settings = load_settings()
        fill_model = fill_model_of(
            settings,
            commission=commission,
            commission_fixed=commission_fixed,
            slippage_bps=slippage_bps,
            lot_size=lot_size,
            timing=fill_at,
        )
        margin = margin_model_of(account, leverage, maintenance_margin)
        formats = export_formats(export)
        initial_cash = parse_cash(cash)
        out = report_folder(out)
        registry = load_strategies(settings.trading.strategy_paths)
        print_plugin_errors(registry)
        params = parse_params(param or [])
        # The cheap checks first: a misspelt parameter should not wait for a big file.
        strategies = (
            create_compared(registry, compare, params)
            if compare
            else create_strategies(registry, [strategy], params, "--strategy")
        )
        labels = run_labels([(s.name, s.params) for s in strategies])
        sources, symbols = data or [], [s.strip() for s in symbol.split(",") if s.strip()]
        window = {"start": start, "end": end, "timeframe": timeframe}
        if is_portfolio(sources, symbols, portfolio):
            books = portfolio_bars(settings, sources, symbols, every_symbol=portfolio, **window)
            if lookahead:
                for book_bars in books.values():
                    _check_lookahead(strategies, book_bars, initial_cash, fill_model)
            label = "+".join(books)
        else:
            source = sources[0] if sources else ""
            bars = load_history(settings, source, symbol=symbol or None, **window)
            give_back_freed_memory()  # the file's raw table and parser buffers
            if lookahead:
                _check_lookahead(strategies, bars, initial_cash, fill_model)
            label = symbol or Path(source).stem
        run_dir = out or settings.process.var_dir / "reports" / _run_id(labels, label)
        run_dir.mkdir(parents=True, exist_ok=True)
        results = []
        for strat, name in zip(strategies, labels, strict=True):
            target = run_dir / _slug(name) if len(strategies) > 1 else run_dir
            if is_portfolio(sources, symbols, portfolio):
                book = run_portfolio(
                    strat, books, initial_cash=initial_cash, fill_model=fill_model, margin=margin
                )
                result = book.total
                _show(result)
                console.print(_symbols_table(book))
                report = write_portfolio(book, target, formats)
            else:
                result = _run_one(strat, bars, label, initial_cash, fill_model, margin)
                give_back_freed_memory()  # the run's own: its orders, the statistics' arrays
                _show(result)
                report = write_backtest_html(result, target / "report.html")
                export_result(result, target, formats)
            results.append(result)
            console.print(f"report: {report}", soft_wrap=True)
            if store:
                _store(settings.database.database_url, result, report)
        if len(results) > 1:
            _print_comparison(results, run_dir)


def _check_lookahead(
    strategies: list[Any], bars: Any, cash: Decimal, fill_model: FillModel
) -> None:
    for strat in strategies:
        finding = check_lookahead(strat, bars, initial_cash=cash, fill_model=fill_model)
        if finding is not None:
            typer.echo(f"error: {finding}", err=True)
            raise typer.Exit(LOOKAHEAD_FOUND)
        console.print(f"look-ahead check: {strat.name} reads no future bar", soft_wrap=True)


def _show(result: BacktestResult) -> None:
    console.print(summary_table(result))
    if result.liquidation is not None:
        liq = result.liquidation
        console.print(
            f"[bold red]liquidated[/] at bar {liq.bar} ({liq.ts.isoformat()}), "
            f"closed at {liq.price}: {liq.reason}; the run stopped there",
            soft_wrap=True,
        )


def _symbols_table(book: PortfolioResult) -> Table:
    """Each symbol's sleeve of a portfolio run, a row each."""
    table = Table(title=f"{book.total.strategy}: per symbol (a sleeve of the account each)")
    table.add_column("symbol")
    for key in SYMBOL_COLUMNS:
        table.add_column(key, justify="right")
    for symbol, sleeve in book.symbols.items():
        table.add_row(symbol, *(format_value(key, sleeve.stats.get(key)) for key in SYMBOL_COLUMNS))
    return table


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", name)


def _print_comparison(results: list[BacktestResult], run_dir: Path) -> None:
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
    strategy: Any,
    bars: Any,
    symbol: str,
    cash: Decimal,
    fill_model: FillModel,
    margin: MarginModel,
) -> BacktestResult:
    run = partial(
        run_backtest,
        strategy,
        bars,
        symbol=symbol,
        initial_cash=cash,
        fill_model=fill_model,
        margin=margin,
        keep_records=False,
    )
    if len(bars) < PROGRESS_MIN_BARS:
        return run()[0]
    with Progress(
        TextColumn(f"{strategy.name}"),
        BarColumn(),
        TextColumn("{task.completed:,} bars"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("backtest", total=len(bars))
        return run(progress=lambda done, _total: bar.update(task, completed=done))[0]


def _store(database_url: str, result: BacktestResult, report: Path) -> None:
    give_back_freed_memory()  # the reports' arrays, before the store's imports
    # Imported here: a SQLite file at head is written with `sqlite3` alone; SQLAlchemy and
    # Alembic (~25 MB) load only for another database, or one to migrate first.
    from sigma.store.backtest_file import store_backtest

    run_id = store_backtest(database_url, result, report_path=str(report))
    console.print(f"stored as bt_summary id {run_id}")


def print_plugin_errors(registry: StrategyRegistry) -> None:
    """Name each strategy plugin that failed to load, and why (it was skipped)."""
    for origin, problem in registry.errors.items():
        console.print(f"[yellow]plugin skipped[/] {origin}: {problem}", soft_wrap=True)

"""`sigma backtest` over several symbols sharing one account: which bars, and the report."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from sigma.cli.failures import BadValue
from sigma.cli.inputs import load_history
from sigma.config import Settings
from sigma.feeds.limits import limits_of
from sigma.feeds.loaders import source_symbols
from sigma.reports.export import export_result
from sigma.reports.html_report import write_backtest_html
from sigma.reports.portfolio import write_portfolio_html
from sigma.research.portfolio import PortfolioResult


def is_portfolio(sources: list[str], symbols: list[str], every_symbol: bool) -> bool:
    """Whether the options ask for a portfolio run: several files, several symbols, or
    every symbol of one source."""
    return len(sources) > 1 or len(symbols) > 1 or every_symbol


def portfolio_bars(
    settings: Settings,
    sources: list[str],
    symbols: list[str],
    *,
    every_symbol: bool,
    start: str | None,
    end: str | None,
    timeframe: str | None,
) -> dict[str, pd.DataFrame]:
    """The bars of each symbol, by symbol: one file (or table) per symbol, named by its
    `symbols` entry or else the file's name; or `symbols` of one source with a symbol
    column (all of them with `every_symbol`)."""
    window = {"start": start, "end": end, "timeframe": timeframe}
    if len(sources) > 1:
        if symbols and len(symbols) != len(sources):
            raise BadValue(
                "--symbol",
                f"give one symbol per --data source ({len(sources)}), or none; got {len(symbols)}",
            )
        names = symbols or [Path(source).stem for source in sources]
        if len(set(names)) < len(names):
            raise BadValue("--data", f"two sources name the same symbol: {', '.join(names)}")
        return {
            name: load_history(settings, source, symbol=name if symbols else None, **window)
            for name, source in zip(names, sources, strict=True)
        }
    source = sources[0] if sources else ""
    if not symbols:
        if not source:
            raise BadValue("--data", "a data source is required")
        symbols = source_symbols(
            source, database_url=settings.database.database_url, limits=limits_of(settings)
        )
        if not symbols:
            raise BadValue("--portfolio", f"{source} has no symbol column to take symbols from")
    return {name: load_history(settings, source, symbol=name, **window) for name in symbols}


def write_portfolio(result: PortfolioResult, folder: Path, formats: Sequence[str]) -> Path:
    """The account's report and exports in `folder`, each symbol's in `folder/<symbol>`;
    returns the account's report."""
    for symbol, sleeve in result.symbols.items():
        write_backtest_html(sleeve, folder / symbol / "report.html")
        export_result(sleeve, folder / symbol, formats)
    export_result(result.total, folder, formats)
    return write_portfolio_html(result.total, result.symbols, folder / "report.html")

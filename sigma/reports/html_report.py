"""Self-contained HTML report for one backtest: summary, parameters, charts, monthly
returns, trade list.

The file needs nothing from the network (inline CSS, inline SVG, the interactive chart's
library inlined), escapes every piece of text, and stays small for any input size: charts
are reduced to a few thousand points, trade markers and the trade table are capped at the
most recent trades. Money is shown to the cent and prices to the data's precision; the
exports keep the exact figures.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from decimal import Decimal
from os import PathLike
from pathlib import Path
from typing import Any

from sigma.engine.result import BacktestResult
from sigma.engine.trade_analytics import TradeAnalysis
from sigma.reports.charts import (
    MAX_MARKER_TRADES,
    drawdown_chart,
    equity_chart,
    price_chart,
    recent_trades,
)
from sigma.reports.comparison import render_comparison_html
from sigma.reports.display import cell_text, money, price_places
from sigma.reports.formatting import format_timestamp
from sigma.reports.interactive import interactive_chart
from sigma.reports.monthly_table import monthly_section
from sigma.reports.page import Cell, esc, key_value_table, note, page_parts, table
from sigma.reports.trade_columns import COLUMNS, result_trades

MAX_TABLE_TRADES = 1000

__all__ = [
    "MAX_MARKER_TRADES",
    "MAX_TABLE_TRADES",
    "render_backtest_html",
    "render_comparison_html",
    "write_backtest_html",
]

_SHOWN = tuple(column for column in COLUMNS if column.header)
_TRADE_HEADERS = ("#", *(column.header for column in _SHOWN))
_NUMERIC = {0} | {
    i + 1 for i, column in enumerate(_SHOWN) if column.unit not in ("text", "ts", "bool")
}
# Cells coloured by the trade's outcome.
_OUTCOME_COLUMNS = frozenset({"pnl", "return_pct"})


def _period(result: BacktestResult) -> str:
    if len(result.bars.index) == 0:
        return "no bars"
    return f"{format_timestamp(result.start)} → {format_timestamp(result.end)} UTC"


def _trade_row(number: int, row: TradeAnalysis, places: int) -> list[Cell]:
    pnl = row.trade.pnl
    outcome = "pos" if pnl > 0 else "neg" if pnl < 0 else ""
    cells: list[Cell] = [str(number)]
    for column in _SHOWN:
        text = cell_text(column.unit, column.value(row), places)
        cells.append((text, outcome) if column.name in _OUTCOME_COLUMNS else text)
    return cells


def _trades_section(result: BacktestResult, places: int) -> str:
    shown = result_trades(result, last=MAX_TABLE_TRADES)
    closed, held = len(result.trades), int(result.open_trade is not None)
    listed = closed + held
    first_number = listed - len(shown) + 1
    count = f"{closed:,}" + (f" closed, {held:,} open" if held else "")
    parts = [f"<section><h2>Trades ({count})</h2>"]
    if len(shown) < listed:
        parts.append(note(f"Showing the most recent {len(shown):,} of {listed:,} trades."))
    if shown:
        table_rows = (_trade_row(first_number + i, r, places) for i, r in enumerate(shown))
        parts.append(
            f'<div class="scroll">{table(_TRADE_HEADERS, table_rows, numeric=_NUMERIC)}</div>'
        )
    else:
        parts.append('<p class="meta">No closed trades.</p>')
    parts.append("</section>")
    return "".join(parts)


def _charts_section(result: BacktestResult, places: int) -> str:
    marked = recent_trades(result.trades, MAX_MARKER_TRADES)
    parts = ["<section><h2>Charts</h2>"]
    if len(marked) < len(result.trades):
        parts.append(
            note(
                f"Markers drawn for the most recent {len(marked):,} of "
                f"{len(result.trades):,} trades."
            )
        )
    static = price_chart(result.bars, marked, result.symbol)
    parts.append(
        interactive_chart(
            result.bars,
            result.indicators,
            marked,
            symbol=result.symbol,
            digits=places,
            fallback=static,
            open_trade=result.open_trade,
        )
    )
    parts.append(equity_chart(result.equity))
    parts.append(drawdown_chart(result.equity))
    parts.append("</section>")
    return "".join(parts)


def _shown_stats(stats: Mapping[str, Any]) -> dict[str, Any]:
    return {
        key: money(value) if isinstance(value, Decimal) and not key.endswith("_pct") else value
        for key, value in stats.items()
    }


def render_backtest_html(result: BacktestResult, *, title: str | None = None) -> str:
    """The full report as one HTML document (UTF-8 text).

    `title` defaults to "<strategy> on <symbol>". Statistic keys are shown as given, in
    order; keys ending in ``_pct`` are formatted as percentages, other Decimal statistics
    are money and shown to the cent.
    """
    return "".join(_backtest_html_parts(result, title=title))


def _backtest_html_parts(result: BacktestResult, *, title: str | None = None) -> Iterator[str]:
    """`render_backtest_html` a section at a time, each made when it is taken."""
    heading = title if title is not None else f"{result.strategy} on {result.symbol}"
    places = price_places(result.bars["close"])
    account: dict[str, Any] = {
        "initial_cash": money(result.initial_cash),
        "final_equity": money(result.final_equity),
        "final_cash": money(result.final_cash),
        "final_position": result.final_position,
    }
    if result.initial_cash:
        account["total_return_pct"] = (result.final_equity / result.initial_cash - 1) * 100
    meta = (
        f"Strategy <b>{esc(result.strategy)}</b> · symbol <b>{esc(result.symbol)}</b> · "
        f"{esc(_period(result))} · {len(result.bars.index):,} bars · "
        f"{len(result.trades):,} trades"
    )
    return page_parts(heading, _sections(result, heading, meta, account, places))


def _sections(
    result: BacktestResult, heading: str, meta: str, account: dict[str, Any], places: int
) -> Iterator[str]:
    """The report's body, each section made as it is taken (and dropped once written)."""
    yield f"<h1>{esc(heading)}</h1>"
    yield f'<p class="meta">{meta}</p>'
    yield "<section><h2>Summary</h2>"
    yield key_value_table(_shown_stats(result.stats), empty="No statistics.")
    yield "</section><section><h2>Account</h2>"
    yield key_value_table(account)
    yield "</section><section><h2>Parameters</h2>"
    yield key_value_table(result.params, empty="No parameters.")
    yield "</section>"
    yield _charts_section(result, places)
    yield monthly_section(result.equity, float(result.initial_cash))
    yield _trades_section(result, places)
    yield "<footer>Generated by SIGMA. Times are UTC.</footer>"


def write_backtest_html(result: BacktestResult, path: str | PathLike[str]) -> Path:
    """Render the report and write it (UTF-8) to `path`, creating parent folders."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Section by section: the report is never held whole (nor as its UTF-8 bytes).
    with target.open("w", encoding="utf-8") as handle:
        handle.writelines(_backtest_html_parts(result))
    return target

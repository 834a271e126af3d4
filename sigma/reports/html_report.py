"""Self-contained HTML report for one backtest: summary, parameters, charts, trade list.

The file needs nothing from the network (inline CSS, inline SVG, no JavaScript), escapes
every piece of text, and stays small for any input size: charts are decimated to about
1,500 points, trade markers and the trade table are capped at the most recent trades.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import DivisionByZero, InvalidOperation
from os import PathLike
from pathlib import Path

from sigma.domain import Trade
from sigma.engine.result import BacktestResult
from sigma.reports.charts import (
    MAX_MARKER_TRADES,
    drawdown_chart,
    equity_chart,
    price_chart,
    recent_trades,
)
from sigma.reports.comparison import render_comparison_html
from sigma.reports.formatting import MISSING, format_timestamp, format_value
from sigma.reports.page import Cell, esc, key_value_table, note, page, table

MAX_TABLE_TRADES = 1000

__all__ = [
    "MAX_MARKER_TRADES",
    "MAX_TABLE_TRADES",
    "render_backtest_html",
    "render_comparison_html",
    "write_backtest_html",
]

_TRADE_HEADERS = (
    "#",
    "Side",
    "Qty",
    "Entry (UTC)",
    "Entry price",
    "Exit (UTC)",
    "Exit price",
    "Fees",
    "PnL",
    "Return",
)


def _period(result: BacktestResult) -> str:
    if len(result.bars.index) == 0:
        return "no bars"
    return f"{format_timestamp(result.start)} → {format_timestamp(result.end)} UTC"


def _trade_return(trade: Trade) -> str:
    try:
        return format_value("return_pct", trade.return_pct * 100)
    except (DivisionByZero, InvalidOperation):  # zero entry notional: no meaningful return
        return MISSING


def _trade_row(number: int, trade: Trade) -> list[Cell]:
    outcome = "pos" if trade.pnl > 0 else "neg" if trade.pnl < 0 else ""
    return [
        str(number),
        "long" if trade.is_long else "short",
        format_value("qty", abs(trade.qty)),
        format_timestamp(trade.entry_ts),
        format_value("entry_price", trade.entry_price),
        format_timestamp(trade.exit_ts),
        format_value("exit_price", trade.exit_price),
        format_value("fees", trade.fees),
        (format_value("pnl", trade.pnl), outcome),
        (_trade_return(trade), outcome),
    ]


def _trades_section(trades: Sequence[Trade]) -> str:
    shown = recent_trades(trades, MAX_TABLE_TRADES)
    first_number = len(trades) - len(shown) + 1
    parts = [f"<section><h2>Trades ({len(trades):,})</h2>"]
    if len(shown) < len(trades):
        parts.append(note(f"Showing the most recent {len(shown):,} of {len(trades):,} trades."))
    if shown:
        rows = (_trade_row(first_number + i, t) for i, t in enumerate(shown))
        parts.append(
            f'<div class="scroll">{table(_TRADE_HEADERS, rows, numeric={0, *range(2, 10)})}</div>'
        )
    else:
        parts.append('<p class="meta">No closed trades.</p>')
    parts.append("</section>")
    return "".join(parts)


def _charts_section(result: BacktestResult) -> str:
    marked = recent_trades(result.trades, MAX_MARKER_TRADES)
    parts = ["<section><h2>Charts</h2>"]
    if len(marked) < len(result.trades):
        parts.append(
            note(
                f"Markers drawn for the most recent {len(marked):,} of "
                f"{len(result.trades):,} trades."
            )
        )
    parts.append(price_chart(result.bars, marked, result.symbol))
    parts.append(equity_chart(result.equity))
    parts.append(drawdown_chart(result.equity))
    parts.append("</section>")
    return "".join(parts)


def render_backtest_html(result: BacktestResult, *, title: str | None = None) -> str:
    """The full report as one HTML document (UTF-8 text).

    `title` defaults to "<strategy> on <symbol>". Statistic keys are shown as given, in
    order; keys ending in ``_pct`` are formatted as percentages.
    """
    heading = title if title is not None else f"{result.strategy} on {result.symbol}"
    account = {
        "initial_cash": result.initial_cash,
        "final_equity": result.final_equity,
        "final_cash": result.final_cash,
        "final_position": result.final_position,
    }
    if result.initial_cash:
        account["total_return_pct"] = (result.final_equity / result.initial_cash - 1) * 100
    meta = (
        f"Strategy <b>{esc(result.strategy)}</b> · symbol <b>{esc(result.symbol)}</b> · "
        f"{esc(_period(result))} · {len(result.bars.index):,} bars · "
        f"{len(result.trades):,} trades"
    )
    body = [
        f"<h1>{esc(heading)}</h1>",
        f'<p class="meta">{meta}</p>',
        "<section><h2>Summary</h2>",
        key_value_table(result.stats, empty="No statistics."),
        "</section><section><h2>Account</h2>",
        key_value_table(account),
        "</section><section><h2>Parameters</h2>",
        key_value_table(result.params, empty="No parameters."),
        "</section>",
        _charts_section(result),
        _trades_section(result.trades),
        "<footer>Generated by SIGMA. Times are UTC.</footer>",
    ]
    return page(heading, body)


def write_backtest_html(result: BacktestResult, path: str | PathLike[str]) -> Path:
    """Render the report and write it (UTF-8) to `path`, creating parent folders."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_backtest_html(result), encoding="utf-8")
    return target

"""The columns of the trade list, declared once for every export format and the HTML table.

A column's name carries its unit (docs/statistics.md, "Units"): ``_pct`` is percent
(5 = 5 %), ``_ts`` an ISO 8601 UTC time, ``_s`` seconds, ``_bar`` a bar number; prices,
fees and PnL are in the quote currency, `qty` in units of the instrument (negative: short).
To add a column, append one `TradeColumn`: the exports and the HTML table follow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from sigma.engine.fill_model import FillTiming
from sigma.engine.result import BacktestResult
from sigma.engine.trade_analytics import TradeAnalysis, analyse_trades

Unit = Literal["text", "bool", "qty", "price", "money", "pct", "ts", "seconds", "bar", "count"]


@dataclass(frozen=True, slots=True)
class TradeColumn:
    """One column: its export `name`, its `unit` (how it is typed in a file and shown in
    the HTML), its exact `value` for a trade, and its HTML `header` (empty: exports only)."""

    name: str
    unit: Unit
    value: Callable[[TradeAnalysis], Any]
    header: str = ""


def _side(row: TradeAnalysis) -> str:
    return "long" if row.trade.is_long else "short"


COLUMNS: tuple[TradeColumn, ...] = (
    TradeColumn("symbol", "text", lambda r: r.trade.symbol),
    TradeColumn("strategy", "text", lambda r: r.trade.strategy),
    TradeColumn("side", "text", _side, "Side"),
    TradeColumn("qty", "qty", lambda r: r.trade.qty, "Qty"),
    TradeColumn("entry_ts", "ts", lambda r: r.trade.entry_ts, "Entry (UTC)"),
    TradeColumn("entry_price", "price", lambda r: r.trade.entry_price, "Entry price"),
    TradeColumn("exit_ts", "ts", lambda r: r.trade.exit_ts, "Exit (UTC)"),
    TradeColumn("exit_price", "price", lambda r: r.trade.exit_price, "Exit price"),
    TradeColumn("fees", "money", lambda r: r.trade.fees, "Fees"),
    TradeColumn("pnl", "money", lambda r: r.trade.pnl, "PnL"),
    TradeColumn("return_pct", "pct", lambda r: r.return_pct, "Return"),
    TradeColumn("entry_bar", "bar", lambda r: r.trade.entry_bar),
    TradeColumn("exit_bar", "bar", lambda r: r.trade.exit_bar),
    TradeColumn("is_open", "bool", lambda r: r.is_open, "Status"),
    # an open trade has not exited: no reason yet
    TradeColumn("exit_reason", "text", lambda r: "" if r.is_open else r.trade.exit_reason, "Exit"),
    TradeColumn("tag", "text", lambda r: r.trade.tag, "Tag"),
    TradeColumn("duration_s", "seconds", lambda r: r.duration.total_seconds(), "Duration"),
    TradeColumn("bars_held", "count", lambda r: r.bars_held, "Bars"),
    TradeColumn("mae_price", "price", lambda r: r.mae_price),
    TradeColumn("mae_pct", "pct", lambda r: r.mae_pct, "MAE"),
    TradeColumn("mfe_price", "price", lambda r: r.mfe_price),
    TradeColumn("mfe_pct", "pct", lambda r: r.mfe_pct, "MFE"),
)
DECIMAL_UNITS: frozenset[Unit] = frozenset({"qty", "price", "money", "pct"})
DECIMAL_COLUMNS = tuple(column.name for column in COLUMNS if column.unit in DECIMAL_UNITS)
"""The columns of exact Decimal figures (written as exact strings in every export)."""


def result_trades(result: BacktestResult, *, last: int | None = None) -> list[TradeAnalysis]:
    """The rows of a run's trade list: its closed trades, then the trade still open; with
    `last`, only the last `last` of those rows (each row's analysis reads its trade's bars:
    a table of the most recent thousand need not analyse 5*10^4)."""
    trades = result.trades
    if last is not None:
        closed = max(last - (result.open_trade is not None), 0)
        trades = trades[max(len(trades) - closed, 0) :]
    return analyse_trades(
        trades,
        result.bars,
        at_close=result.fill_timing is FillTiming.CLOSE,
        open_trade=result.open_trade,
    )

"""The three standard backtest charts: price with trade markers, equity, drawdown."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from sigma.domain import Trade, utc
from sigma.reports.display import money
from sigma.reports.downsample import FloatArray
from sigma.reports.formatting import format_timestamp, format_value
from sigma.reports.svg import Line, Marker, line_chart, time_x

MAX_MARKER_TRADES = 500
CHART_POINTS = 1500

LONG_COLOR = "#16a34a"
SHORT_COLOR = "#dc2626"
PRICE_COLOR = "#374151"
EQUITY_COLOR = "#2563eb"
DRAWDOWN_COLOR = "#dc2626"


def drawdown_pct(equity: pd.Series) -> FloatArray:
    """Percent below the running peak (0 at a new high, -25 for 25 % under it).

    NaNs are skipped by the running peak (fmax) instead of poisoning everything after them;
    where no positive peak exists yet a drawdown is undefined and stays NaN.
    """
    values = np.asarray(equity, dtype=np.float64)
    if values.size == 0:
        return values
    peak = np.fmax.accumulate(values)
    undefined = ~(peak > 0)
    # In the peak's array, as `np.where(peak > 0, (values / peak - 1.0) * 100.0, np.nan)`
    # without its temporaries (32 MB at a million bars).
    with np.errstate(divide="ignore", invalid="ignore"):
        dd = np.divide(values, peak, out=peak)
    np.subtract(dd, 1.0, out=dd)
    np.multiply(dd, 100.0, out=dd)
    dd[undefined] = np.nan
    return dd


def recent_trades(trades: Sequence[Trade], limit: int) -> list[Trade]:
    """The `limit` trades that closed last, in chronological order."""
    ordered = sorted(trades, key=lambda t: (t.exit_ts, t.entry_ts))
    return ordered[-limit:] if limit > 0 else []


def trade_markers(trades: Sequence[Trade]) -> list[Marker]:
    """An entry triangle (▲ long, ▼ short) and an exit circle per trade.

    The exit circle is coloured by outcome (green profit, red loss) so winners and losers
    stand out without reading tooltips.
    """
    markers: list[Marker] = []
    for t in trades:
        side = "long" if t.is_long else "short"
        color = LONG_COLOR if t.is_long else SHORT_COLOR
        markers.append(
            Marker(
                utc(t.entry_ts).timestamp(),
                float(t.entry_price),
                "up" if t.is_long else "down",
                color,
                f"{side} entry {format_value('qty', abs(t.qty))} @ "
                f"{format_value('price', t.entry_price)}, {format_timestamp(t.entry_ts)} UTC",
                f"mk-entry mk-{side}",
            )
        )
        markers.append(
            Marker(
                utc(t.exit_ts).timestamp(),
                float(t.exit_price),
                "circle",
                LONG_COLOR if t.pnl >= 0 else SHORT_COLOR,
                f"{side} exit @ {format_value('price', t.exit_price)}, "
                f"PnL {money(t.pnl)}, {format_timestamp(t.exit_ts)} UTC",
                "mk-exit",
            )
        )
    return markers


def price_chart(bars: pd.DataFrame, trades: Sequence[Trade], symbol: str) -> str:
    """Close price with markers for `trades` (the caller caps how many)."""
    close = bars["close"] if "close" in bars.columns else pd.Series(dtype=np.float64)
    return line_chart(
        [Line(time_x(close.index), close.to_numpy(np.float64), PRICE_COLOR, "close")],
        markers=trade_markers(trades),
        title=f"{symbol} close with trades",
        max_points=CHART_POINTS,
    )


def equity_chart(equity: pd.Series) -> str:
    """Mark-to-market equity over time."""
    return line_chart(
        [Line(time_x(equity.index), equity.to_numpy(np.float64), EQUITY_COLOR, "equity")],
        title="Equity",
        max_points=CHART_POINTS,
    )


def drawdown_chart(equity: pd.Series) -> str:
    """Filled area of the percent drawdown below the running equity peak."""
    return line_chart(
        [Line(time_x(equity.index), drawdown_pct(equity), DRAWDOWN_COLOR, "drawdown", True)],
        title="Drawdown (% below peak)",
        height=200,
        baseline=0.0,
        y_format=lambda v: f"{v:,.0f}%" if abs(v) >= 1 or v == 0 else f"{v:,.2g}%",
        max_points=CHART_POINTS,
    )

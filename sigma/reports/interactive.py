"""The interactive price chart of the HTML report: price with the strategy's indicator
overlays and the trades, a volume pane, zoom (drag a range, mouse wheel) and a log-scale
switch, drawn by uPlot (MIT, vendored in `assets/`) inlined into the page with the data.

The page stays one offline file: the library, its stylesheet and the data are written into
it and nothing refers to the network. A long run is cut into at most `CHART_BUCKETS`
equal runs of bars, each drawn as one bar of the same open, high, low, close and total
volume (as resampling to a longer timeframe would), so no spike is lost at any size.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from functools import cache
from importlib import resources

import numpy as np
import numpy.typing as npt
import pandas as pd

from sigma.domain import Trade
from sigma.reports.downsample import FloatArray
from sigma.reports.page import esc
from sigma.reports.svg import time_x

CHART_BUCKETS = 2000
# An indicator whose mean is this close to the close's mean shares the price axis (as
# backtesting.py decides its overlays); any other gets the indicator pane.
_OVERLAY_TOLERANCE = 0.2
_CSS = ".chart-controls{margin:8px 0}.chart-controls .meta{margin-left:8px}#sigma-chart{width:100%}"
_LIBRARY_BANNER = "/*! https://github.com/leeoniya/uPlot (v1.6.32) */"
_LIBRARY_NOTICE = "/*! uPlot v1.6.32, (c) 2022 Leon Sorokin, MIT licence: assets/uPlot.LICENSE */"


@cache
def _asset(name: str) -> str:
    return resources.files("sigma.reports").joinpath("assets", name).read_text(encoding="utf-8")


def _script_text(text: str) -> str:
    # Inside <script> only "</" can end the element early; "<\/" means the same to JS/JSON.
    return text.replace("</", "<\\/")


def _numbers(values: npt.ArrayLike, digits: int = 10) -> str:
    """A JSON array of `values` to `digits` significant digits, null where not finite."""
    array = np.asarray(values, dtype=np.float64)
    return "[" + ",".join(f"{v:.{digits}g}" if math.isfinite(v) else "null" for v in array) + "]"


def bucket_starts(n: int, buckets: int) -> npt.NDArray[np.intp]:
    """First bar of each of at most `buckets` equal runs of `n` bars (each bar alone if
    `n` <= `buckets`)."""
    size = max(1, -(-n // max(buckets, 1)))
    return np.arange(0, n, size, dtype=np.intp)


def _last_of_buckets(values: FloatArray, starts: npt.NDArray[np.intp]) -> FloatArray:
    ends = np.append(starts[1:], len(values)) - 1
    last: FloatArray = values[ends]
    return last


def _is_overlay(values: FloatArray, close: FloatArray) -> bool:
    finite = np.isfinite(values)
    finite &= np.isfinite(close)
    if not finite.any():
        return False
    if not finite.all():  # (else no copies of the two)
        values, close = values[finite], close[finite]
    level = float(close.mean())
    return level != 0 and abs(float(values.mean()) / level - 1) < _OVERLAY_TOLERANCE


def _marks(
    trades: Sequence[Trade], stamps: FloatArray, count: int, open_trade: Trade | None
) -> dict[str, list[float | None]]:
    """Entry and exit prices placed on their buckets (the last trade wins a shared one); the
    open trade has its entry only."""
    marks: dict[str, list[float | None]] = {
        name: [None] * count for name in ("long_entry", "short_entry", "exit_win", "exit_loss")
    }
    listed = [*trades, *([open_trade] if open_trade is not None else [])]
    if not listed:
        return marks
    # One search for all fills: the bucket a time falls in starts at or before it.
    entries = np.searchsorted(stamps, time_x([t.entry_ts for t in listed]), "right") - 1
    exits = np.searchsorted(stamps, time_x([t.exit_ts for t in listed]), "right") - 1
    for t, entry, exit_ in zip(listed, entries.tolist(), exits.tolist(), strict=True):
        marks["long_entry" if t.is_long else "short_entry"][max(entry, 0)] = float(t.entry_price)
        if t is not open_trade:
            marks["exit_win" if t.pnl >= 0 else "exit_loss"][max(exit_, 0)] = float(t.exit_price)
    return marks


def chart_payload(
    bars: pd.DataFrame,
    indicators: Sequence[tuple[str, npt.ArrayLike]],
    trades: Sequence[Trade],
    *,
    symbol: str,
    digits: int,
    open_trade: Trade | None = None,
) -> str:
    """The chart's data as JSON text: bucketed time (epoch s), OHLCV, the indicators split
    into price overlays and the pane below, and the markers of `trades` and `open_trade`."""
    n = len(bars.index)
    starts = bucket_starts(n, CHART_BUCKETS)
    column = {name: bars[name].to_numpy(np.float64) for name in ("open", "high", "low", "close")}
    volume = bars["volume"].to_numpy(np.float64) if "volume" in bars.columns else np.zeros(n)
    stamps = time_x(bars.index[starts])
    close = column["close"]
    overlays: list[str] = []
    panes: list[str] = []
    for label, values in indicators:
        line = np.asarray(values, dtype=np.float64)[:n]
        shown = _numbers(_last_of_buckets(line, starts))
        entry = f'{{"label":{json.dumps(str(label))},"values":{shown}}}'
        (overlays if _is_overlay(line, close) else panes).append(entry)
    parts = {
        "symbol": json.dumps(symbol),
        "digits": str(digits),
        "t": _numbers(stamps, 12),
        "o": _numbers(column["open"][starts]),
        "h": _numbers(np.fmax.reduceat(column["high"], starts)),
        "l": _numbers(np.fmin.reduceat(column["low"], starts)),
        "c": _numbers(_last_of_buckets(close, starts)),
        "v": _numbers(np.add.reduceat(np.nan_to_num(volume), starts)),
        "overlays": "[" + ",".join(overlays) + "]",
        "panes": "[" + ",".join(panes) + "]",
        "marks": json.dumps(_marks(trades, stamps, len(starts), open_trade)),
    }
    return "{" + ",".join(f'"{key}":{value}' for key, value in parts.items()) + "}"


def interactive_chart(
    bars: pd.DataFrame,
    indicators: Sequence[tuple[str, npt.ArrayLike]],
    trades: Sequence[Trade],
    *,
    symbol: str,
    digits: int,
    fallback: str,
    open_trade: Trade | None = None,
) -> str:
    """The chart's HTML: controls, the panes' container, the inlined library and data, and
    `fallback` (the static SVG chart) for a reader with scripts turned off."""
    if len(bars.index) == 0:
        return fallback
    payload = chart_payload(
        bars, indicators, trades, symbol=symbol, digits=digits, open_trade=open_trade
    )
    library = _asset("uPlot.iife.min.js").replace(_LIBRARY_BANNER, _LIBRARY_NOTICE)
    return (
        f"<style>{_asset('uPlot.min.css')}{_CSS}</style>"
        '<div class="chart-controls"><label><input type="checkbox" id="sigma-log"> '
        'Log scale</label> <button type="button" id="sigma-reset">Reset zoom</button> '
        '<span class="meta">Drag across a pane or turn the mouse wheel to zoom; '
        "double-click to see everything.</span></div>"
        f'<div id="sigma-chart" aria-label="{esc(symbol)} interactive price chart"></div>'
        f"<noscript>{fallback}</noscript>"
        f'<script type="application/json" id="sigma-chart-data">{_script_text(payload)}</script>'
        f"<script>{_script_text(library)}</script>"
        f"<script>{_script_text(_asset('price_chart.js'))}</script>"
    )

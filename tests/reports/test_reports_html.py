"""The backtest and comparison HTML reports: self-contained, escaped, bounded in size."""

from __future__ import annotations

import dataclasses
import re
import time
from decimal import Decimal
from pathlib import Path

import pandas as pd
from reports_factories import MALICIOUS, make_bars, make_result, make_trade, small_result

from sigma.reports import render_backtest_html, render_comparison_html, write_backtest_html
from sigma.reports.charts import drawdown_pct, recent_trades
from sigma.reports.html_report import MAX_MARKER_TRADES, MAX_TABLE_TRADES


def _external_refs(document: str) -> list[str]:
    """Every http(s) reference, ignoring the SVG namespace identifier (not a fetch)."""
    cleaned = document.replace('xmlns="http://www.w3.org/2000/svg"', "")
    return re.findall(r"https?://", cleaned)


def test_report_is_self_contained_with_one_svg_per_chart() -> None:
    document = render_backtest_html(small_result())
    assert document.startswith("<!DOCTYPE html>")
    assert _external_refs(document) == []
    assert document.count("<script") == 3  # the chart's data, library and code, inline
    assert "<script src" not in document
    assert "<link" not in document
    assert "@import" not in document
    assert document.count("<svg") == 3
    assert document.count("</svg>") == 3
    for chart_title in ("close with trades", "Equity", "Drawdown (% below peak)"):
        assert chart_title in document


def test_markers_one_entry_and_one_exit_per_trade() -> None:
    document = render_backtest_html(small_result())
    assert document.count('class="mk mk-entry mk-long"') == 1
    assert document.count('class="mk mk-entry mk-short"') == 1
    assert document.count('class="mk mk-exit"') == 2


def test_malicious_strategy_name_and_params_are_escaped() -> None:
    result = small_result(strategy=MALICIOUS)
    result.params[MALICIOUS] = MALICIOUS
    result.stats["label"] = '"><img src=x onerror=alert(1)>'
    document = render_backtest_html(result)
    assert MALICIOUS not in document
    assert document.count("<script") == 3  # only the report's own
    assert "<img" not in document
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in document


def test_title_is_escaped_and_used() -> None:
    document = render_backtest_html(small_result(), title="A & B <i>")
    assert "<title>A &amp; B &lt;i&gt;</title>" in document
    assert "<h1>A &amp; B &lt;i&gt;</h1>" in document


def test_stats_keys_params_and_trades_are_shown() -> None:
    result = small_result()
    document = render_backtest_html(result)
    for key in result.stats:
        assert f'<th scope="row">{key}</th>' in document
    assert "1.23 %" in document  # total_return_pct, already scaled to percent
    assert "-3.50 %" in document
    assert "3d 04:05:06" in document  # timedelta
    assert "12.35" in document  # a Decimal statistic is money: shown to the cent
    assert "12.345678901234567890" not in document  # (the exports keep every digit)
    assert "a &lt; b &amp; c" in document  # parameter text escaped
    assert "10,123.45<" in document  # final equity to the cent
    assert "10,123.450000000000000001" not in document
    assert "Trades (2)" in document
    assert 'class="num pos"' in document and 'class="num neg"' in document


def test_empty_result_renders() -> None:
    bars = make_bars(0)
    result = make_result(bars, [])
    result.stats.clear()
    result.params.clear()
    result.initial_cash = Decimal(0)
    document = render_backtest_html(result)
    assert "no bars" in document
    assert "No closed trades." in document
    assert "No statistics." in document and "No parameters." in document
    assert document.count("no data</text>") == 3


def test_zero_notional_trade_shows_dash_return() -> None:
    bars = make_bars(10)
    trade = make_trade(bars, 1, 2, "1", "0")
    zero = dataclasses.replace(trade, entry_price=Decimal(0))
    document = render_backtest_html(make_result(bars, [zero]))
    assert "—" in document


def test_200k_bars_stay_small_and_fast() -> None:
    bars = make_bars(200_000, freq="min")
    trades = [
        make_trade(bars, i, i + 40, "1" if i % 300 else "-2", "1.5" if i % 240 else "-0.5")
        for i in range(0, 199_000, 120)
    ]
    assert len(trades) > MAX_TABLE_TRADES
    started = time.perf_counter()
    document = render_backtest_html(make_result(bars, trades))
    elapsed = time.perf_counter() - started
    assert len(document.encode()) < 2_000_000
    assert elapsed < 2.0
    marker_count = document.count('class="mk mk-entry') + document.count('class="mk mk-exit"')
    assert marker_count == 2 * MAX_MARKER_TRADES
    assert f"most recent {MAX_MARKER_TRADES} of {len(trades):,} trades" in document
    assert f"Showing the most recent {MAX_TABLE_TRADES:,} of {len(trades):,} trades" in document
    # Numbering continues from the dropped trades, so the last row is the real last trade.
    assert f'<td class="num">{len(trades)}</td>' in document
    for polyline in re.findall(r'<polyline points="([^"]*)"', document):
        assert len(polyline.split()) <= 1500


def test_recent_trades_orders_by_exit() -> None:
    trades = small_result().trades
    assert recent_trades(list(reversed(trades)), 1) == [trades[-1]]
    assert recent_trades(trades, 0) == []


def test_drawdown_pct_running_peak_and_nan() -> None:
    equity = pd.Series([100.0, 120.0, float("nan"), 90.0, 130.0])
    dd = drawdown_pct(equity)
    assert dd[0] == 0 and dd[1] == 0 and dd[4] == 0
    assert abs(dd[3] - (-25.0)) < 1e-12
    assert pd.isna(dd[2])
    assert pd.isna(drawdown_pct(pd.Series([-5.0, 1.0]))[0])
    assert drawdown_pct(pd.Series([], dtype=float)).size == 0


def test_write_backtest_html_creates_folders(tmp_path: Path) -> None:
    target = write_backtest_html(small_result(), tmp_path / "a" / "b" / "report.html")
    assert target.exists()
    assert target.read_text(encoding="utf-8").count("<svg") == 3


def test_comparison_report() -> None:
    first = small_result()
    second = make_result(make_bars(30, start="2024-01-01 12:00"), [], strategy=MALICIOUS)
    third = small_result()  # same label as the first: numbered
    third.stats["extra_pct"] = 5.0
    document = render_comparison_html(
        [first, second, third],
        [("sma_cross", 1.5), (MALICIOUS, -0.25)],
        "Prefer <b>sma_cross</b>\nbecause it drew down less.",
    )
    assert _external_refs(document) == []
    assert MALICIOUS not in document and "<b>" not in document
    assert document.count("<svg") == 1
    assert document.count('<g class="legend-item">') == 3
    assert document.count("<polyline") == 3
    assert "sma_cross (BTC/USDT) #1" in document and "sma_cross (BTC/USDT) #3" in document
    assert "Ranking" in document and "-0.25" in document
    assert "extra_pct" in document and "5.00 %" in document
    colours = set(re.findall(r'<polyline[^>]*stroke="(#[0-9a-f]{6})"', document))
    assert len(colours) == 3


def test_comparison_empty_inputs() -> None:
    result = small_result()
    result.stats.clear()
    result.equity = pd.Series([-1.0] * len(result.equity), index=result.equity.index)
    document = render_comparison_html([result], [], "")
    assert "No ranking." in document
    assert "No statistics." in document
    assert "no data</text>" in document  # a never-positive curve cannot be rebased

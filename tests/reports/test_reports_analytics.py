"""Trade analytics in the exports and the HTML report: one unit per column, the open trade,
monthly returns, money rounded for reading, and the interactive chart (offline)."""

from __future__ import annotations

import csv
import json
import re
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from reports_factories import MALICIOUS, make_bars, make_result, make_trade, small_result

from sigma.engine.fill_model import FillTiming
from sigma.engine.result import BacktestResult
from sigma.reports import export_result, render_backtest_html
from sigma.reports.display import cell_text, money, price_places, rounded
from sigma.reports.export import TRADE_COLUMNS
from sigma.reports.interactive import CHART_BUCKETS, bucket_starts, chart_payload
from sigma.reports.monthly_table import monthly_grid

D = Decimal


def with_open_trade() -> BacktestResult:
    """`small_result` still holding 2 units bought at bar 40 at the end (bar 47)."""
    result = small_result()
    bars = result.bars
    last_close = D(repr(float(bars["close"].iloc[-1])))
    held = make_trade(bars, 40, 47, "2", "0")
    result.open_trade = replace(
        held, exit_price=last_close, fees=D("0.1"), pnl=2 * (last_close - held.entry_price)
    )
    return result


def payload(document: str) -> dict[str, object]:
    match = re.search(r'id="sigma-chart-data">(.*?)</script>', document)
    assert match is not None
    data = json.loads(match.group(1).replace("<\\/", "</"))
    assert isinstance(data, dict)
    return data


def test_trade_columns_carry_their_units_and_the_open_trade(tmp_path: Path) -> None:
    result = with_open_trade()
    export_result(result, tmp_path, ["csv", "json", "parquet"])
    with (tmp_path / "trades.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == list(TRADE_COLUMNS)
    assert [r["is_open"] for r in rows] == ["false", "false", "true"]
    first, last = rows[0], rows[-1]
    trade = result.trades[0]
    assert D(first["return_pct"]) == 100 * trade.pnl / (abs(trade.qty) * trade.entry_price)
    assert float(first["duration_s"]) == 8 * 3600  # bars 2 to 10 of hourly bars
    assert int(first["bars_held"]) == 8
    entry = trade.entry_price
    held = result.bars.iloc[2:10]
    high = max(D(repr(v)) for v in held["high"])
    low = min(D(repr(v)) for v in held["low"])
    assert D(first["mfe_price"]) == max(high, trade.exit_price, entry) - entry
    assert D(first["mae_price"]) == entry - min(low, trade.exit_price, entry)
    assert D(first["mae_pct"]) == 100 * D(first["mae_price"]) / entry
    assert last["exit_ts"] == "2024-01-02T23:00:00Z" and last["fees"] == "0.1"
    assert D(last["exit_price"]) == result.open_trade.exit_price  # type: ignore[union-attr]
    records = json.loads((tmp_path / "trades.json").read_text(encoding="utf-8"))
    assert records[-1]["is_open"] is True and records[0]["is_open"] is False
    assert isinstance(records[0]["duration_s"], float) and records[0]["bars_held"] == 8
    schema = pq.read_schema(tmp_path / "trades.parquet")
    assert schema.field("is_open").type == pa.bool_()
    assert schema.field("duration_s").type == pa.float64()
    assert schema.field("bars_held").type == pa.int64()
    assert schema.field("mae_pct").type == pa.string()  # exact Decimal text


def test_trades_at_close_timing_shift_the_held_bars(tmp_path: Path) -> None:
    result = small_result()
    result.fill_timing = FillTiming.CLOSE
    export_result(result, tmp_path, ["json"])
    records = json.loads((tmp_path / "trades.json").read_text(encoding="utf-8"))
    held = result.bars.iloc[3:11]
    entry = result.trades[0].entry_price
    high = max([D(repr(v)) for v in held["high"]] + [result.trades[0].exit_price, entry])
    assert D(records[0]["mfe_price"]) == high - entry


def test_monthly_export(tmp_path: Path) -> None:
    bars = make_bars(60, freq="D", start="2024-01-15")
    result = make_result(bars, [])
    export_result(result, tmp_path)
    months = pd.read_csv(tmp_path / "monthly.csv")
    assert months["month"].tolist() == ["2024-01", "2024-02", "2024-03"]
    equity = result.equity
    jan_end = equity[equity.index < "2024-02-01"].iloc[-1]
    assert months["equity_end"][0] == jan_end
    assert months["return_pct"][0] == pytest.approx(100 * (jan_end / 10_000 - 1))
    records = json.loads((tmp_path / "monthly.json").read_text(encoding="utf-8"))
    assert records[0] == {
        "month": "2024-01",
        "equity_end": jan_end,
        "return_pct": months["return_pct"][0],
    }
    table = pq.read_table(tmp_path / "monthly.parquet")
    assert table.column_names == ["month", "equity_end", "return_pct"]


def test_html_rounds_money_and_prices_and_shows_the_open_trade() -> None:
    result = with_open_trade()
    document = render_backtest_html(result)
    assert "Trades (2 closed, 1 open)" in document
    assert ">open</td>" in document and ">closed</td>" in document
    for header in ("Duration", "MAE", "MFE", "Bars", "Status"):
        assert f'<th scope="col">{header}</th>' in document
    assert ">12.35</td>" in document  # the winner's PnL to the cent
    assert "0.123456789012345678" not in document  # fees rounded: 0.12
    assert ">0.12</td>" in document
    assert ">08:00:00</td>" in document  # the winner's 8 hours
    assert ">23:00:00</td>" not in document and ">07:00:00</td>" in document  # the open one
    assert "Monthly returns (%)" in document and '<th scope="col">Year total</th>' in document
    marks = payload(document)["marks"]
    assert isinstance(marks, dict)
    assert marks["long_entry"][40] == float(result.open_trade.entry_price)  # type: ignore[union-attr]
    assert [i for i, v in enumerate(marks["exit_win"]) if v is not None] == [10]  # closed only


def test_monthly_grid_compounds_each_year() -> None:
    months = pd.DataFrame(
        {
            "month": ["2023-12", "2024-01", "2024-03"],
            "equity_end": [1.0, 1.0, 1.0],
            "return_pct": [5.0, 10.0, -10.0],
        }
    )
    rows = monthly_grid(months)
    assert rows[0][0] == "2023" and rows[0][12] == ("5.00 %", "pos")
    assert rows[0][13] == ("5.00 %", "pos")
    assert rows[1][1] == ("10.00 %", "pos") and rows[1][2] == "" and rows[1][3][1] == "neg"
    assert rows[1][13] == ("-1.00 %", "neg")  # 1.1 * 0.9 - 1
    flat = monthly_grid(pd.DataFrame({"month": ["2024-01"], "equity_end": [1], "return_pct": [0]}))
    assert flat[0][1] == ("0.00 %", "")


def test_display_rounding() -> None:
    assert price_places([65000.5, 65001.25]) == 2
    assert price_places([0.00001234, float("nan")]) == 8
    assert price_places([1.123456789012]) == 8
    assert price_places([]) == 2
    assert rounded(D("2.345"), 2) == "2.34" and rounded(D("2.355"), 2) == "2.36"  # half even
    assert rounded(D("1234567.891"), 2) == "1,234,567.89"
    assert rounded(D("NaN"), 2) == "—"
    assert money(D("10123.450000000000000001")) == "10,123.45"
    assert money(1.5) == "1.5"
    assert cell_text("price", D("0.000012345"), 8) == "0.00001234"
    assert cell_text("pct", None, 2) == "—"
    assert cell_text("pct", D("12.3456"), 2) == "12.35 %"
    assert cell_text("seconds", 90061.0, 2) == "1d 01:01:01"
    assert cell_text("bool", True, 2) == "open"
    assert cell_text("count", 1234, 2) == "1,234"
    assert cell_text("qty", D("-0.00012345"), 2) == "-0.00012345"


def test_interactive_chart_is_offline_with_overlays_volume_zoom_and_log_scale() -> None:
    result = small_result()
    close = result.bars["close"].to_numpy()
    result.indicators = [
        ("fast_ma", close * 1.01),
        ("rsi", np.linspace(20, 80, len(close))),
        (MALICIOUS, close),
    ]
    document = render_backtest_html(result)
    assert "://" not in document  # no URL at all, so nothing can be fetched
    assert "<script src" not in document and "<link" not in document
    assert MALICIOUS not in document
    data = payload(document)
    overlays = [o["label"] for o in data["overlays"]]  # type: ignore[union-attr,index]
    panes = [p["label"] for p in data["panes"]]  # type: ignore[union-attr,index]
    assert overlays == ["fast_ma", MALICIOUS] and panes == ["rsi"]
    assert data["v"] == [10.0] * 48 and data["digits"] == 8
    assert 'id="sigma-log"' in document and "distr: 3, range: logRange" in document  # log
    assert 'id="sigma-reset"' in document and '"wheel"' in document  # zoom: reset, wheel
    assert "drag: { x: true" in document  # zoom: drag a range
    assert "uPlot.paths.bars" in document  # the volume pane's bars
    assert "(c) 2022 Leon Sorokin, MIT" in document  # the library's licence notice
    assert "<noscript><svg" in document  # the static chart without scripts


def test_payload_buckets_keep_extremes_and_volume() -> None:
    n = 3 * CHART_BUCKETS + 1
    bars = make_bars(n, freq="min")
    bars.loc[bars.index[2], "high"] = 1e6  # a spike inside the first bucket
    bars["volume"] = 1.0
    trades = [make_trade(bars, 1, 5, "1", "1"), make_trade(bars, 10, 20, "-1", "-1")]
    data = json.loads(chart_payload(bars, [], trades, symbol="X", digits=2))
    starts = bucket_starts(n, CHART_BUCKETS)
    assert len(data["t"]) == len(starts) <= CHART_BUCKETS
    assert data["h"][0] == 1e6 and data["v"][0] == starts[1] and sum(data["v"]) == n
    assert data["c"][0] == pytest.approx(bars["close"].iloc[starts[1] - 1], rel=1e-9)
    assert data["o"][1] == pytest.approx(bars["open"].iloc[starts[1]], rel=1e-9)
    assert data["marks"]["long_entry"][0] == float(trades[0].entry_price)
    assert data["marks"]["exit_win"][1] == float(trades[0].exit_price)  # bar 5: bucket 1
    assert data["marks"]["short_entry"][2] == float(trades[1].entry_price)
    assert data["marks"]["exit_loss"][5] == float(trades[1].exit_price)
    assert list(bucket_starts(3, 10)) == [0, 1, 2]


def test_payload_without_volume_and_with_an_all_nan_indicator() -> None:
    bars = make_bars(5).drop(columns="volume")
    data = json.loads(chart_payload(bars, [("warm", np.full(5, np.nan))], [], symbol="X", digits=2))
    assert data["v"] == [0.0] * 5
    assert data["panes"] == [{"label": "warm", "values": [None] * 5}]

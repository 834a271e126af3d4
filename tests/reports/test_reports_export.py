"""Exports: exact Decimal round trips through CSV, JSON and Parquet; strict JSON."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from reports_factories import make_bars, make_result, make_trade, small_result

from sigma.engine.result import BacktestResult
from sigma.reports import export_result
from sigma.reports.export import DECIMAL_COLUMNS, TRADE_COLUMNS, iso_utc, neutralise_cell

EXACT_FIELDS = ("qty", "entry_price", "exit_price", "fees", "pnl")


def _expected(result: BacktestResult) -> list[dict[str, str]]:
    return [{name: str(getattr(t, name)) for name in EXACT_FIELDS} for t in result.trades]


def _strict_json(path: Path) -> object:
    def reject(token: str) -> None:
        raise AssertionError(f"non-standard JSON constant {token}")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=reject)


def test_export_writes_all_files(tmp_path: Path) -> None:
    paths = export_result(small_result(), tmp_path / "out")
    assert [p.name for p in paths] == [
        "trades.csv",
        "equity.csv",
        "monthly.csv",
        "trades.json",
        "equity.json",
        "monthly.json",
        "trades.parquet",
        "equity.parquet",
        "monthly.parquet",
        "summary.json",
    ]
    assert all(p.exists() for p in paths)


def test_csv_round_trip_is_exact(tmp_path: Path) -> None:
    result = small_result()
    export_result(result, tmp_path, ["csv"])
    with (tmp_path / "trades.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == list(TRADE_COLUMNS)
    assert [{k: r[k] for k in EXACT_FIELDS} for r in rows] == _expected(result)
    assert rows[0]["fees"] == "0.123456789012345678"
    assert rows[0]["pnl"] == "12.345678901234567890"
    assert rows[1]["side"] == "short" and rows[1]["qty"] == "-1.25"
    assert Decimal(rows[0]["return_pct"]) == 100 * result.trades[0].return_pct  # percent
    assert rows[0]["entry_ts"] == "2024-01-01T02:00:00Z"
    equity = pd.read_csv(tmp_path / "equity.csv")
    assert list(equity.columns) == ["ts", "equity"]
    assert equity["equity"].tolist() == result.equity.tolist()  # repr round-trips floats
    parsed = pd.to_datetime(equity["ts"], utc=True)
    assert (parsed.to_numpy() == result.equity.index.to_numpy()).all()


def test_json_round_trip_is_exact_and_strict(tmp_path: Path) -> None:
    result = small_result()
    result.equity.iloc[3] = float("nan")
    result.equity.iloc[4] = float("inf")
    export_result(result, tmp_path, ("json",))
    trades = _strict_json(tmp_path / "trades.json")
    assert isinstance(trades, list)
    assert [{k: t[k] for k in EXACT_FIELDS} for t in trades] == _expected(result)
    assert trades[0]["entry_bar"] == 2
    equity = _strict_json(tmp_path / "equity.json")
    assert isinstance(equity, list) and len(equity) == len(result.equity)
    assert equity[3]["equity"] is None and equity[4]["equity"] is None
    assert equity[0] == {"ts": "2024-01-01T00:00:00Z", "equity": result.equity.iloc[0]}


def test_parquet_round_trip_is_exact(tmp_path: Path) -> None:
    result = small_result()
    export_result(result, tmp_path, ["parquet"])
    table = pq.read_table(tmp_path / "trades.parquet")
    assert table.column_names == list(TRADE_COLUMNS)
    assert table.schema.metadata[b"sigma.decimal_columns"].decode().split(",") == list(
        DECIMAL_COLUMNS
    )
    rows = table.to_pylist()
    assert [{k: r[k] for k in EXACT_FIELDS} for r in rows] == _expected(result)
    assert rows[0]["entry_ts"] == result.trades[0].entry_ts
    equity = pq.read_table(tmp_path / "equity.parquet").to_pandas()
    assert equity["equity"].tolist() == result.equity.tolist()
    assert (equity["ts"].to_numpy() == result.equity.index.to_numpy()).all()


def test_summary_json(tmp_path: Path) -> None:
    result = small_result()
    export_result(result, tmp_path, [])
    summary = _strict_json(tmp_path / "summary.json")
    assert isinstance(summary, dict)
    assert summary["strategy"] == "sma_cross" and summary["symbol"] == "BTC/USDT"
    assert summary["initial_cash"] == "10000"
    assert summary["final_equity"] == "10123.450000000000000001"
    assert summary["params"]["ratio"] == "0.50"
    assert summary["stats"]["profit_factor"] is None  # NaN -> null
    assert summary["stats"]["best_trade"] == "12.345678901234567890"
    assert summary["start"] == "2024-01-01T00:00:00Z"
    assert summary["bars"] == 48 and summary["trades"] == 2
    assert list(summary["stats"]) == list(result.stats)


def test_empty_result_exports(tmp_path: Path) -> None:
    result = make_result(make_bars(0), [])
    export_result(result, tmp_path)
    assert _strict_json(tmp_path / "trades.json") == []
    assert _strict_json(tmp_path / "equity.json") == []
    assert pq.read_table(tmp_path / "trades.parquet").num_rows == 0
    assert (tmp_path / "trades.csv").read_text().strip() == ",".join(TRADE_COLUMNS)
    summary = _strict_json(tmp_path / "summary.json")
    assert isinstance(summary, dict) and summary["start"] is None


def test_zero_notional_trade_has_null_return(tmp_path: Path) -> None:
    bars = make_bars(5)
    trade = make_trade(bars, 0, 1, "0", "0")
    export_result(make_result(bars, [trade]), tmp_path, ["json", "csv"])
    trades = _strict_json(tmp_path / "trades.json")
    assert isinstance(trades, list) and trades[0]["return_pct"] is None
    assert "return_pct" in (tmp_path / "trades.csv").read_text()


def test_unknown_format_names_it_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'xlsx'"):
        export_result(small_result(), tmp_path / "x", ["csv", "xlsx"])
    assert not (tmp_path / "x").exists()


def test_format_names_are_normalised_and_deduplicated(tmp_path: Path) -> None:
    paths = export_result(small_result(), tmp_path, ["CSV", ".csv"])
    assert [p.name for p in paths] == ["trades.csv", "equity.csv", "monthly.csv", "summary.json"]
    paths = export_result(small_result(), tmp_path, "json")
    assert [p.name for p in paths] == [
        "trades.json",
        "equity.json",
        "monthly.json",
        "summary.json",
    ]


def test_iso_utc_resolutions() -> None:
    naive = pd.DatetimeIndex(["2024-01-01 00:00:00.5"]).as_unit("ns")
    assert iso_utc(naive) == ["2024-01-01T00:00:00.500000000Z"]
    berlin = pd.DatetimeIndex(["2024-06-01 02:00"]).tz_localize("Europe/Berlin")
    assert iso_utc(berlin) == ["2024-06-01T00:00:00Z"]
    assert iso_utc(np.array(["2024-01-01"], dtype="datetime64[s]").tolist()) == [
        "2024-01-01T00:00:00Z"
    ]


@pytest.mark.parametrize("name", ["=2+3", "+SUM(A1)", "-1+1", "@cmd", "\tx", "\rx"])
def test_csv_text_cells_that_look_like_formulas_are_neutralised(tmp_path: Path, name: str) -> None:
    result = small_result(strategy=name)
    result.trades[:] = [replace(t, symbol=name, strategy=name) for t in result.trades]
    export_result(result, tmp_path, formats="csv")
    with (tmp_path / "trades.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["symbol"] for r in rows} == {r["strategy"] for r in rows} == {f"'{name}"}
    # Numbers keep their sign: only text cells are quoted.
    assert [r["pnl"] for r in rows] == ["12.345678901234567890", "-3.10"]
    assert [r["qty"] for r in rows] == ["0.5", "-1.25"]


def test_ordinary_text_cells_are_left_as_they_are() -> None:
    assert neutralise_cell("BTC/USDT") == "BTC/USDT"
    assert neutralise_cell("a=b") == "a=b"
    assert neutralise_cell("=1") == "'=1"

"""Writing a backtest result to CSV, JSON and Parquet files for other tools.

Money stays exact: Decimal fields are written as their exact strings in every format (in
Parquet as string columns, listed in the schema metadata, because decimal128 would force
one scale on all values and change e.g. "1.50" into "1.5000"). Timestamps are ISO 8601
UTC text in CSV/JSON and timestamp[UTC] in Parquet. JSON never contains NaN: missing or
non-finite numbers are written as null. Text cells of a CSV that a spreadsheet would run as
a formula (a symbol named ``=2+3``) are written with a leading single quote.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sigma.engine.result import BacktestResult
from sigma.engine.trade_analytics import TradeAnalysis, monthly_returns
from sigma.reports.formatting import to_jsonable
from sigma.reports.trade_columns import (
    COLUMNS,
    DECIMAL_COLUMNS,
    DECIMAL_UNITS,
    Unit,
    result_trades,
)

__all__ = [
    "DECIMAL_COLUMNS",
    "FORMATS",
    "TRADE_COLUMNS",
    "check_formats",
    "export_result",
    "iso_utc",
    "neutralise_cell",
    "summary",
    "trade_records",
]

FORMATS = ("csv", "json", "parquet")
TRADE_COLUMNS = tuple(column.name for column in COLUMNS)
_FILES = ("trades", "equity", "monthly")
_TEXT_COLUMNS = tuple(column.name for column in COLUMNS if column.unit == "text")
# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_TICKS_PER_SECOND = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}


def iso_utc(values: pd.Index | Sequence[Any]) -> list[str]:
    """ISO 8601 UTC strings ("2024-01-01T00:00:00Z"), vectorised for long indexes.

    Whole seconds are written without a fraction; otherwise the index's own resolution is
    kept so nothing is rounded away.
    """
    index = pd.DatetimeIndex(values if isinstance(values, pd.Index) else list(values))
    index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    raw = index.tz_localize(None).to_numpy()
    resolution: Any = np.datetime_data(raw.dtype)[0]  # "s", "ms", "us" or "ns" in pandas
    whole = bool(np.all(raw.view(np.int64) % _TICKS_PER_SECOND[resolution] == 0))
    return [str(s) for s in np.datetime_as_string(raw, "s" if whole else resolution, "UTC")]


def _jsonable(unit: Unit, value: Any, stamp: str) -> Any:
    if value is None:
        return None
    if unit == "ts":
        return stamp
    return str(value) if unit in DECIMAL_UNITS else value


def trade_records(rows: Sequence[TradeAnalysis]) -> list[dict[str, Any]]:
    """One dict per trade in `TRADE_COLUMNS` order: Decimals as exact strings, times as ISO
    text, the rest as JSON values (see `sigma.reports.trade_columns` for names and units)."""
    stamps = {
        column.name: iso_utc([column.value(r) for r in rows]) if rows else []
        for column in COLUMNS
        if column.unit == "ts"
    }
    records = []
    for i, row in enumerate(rows):
        record = {}
        for column in COLUMNS:
            stamp = stamps[column.name][i] if column.unit == "ts" else ""
            record[column.name] = _jsonable(column.unit, column.value(row), stamp)
        records.append(record)
    return records


def neutralise_cell(text: str) -> str:
    """`text` made safe for a spreadsheet: a cell starting like a formula gets a leading single
    quote (OWASP's advice), so it is shown as text instead of being run. For text cells only:
    numbers (a negative P&L) keep their sign."""
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


def _csv_cell(key: str, value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return neutralise_cell(value) if key in _TEXT_COLUMNS and isinstance(value, str) else value


def _csv_safe(record: dict[str, Any]) -> dict[str, Any]:
    return {key: _csv_cell(key, value) for key, value in record.items()}


def _write_json(path: Path, data: Any) -> None:
    # allow_nan=False turns any NaN that slipped past to_jsonable into an error, not bad JSON.
    path.write_text(json.dumps(data, allow_nan=False, indent=2) + "\n", encoding="utf-8")


def _write_trades(records: list[dict[str, Any]], fmt: str, path: Path) -> None:
    if fmt == "csv":
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=TRADE_COLUMNS)
            writer.writeheader()
            writer.writerows(map(_csv_safe, records))
    else:
        _write_json(path, records)


def _write_equity(equity: pd.Series, fmt: str, path: Path) -> None:
    values = np.asarray(equity, dtype=np.float64)
    stamps = iso_utc(equity.index)
    # repr(float) is the shortest text that reads back to the same float, and valid JSON.
    numbers: list[str | None] = list(map(repr, values.tolist()))
    for i in np.flatnonzero(~np.isfinite(values)).tolist():
        numbers[i] = None
    if fmt == "csv":
        with path.open("w", newline="", encoding="utf-8") as fh:
            fh.write("ts,equity\n")
            fh.writelines(
                f"{ts},{'' if v is None else v}\n" for ts, v in zip(stamps, numbers, strict=True)
            )
    else:
        # Hand-built because json.dumps over a million dicts is several times slower.
        rows = ",\n".join(
            f'{{"ts":"{ts}","equity":{"null" if v is None else v}}}'
            for ts, v in zip(stamps, numbers, strict=True)
        )
        path.write_text(f"[\n{rows}\n]\n" if rows else "[]\n", encoding="utf-8")


def _write_monthly(months: pd.DataFrame, fmt: str, path: Path) -> None:
    records = to_jsonable(months.to_dict("records"))
    if fmt == "json":
        _write_json(path, records)
        return
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(months.columns))
        writer.writeheader()
        writer.writerows(records)


def summary(result: BacktestResult) -> dict[str, Any]:
    """JSON-safe summary: identity, parameters, statistics and exact account figures."""
    has_bars = len(result.bars.index) > 0
    return {
        "strategy": result.strategy,
        "symbol": result.symbol,
        "start": iso_utc([result.start])[0] if has_bars else None,
        "end": iso_utc([result.end])[0] if has_bars else None,
        "bars": len(result.bars.index),
        "trades": len(result.trades),
        "params": to_jsonable(result.params),
        "stats": to_jsonable(result.stats),
        "initial_cash": str(result.initial_cash),
        "final_equity": str(result.final_equity),
        "final_cash": str(result.final_cash),
        "final_position": str(result.final_position),
    }


def check_formats(formats: str | Iterable[str]) -> list[str]:
    """`formats` as known format names ("CSV" and ".csv" are "csv"), each once, in order;
    ValueError naming the first one that is not known."""
    wanted = [formats] if isinstance(formats, str) else list(formats)
    checked: list[str] = []
    for fmt in wanted:
        name = str(fmt).strip().lower().lstrip(".")
        if name not in FORMATS:
            raise ValueError(f"unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}")
        if name not in checked:
            checked.append(name)
    return checked


def export_result(
    result: BacktestResult,
    directory: str | PathLike[str],
    formats: str | Iterable[str] = FORMATS,
) -> list[Path]:
    """Write ``trades.<ext>`` (the closed trades, then the open one flagged `is_open`),
    ``equity.<ext>`` and ``monthly.<ext>`` (calendar-month returns) per format, then
    ``summary.json``.

    `directory` is created if needed. Every format is checked before anything is written,
    so an unknown one raises ValueError (naming it) and leaves no partial export.
    Returns the written paths in order.
    """
    checked = check_formats(formats)
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if checked:  # the trade analysis (MAE/MFE over the bars) only for files that show it
        rows = result_trades(result)
        records = trade_records(rows)
        months = monthly_returns(result.equity, float(result.initial_cash))
    for fmt in checked:
        trades, equity, monthly = (folder / f"{name}.{fmt}" for name in _FILES)
        if fmt == "parquet":
            # Imported here: pyarrow (~35 MB) loads only for a Parquet export.
            from sigma.reports import export_parquet

            export_parquet.write_trades(rows, records, trades)
            export_parquet.write_equity(result.equity, equity)
            export_parquet.write_monthly(months, monthly)
        else:
            _write_trades(records, fmt, trades)
            _write_equity(result.equity, fmt, equity)
            _write_monthly(months, fmt, monthly)
        written += [trades, equity, monthly]
    summary_path = folder / "summary.json"
    _write_json(summary_path, summary(result))
    written.append(summary_path)
    return written

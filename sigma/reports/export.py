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
from decimal import Decimal, DivisionByZero, InvalidOperation
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sigma.domain import Trade, utc
from sigma.engine.result import BacktestResult
from sigma.reports.formatting import to_jsonable

FORMATS = ("csv", "json", "parquet")
TRADE_COLUMNS = (
    "symbol",
    "strategy",
    "side",
    "qty",
    "entry_ts",
    "entry_price",
    "exit_ts",
    "exit_price",
    "fees",
    "pnl",
    "return_pct",
    "entry_bar",
    "exit_bar",
)
DECIMAL_COLUMNS = ("qty", "entry_price", "exit_price", "fees", "pnl", "return_pct")
_TIMESTAMP_COLUMNS = ("entry_ts", "exit_ts")
_INT_COLUMNS = ("entry_bar", "exit_bar")
_TEXT_COLUMNS = ("symbol", "strategy", "side")
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


def _return_pct(trade: Trade) -> Decimal | None:
    try:
        return trade.return_pct
    except (DivisionByZero, InvalidOperation):  # zero entry notional: undefined, not zero
        return None


def trade_records(trades: Sequence[Trade]) -> list[dict[str, Any]]:
    """One dict per trade in `TRADE_COLUMNS` order; Decimals and timestamps as strings.

    `return_pct` is the net return as a fraction of the entry notional (0.05 = 5 %).
    """
    entries = iso_utc([t.entry_ts for t in trades]) if trades else []
    exits = iso_utc([t.exit_ts for t in trades]) if trades else []
    records = []
    for t, entry_ts, exit_ts in zip(trades, entries, exits, strict=True):
        ret = _return_pct(t)
        records.append(
            {
                "symbol": t.symbol,
                "strategy": t.strategy,
                "side": "long" if t.is_long else "short",
                "qty": str(t.qty),
                "entry_ts": entry_ts,
                "entry_price": str(t.entry_price),
                "exit_ts": exit_ts,
                "exit_price": str(t.exit_price),
                "fees": str(t.fees),
                "pnl": str(t.pnl),
                "return_pct": None if ret is None else str(ret),
                "entry_bar": t.entry_bar,
                "exit_bar": t.exit_bar,
            }
        )
    return records


def neutralise_cell(text: str) -> str:
    """`text` made safe for a spreadsheet: a cell starting like a formula gets a leading single
    quote (OWASP's advice), so it is shown as text instead of being run. For text cells only:
    numbers (a negative P&L) keep their sign."""
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


def _csv_safe(record: dict[str, Any]) -> dict[str, Any]:
    return {
        key: neutralise_cell(value) if key in _TEXT_COLUMNS and isinstance(value, str) else value
        for key, value in record.items()
    }


def _write_json(path: Path, data: Any) -> None:
    # allow_nan=False turns any NaN that slipped past to_jsonable into an error, not bad JSON.
    path.write_text(json.dumps(data, allow_nan=False, indent=2) + "\n", encoding="utf-8")


def _trades_parquet(trades: Sequence[Trade], records: list[dict[str, Any]], path: Path) -> None:
    fields = []
    for name in TRADE_COLUMNS:
        if name in _TIMESTAMP_COLUMNS:
            fields.append(pa.field(name, pa.timestamp("us", tz="UTC")))
        elif name in _INT_COLUMNS:
            fields.append(pa.field(name, pa.int64()))
        else:
            fields.append(pa.field(name, pa.string()))
    schema = pa.schema(fields, metadata={"sigma.decimal_columns": ",".join(DECIMAL_COLUMNS)})
    columns: dict[str, list[Any]] = {name: [r[name] for r in records] for name in TRADE_COLUMNS}
    # The original datetimes, not the ISO text: Python datetimes are exact to the microsecond.
    columns["entry_ts"] = [utc(t.entry_ts) for t in trades]
    columns["exit_ts"] = [utc(t.exit_ts) for t in trades]
    pq.write_table(pa.Table.from_pydict(columns, schema=schema), path)


def _write_trades(trades: Sequence[Trade], fmt: str, path: Path) -> None:
    records = trade_records(trades)
    if fmt == "csv":
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=TRADE_COLUMNS)
            writer.writeheader()
            writer.writerows(map(_csv_safe, records))
    elif fmt == "json":
        _write_json(path, records)
    else:
        _trades_parquet(trades, records, path)


def _write_equity(equity: pd.Series, fmt: str, path: Path) -> None:
    values = np.asarray(equity, dtype=np.float64)
    if fmt == "parquet":
        index = pd.DatetimeIndex(equity.index)
        index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
        table = pa.table({"ts": pa.array(index), "equity": pa.array(values)})
        pq.write_table(table, path)
        return
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
    """Write ``trades.<ext>`` and ``equity.<ext>`` per format, then ``summary.json``.

    `directory` is created if needed. Every format is checked before anything is written,
    so an unknown one raises ValueError (naming it) and leaves no partial export.
    Returns the written paths in order.
    """
    checked = check_formats(formats)
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for fmt in checked:
        trades_path = folder / f"trades.{fmt}"
        _write_trades(result.trades, fmt, trades_path)
        equity_path = folder / f"equity.{fmt}"
        _write_equity(result.equity, fmt, equity_path)
        written += [trades_path, equity_path]
    summary_path = folder / "summary.json"
    _write_json(summary_path, summary(result))
    written.append(summary_path)
    return written

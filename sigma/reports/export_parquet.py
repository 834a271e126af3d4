"""The Parquet files of a backtest export (`sigma.reports.export`): its own module so that
pyarrow (~35 MB) loads only when Parquet is asked for.

Decimal columns are exact strings, listed in the schema metadata; times are timestamp[UTC].
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sigma.domain import utc
from sigma.engine.trade_analytics import TradeAnalysis
from sigma.reports.trade_columns import COLUMNS, DECIMAL_COLUMNS, Unit

# How each unit is typed; the Decimal units (and text) are strings.
_PARQUET_TYPES: dict[Unit, pa.DataType] = {
    "ts": pa.timestamp("us", tz="UTC"),
    "bar": pa.int64(),
    "count": pa.int64(),
    "bool": pa.bool_(),
    "seconds": pa.float64(),
}


def write_trades(rows: Sequence[TradeAnalysis], records: list[dict[str, Any]], path: Path) -> None:
    """The trades as `records` has them (`export.trade_records`), times from `rows`."""
    fields = [pa.field(c.name, _PARQUET_TYPES.get(c.unit, pa.string())) for c in COLUMNS]
    schema = pa.schema(fields, metadata={"sigma.decimal_columns": ",".join(DECIMAL_COLUMNS)})
    columns: dict[str, list[Any]] = {c.name: [r[c.name] for r in records] for c in COLUMNS}
    for column in COLUMNS:
        if column.unit == "ts":
            # The original datetimes, not the ISO text: Python datetimes are exact to the µs.
            columns[column.name] = [utc(column.value(r)) for r in rows]
    pq.write_table(pa.Table.from_pydict(columns, schema=schema), path)


def write_equity(equity: pd.Series, path: Path) -> None:
    """The equity curve as (ts, equity) rows."""
    index = pd.DatetimeIndex(equity.index)
    index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    values = np.asarray(equity, dtype=np.float64)
    pq.write_table(pa.table({"ts": pa.array(index), "equity": pa.array(values)}), path)


def write_monthly(months: pd.DataFrame, path: Path) -> None:
    """The calendar-month returns table as it is."""
    pq.write_table(pa.Table.from_pandas(months, preserve_index=False), path)

"""Reading a Parquet file into a raw table; the timestamp may be the index or a column."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa

from sigma.feeds.errors import DataError, RowNumbers
from sigma.feeds.normalise import TS_ALIASES


def read_parquet_raw(path: Path, source: str) -> tuple[pd.DataFrame, RowNumbers]:
    """The file's table with any timestamp index moved into a column, rows numbered 1..n."""
    if not path.exists():
        raise DataError(source, "file does not exist")
    if path.is_file() and path.stat().st_size == 0:
        raise DataError(source, "file is empty")
    try:
        raw = pd.read_parquet(path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataError(
            source, f"not a readable Parquet file (corrupt or truncated?): {exc}"
        ) from exc
    index = raw.index
    named_ts = index.name is not None and str(index.name).strip().lower() in TS_ALIASES
    if isinstance(index, pd.DatetimeIndex) or named_ts:
        raw = raw.reset_index(names=str(index.name) if index.name is not None else "ts")
    if raw.empty:
        raise DataError(source, "no data rows")
    return raw, RowNumbers.rows(len(raw))

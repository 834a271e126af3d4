"""Reading a Parquet file into a raw table; the timestamp may be the index or a column."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sigma.feeds.errors import DataError, RowNumbers
from sigma.feeds.limits import InputLimits
from sigma.feeds.normalise import TS_ALIASES


def read_parquet_raw(
    path: Path, source: str, limits: InputLimits | None = None
) -> tuple[pd.DataFrame, RowNumbers]:
    """The file's table with any timestamp index moved into a column, rows numbered 1..n.

    A file over `limits` (default `InputLimits()`), on disk or by the uncompressed size its
    metadata announces, is a DataError before its data is read."""
    limits = limits or InputLimits()
    if not path.exists():
        raise DataError(source, "file does not exist")
    size = path.stat().st_size
    if path.is_file() and size == 0:
        raise DataError(source, "file is empty")
    limits.check_file(size, source)
    try:
        meta = pq.read_metadata(path)
        groups = (meta.row_group(i) for i in range(meta.num_row_groups))
        limits.check_uncompressed(sum(g.total_byte_size for g in groups), source)
        raw = pd.read_parquet(path)
        schema = pq.read_schema(path)
    except DataError:
        raise
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
    rows = RowNumbers.rows(len(raw))
    for field in schema:
        if _is_binary(field.type) and field.name in raw.columns:
            raw[field.name] = _utf8(raw[field.name], field.name, source, rows)
    return raw, rows


def _is_binary(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_binary(kind)
        or pa.types.is_large_binary(kind)
        or pa.types.is_fixed_size_binary(kind)
    )


def _utf8(values: pd.Series, column: str, source: str, rows: RowNumbers) -> pd.Series:
    """A binary column as text: writers that store strings as raw bytes are common, and the
    symbol and timestamp parsers expect text; bytes that are not UTF-8 are named by row."""
    try:
        return values.str.decode("utf-8")
    except UnicodeDecodeError:
        at, exc = next(_undecodable(values))
    reason = (
        f"{column}: not valid UTF-8 text: byte 0x{exc.object[exc.start]:02x} at offset {exc.start}"
    )
    raise rows.error(source, at, reason, column=column) from exc


def _undecodable(values: pd.Series) -> Iterator[tuple[int, UnicodeDecodeError]]:
    for at, value in enumerate(values):
        if isinstance(value, bytes):
            try:
                value.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield at, exc

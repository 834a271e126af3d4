"""Reading a CSV (optionally gzip-compressed) file into a raw table with its line numbers."""

from __future__ import annotations

import codecs
import gzip
import io
import re
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from sigma.feeds.errors import DataError, RowNumbers
from sigma.feeds.frame import TS
from sigma.feeds.limits import InputLimits
from sigma.feeds.normalise import date_and_time, resolve_columns
from sigma.feeds.timestamps import FIRST_EPOCH_DATE

_BOMS = {b"\xff\xfe": "UTF-16 (little-endian)", b"\xfe\xff": "UTF-16 (big-endian)"}
# Binary files a user may have named .csv, told by their first bytes.
_MAGIC = {
    b"PAR1": "a Parquet file, not CSV text: name it .parquet",
    b"\x1f\x8b": "gzip-compressed: name it .csv.gz",
    b"PK\x03\x04": "a ZIP archive (an Excel workbook?), not CSV text: save it as CSV",
}
_PANDAS_LINE = re.compile(r"line (\d+)")
_CHUNK = 1024**2
_PEEK_ROWS = 20  # enough to pass a few blank lines to the first timestamp


def _open(path: Path, source: str, limits: InputLimits) -> Path | bytes:
    """What pandas reads: the path of a plain file (read by pandas as it parses, never held
    whole), or the decompressed bytes of a ``.gz`` one; refused past the limits."""
    try:
        limits.check_file(path.stat().st_size, source)
        if path.name.lower().endswith(".gz"):
            with gzip.open(path, "rb") as handle:
                return _inflate(handle, source, limits)
        if path.is_dir():
            raise IsADirectoryError(path)
        return path
    except FileNotFoundError as exc:
        raise DataError(source, "file does not exist") from exc
    except IsADirectoryError as exc:
        raise DataError(source, "is a directory, not a file") from exc
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataError(source, f"not a valid gzip file (corrupt or truncated): {exc}") from exc


def _inflate(handle: gzip.GzipFile, source: str, limits: InputLimits) -> bytes:
    """Read a decompressing stream chunk by chunk and stop as soon as it passes the limit: a
    few MB of gzip can inflate to many GB."""
    out = bytearray()
    while chunk := handle.read(_CHUNK):
        out += chunk
        limits.check_uncompressed(len(out), source)
    return bytes(out)


def _chunks(data: Path | bytes) -> Iterator[bytes]:
    if isinstance(data, bytes):
        view = memoryview(data)
        for start in range(0, len(data), _CHUNK):
            yield bytes(view[start : start + _CHUNK])
        return
    with data.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            yield chunk


def _whole(data: Path | bytes) -> bytes:
    return data if isinstance(data, bytes) else data.read_bytes()


def _is_blank_text(data: Path | bytes, source: str) -> bool:
    """Whether the UTF-8 text `data` holds is only whitespace; a DataError saying where it
    stops being text when it is not UTF-8 (`_not_text`).

    Decoded a chunk at a time and each chunk dropped: the whole file decoded at once held
    four bytes per character of a non-ASCII file, and as many as its size of an ASCII one
    (57 MB more at a million bars). pandas parses the bytes.
    """
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    blank = True
    try:
        for chunk in _chunks(data):
            if b"\x00" in chunk:
                raise _not_text(_whole(data), source)
            text = decoder.decode(chunk)
            blank = blank and (not text or text.isspace())  # no stripped copy of a large file
        text = decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise _not_text(_whole(data), source) from None
    return blank and (not text or text.isspace())


def _not_text(data: bytes, source: str) -> DataError:
    """Why the whole of `data` is not UTF-8 text, with the byte offset and line of the first
    bad byte. NUL bytes are valid UTF-8 but mean a binary file or UTF-16 without a byte-order
    mark. Only for a file already known not to be text: it decodes all of it."""
    for bom, name in _BOMS.items():
        if data.startswith(bom):
            return DataError(source, f"file is {name} encoded; expected UTF-8 text")
    for magic, what in _MAGIC.items():
        if data.startswith(magic):
            return DataError(source, f"file is {what}")
    try:
        data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        offset = exc.start
        bad = data[offset : offset + 1].hex()
        return DataError(
            source,
            f"file is not valid UTF-8 text: byte 0x{bad} at offset {offset}",
            line=data.count(b"\n", 0, offset) + 1,
        )
    nul = data.find(b"\x00")
    return DataError(
        source,
        f"file is not valid UTF-8 text: NUL byte at offset {nul} (binary data?)",
        line=data.count(b"\n", 0, nul) + 1,
    )


def _source(data: Path | bytes) -> Path | io.BytesIO:
    return data if isinstance(data, Path) else io.BytesIO(data)


_LONGEST_TIMESTAMP = 64
"""More characters than any timestamp has (ISO 8601 with nanoseconds and an offset: 35)."""


def _iso_column(data: Path | bytes) -> str | None:
    """The timestamp column pandas can parse as ISO 8601 while it reads the file, or None.

    Parsed while read, a million timestamps never become a million Python strings (~80 MB,
    and most of the reading time). Only when the first timestamp is ISO text of 1973 or
    later: epoch numbers, a date and a time in two columns, and text pandas cannot read
    (mixed offsets, a bad value: pandas then keeps the text) go on to `parse_timestamps`,
    and an all-1970-to-1972 column stays text, which that check of typed columns would
    refuse.
    """
    try:
        head = pd.read_csv(_source(data), nrows=_PEEK_ROWS, dtype=str, encoding="utf-8-sig")
        columns = [str(c) for c in head.columns]
        names = resolve_columns(columns, "")
    except (pd.errors.ParserError, DataError, ValueError):
        return None  # the full read reports it
    if date_and_time(columns, names) is not None:
        return None
    column = names[TS]
    values = head[column].dropna()
    if values.empty or pd.notna(pd.to_numeric(values.iloc[:1], errors="coerce").iloc[0]):
        return None
    text = str(values.iloc[0])
    if len(text) > _LONGEST_TIMESTAMP:
        return None  # no timestamp; dateutil's tokenizer takes quadratic time over it
    try:
        first = pd.Timestamp(text)
    except ValueError:
        return None
    utc = first.tz_convert("UTC") if first.tzinfo is not None else first.tz_localize("UTC")
    return column if utc >= FIRST_EPOCH_DATE else None


def read_csv_raw(
    path: Path, source: str, limits: InputLimits | None = None
) -> tuple[pd.DataFrame, RowNumbers]:
    """The file's table as pandas infers it, and each data row's line number (header = line 1).

    A file larger than `limits` (default `InputLimits()`) is a DataError before it is read.
    An ISO 8601 timestamp column comes back parsed (`_iso_column`).

    Blank lines are read as empty rows and then dropped, so line numbers still match what an
    editor shows.
    """
    data = _open(path, source, limits or InputLimits())
    if _is_blank_text(data, source):
        raise DataError(source, "file is empty")
    iso = _iso_column(data)
    try:
        raw = pd.read_csv(
            _source(data),
            skip_blank_lines=False,
            encoding="utf-8-sig",
            parse_dates=[iso] if iso else False,
            date_format="ISO8601" if iso else None,
        )
    except pd.errors.ParserError as exc:
        found = _PANDAS_LINE.search(str(exc))
        line = int(found.group(1)) if found else None
        raise DataError(source, f"malformed CSV: {str(exc).strip()}", line=line) from exc
    blank = raw.isna().all(axis=1).to_numpy()
    numbers = np.arange(2, len(raw) + 2, dtype=np.int64)
    if blank.any():
        raw = raw.loc[~blank]
        numbers = numbers[~blank]
    if raw.empty:
        raise DataError(source, "no data rows (only a header)")
    return raw, RowNumbers("line", numbers)

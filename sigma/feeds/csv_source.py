"""Reading a CSV (optionally gzip-compressed) file into a raw table with its line numbers."""

from __future__ import annotations

import gzip
import io
import re
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from sigma.feeds.errors import DataError, RowNumbers
from sigma.feeds.limits import InputLimits

_BOMS = {b"\xff\xfe": "UTF-16 (little-endian)", b"\xfe\xff": "UTF-16 (big-endian)"}
_PANDAS_LINE = re.compile(r"line (\d+)")
_CHUNK = 1024**2


def _read_bytes(path: Path, source: str, limits: InputLimits) -> bytes:
    """The file's bytes, decompressed when it ends in ``.gz``; refused past the limits."""
    try:
        limits.check_file(path.stat().st_size, source)
        if path.name.lower().endswith(".gz"):
            with gzip.open(path, "rb") as handle:
                return _inflate(handle, source, limits)
        return path.read_bytes()
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


def _is_blank_text(data: bytes, source: str) -> bool:
    """Whether the UTF-8 text `data` holds is only whitespace; a DataError saying where it
    stops being text when it is not UTF-8.

    Decoding up front (rather than letting pandas do it) gives the byte offset and line of the
    first bad byte, and catches NUL bytes, which are valid UTF-8 but mean a binary file or UTF-16
    without a byte-order mark. The decoded text is dropped: pandas parses the bytes.
    """
    for bom, name in _BOMS.items():
        if data.startswith(bom):
            raise DataError(source, f"file is {name} encoded; expected UTF-8 text")
    nul = data.find(b"\x00")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        offset = exc.start
        bad = data[offset : offset + 1].hex()
        raise DataError(
            source,
            f"file is not valid UTF-8 text: byte 0x{bad} at offset {offset}",
            line=data.count(b"\n", 0, offset) + 1,
        ) from exc
    if nul >= 0:
        raise DataError(
            source,
            f"file is not valid UTF-8 text: NUL byte at offset {nul} (binary data?)",
            line=data.count(b"\n", 0, nul) + 1,
        )
    return not text or text.isspace()  # no stripped copy of a large file


def read_csv_raw(
    path: Path, source: str, limits: InputLimits | None = None
) -> tuple[pd.DataFrame, RowNumbers]:
    """The file's table as pandas infers it, and each data row's line number (header = line 1).

    A file larger than `limits` (default `InputLimits()`) is a DataError before it is read.

    Blank lines are read as empty rows and then dropped, so line numbers still match what an
    editor shows.
    """
    data = _read_bytes(path, source, limits or InputLimits())
    if _is_blank_text(data, source):
        raise DataError(source, "file is empty")
    try:
        # From the bytes: a StringIO of the decoded text held four bytes per character (a
        # 57 MB file of a million bars took 228 MB more while it was parsed).
        raw = pd.read_csv(io.BytesIO(data), skip_blank_lines=False, encoding="utf-8-sig")
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

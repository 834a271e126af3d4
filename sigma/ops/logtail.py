"""Reading the process log files back (`log_to_file` writes them): which there are, and the end
of one, filtered, for the dashboard's log view.

Only the end of a file is read (`TAIL_BYTES` at most), so a large log costs a bounded read
however it grows; the rotation job keeps the files themselves bounded.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TAIL_BYTES = 2 * 1024 * 1024
"""How much of a file's end is read."""
_FIELDS = ("ts", "level", "logger", "msg")


@dataclass(frozen=True, slots=True)
class LogLine:
    """One record of a log file; `extra` holds its other fields (pid, extras, exc). A line
    that is not a JSON record (a traceback printed by hand) has only `msg`."""

    ts: str | None
    level: str | None
    logger: str | None
    msg: str
    extra: dict[str, Any] = field(default_factory=dict)


def log_files(folder: Path) -> dict[str, Path]:
    """The current log files in `folder` by name (`up` for `up.log`); archives are left out."""
    if not folder.is_dir():
        return {}
    return {path.stem: path for path in sorted(folder.glob("*.log")) if path.is_file()}


def _parse(text: str) -> LogLine:
    try:
        record = json.loads(text)
    except ValueError:
        record = None
    if not isinstance(record, dict):
        return LogLine(None, None, None, text)
    extra = {k: v for k, v in record.items() if k not in _FIELDS}
    return LogLine(
        _text(record.get("ts")),
        _text(record.get("level")),
        _text(record.get("logger")),
        str(record.get("msg", "")),
        extra,
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _tail(path: Path, size: int) -> list[str]:
    with path.open("rb") as f:
        end = f.seek(0, os.SEEK_END)
        start = max(0, end - size)
        f.seek(start)
        data = f.read(end - start)
    lines = data.decode("utf-8", errors="replace").splitlines()
    # A read that starts mid-file starts mid-line: that partial line is dropped.
    return lines[1:] if start > 0 else lines


def tail(
    path: Path,
    *,
    limit: int,
    level: str | None = None,
    text: str | None = None,
    size: int = TAIL_BYTES,
) -> list[LogLine]:
    """The last `limit` lines among the last `size` bytes of `path`, oldest first, keeping
    those at `level` or above (lines without a level always) that contain `text` (any case)."""
    floor = logging.getLevelName(level.upper()) if level else logging.NOTSET
    needle = text.lower() if text else None
    kept: list[LogLine] = []
    for raw in _tail(path, size):
        if not raw.strip():
            continue
        if needle is not None and needle not in raw.lower():
            continue
        line = _parse(raw)
        rank = logging.getLevelName(line.level) if line.level else None
        if isinstance(rank, int) and isinstance(floor, int) and rank < floor:
            continue
        kept.append(line)
    return kept[-limit:]

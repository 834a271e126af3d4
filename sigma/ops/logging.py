"""Logging setup: one line per record to stderr, as key=value pairs or JSON, and per command
to a file under the var folder (`log_to_file`), which the log rotation job rotates.

Fields passed with ``extra=`` become part of the line. Fields whose name looks secret
(password, token, secret, api_key, ...) are replaced by ``***`` - at any depth of nested
dictionaries - because extra fields often carry whole configuration mappings. The message
text itself is not inspected: never format secrets into it.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from sigma.domain.jsontext import dumps

REDACTED = "***"
# Webhook URLs (Slack, Discord) embed their credential, so they count as secrets too.
_SECRET_NAME = re.compile(
    r"password|passwd|passphrase|token|secret|api_?key|private_?key|webhook|credential", re.I
)
# Attributes every LogRecord has; anything else on a record came from `extra=`.
RESERVED_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
# Libraries that log every request at INFO; httpx would also print URLs holding bot tokens.
_NOISY_LOGGERS = ("httpx", "httpcore", "asyncio", "aio_pika", "aiormq", "urllib3")
_NEEDS_QUOTES = re.compile(r'[\s"=]')
_WHITESPACE = re.compile(r"\s")


def is_secret_name(name: str) -> bool:
    """True when a field called `name` should never be logged in clear."""
    return bool(_SECRET_NAME.search(name))


def redact(value: Any) -> Any:
    """A copy of `value` with secret-named mapping entries replaced, recursively."""
    if isinstance(value, Mapping):
        return {
            key: REDACTED if is_secret_name(str(key)) else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    return value


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The record's ``extra=`` fields, redacted."""
    fields = {k: v for k, v in vars(record).items() if k not in RESERVED_ATTRS}
    return redact(fields)  # type: ignore[no-any-return]


def utc_timestamp(record: logging.LogRecord) -> str:
    """The record's creation time as ISO-8601 UTC with milliseconds, e.g. ``...T12:00:00.123Z``."""
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _FieldsFormatter(logging.Formatter):
    """Collects the fields of a line; subclasses only decide how to write them. With `pid`,
    lines carry the process id (processes of one command share a log file)."""

    def __init__(self, *, pid: bool = False) -> None:
        super().__init__()
        self.pid = pid

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ts": utc_timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if self.pid:
            out["pid"] = record.process
        out.update(extra_fields(record))
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return out


class KeyValueFormatter(_FieldsFormatter):
    """``ts=... level=INFO logger=sigma.x msg="text with spaces" key=value``."""

    def format(self, record: logging.LogRecord) -> str:
        """One key=value line; values with spaces, quotes or '=' are JSON-quoted."""
        return " ".join(f"{key}={kv_value(value)}" for key, value in self.fields(record).items())


class JsonFormatter(_FieldsFormatter):
    """One JSON object per line with the same fields as `KeyValueFormatter`."""

    def format(self, record: logging.LogRecord) -> str:
        """One compact JSON line."""
        return dumps(self.fields(record))


def kv_value(value: Any) -> str:
    """`value` as the right-hand side of key=value: strings bare when safe, else JSON."""
    if isinstance(value, str):
        return dumps(value) if not value or _NEEDS_QUOTES.search(value) else value
    text = dumps(value)
    # A JSON object is one token unless a string inside it holds whitespace.
    return dumps(text) if _WHITESPACE.search(text) else text


_installed: logging.Handler | None = None


def init_logging(
    level: str | int = "INFO", json: bool = False, *, stream: TextIO | None = None
) -> logging.Handler:
    """Configure the root logger: one handler on `stream` (stderr) writing key=value lines, or
    JSON lines when `json` is true. Calling it again replaces the handler it installed before
    (other handlers, e.g. pytest's, are left alone). Returns the handler."""
    global _installed
    root = logging.getLogger()
    if _installed is not None:
        root.removeHandler(_installed)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if json else KeyValueFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.captureWarnings(True)
    _installed = handler
    return handler


STDERR_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
"""The stderr line of the `sigma` commands (`init_process_logging`)."""

_file_installed: logging.Handler | None = None


def log_folder(var_dir: Path) -> Path:
    """The folder of the process log files: ``<var_dir>/logs``."""
    return Path(var_dir) / "logs"


def log_file(var_dir: Path, command: str) -> Path:
    """Where the `sigma <command>` processes log: ``<var_dir>/logs/<command>.log``."""
    return log_folder(var_dir) / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', command)}.log"


def log_to_file(path: Path, level: str | int = logging.NOTSET) -> logging.Handler:
    """Also write the root logger's records to `path` as JSON lines carrying the process id.

    The file is opened for appending (O_APPEND), so several processes may share it and the
    rotation job's copy-then-truncate leaves no hole: the next line lands at the new end. The
    folder is created now, the file with the first record. Calling it again replaces the file
    handler installed before; `close_file_log` removes it."""
    global _file_installed
    close_file_log()
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="a", encoding="utf-8", delay=True)
    handler.setFormatter(JsonFormatter(pid=True))
    handler.setLevel(level.upper() if isinstance(level, str) else level)
    logging.getLogger().addHandler(handler)
    _file_installed = handler
    return handler


def close_file_log() -> None:
    """Remove and close the handler `log_to_file` installed, if any."""
    global _file_installed
    if _file_installed is not None:
        logging.getLogger().removeHandler(_file_installed)
        _file_installed.close()
        _file_installed = None


def init_process_logging(level: str, path: Path | None) -> None:
    """Logging of a `sigma` command: `STDERR_FORMAT` lines on stderr at `level` unless the root
    logger is already set up (a test harness, an embedding program), and the file `path`."""
    logging.basicConfig(level=level, format=STDERR_FORMAT)
    if path is not None:
        log_to_file(path, level)

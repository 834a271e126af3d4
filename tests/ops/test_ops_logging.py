from __future__ import annotations

import io
import json
import logging
import warnings
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from sigma.ops import logging as sigma_logging
from sigma.ops.logging import REDACTED, init_logging, is_secret_name, kv_value, redact


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    sigma_logging._installed = None
    logging.captureWarnings(False)


def test_key_value_lines_with_utc_time_and_redaction(restore_root: None) -> None:
    out = io.StringIO()
    init_logging("debug", stream=out)
    logging.getLogger("sigma.test").info(
        "order placed",
        extra={
            "symbol": "BTCUSDT",
            "qty": Decimal("0.5"),
            "api_key": "k-123",
            "config": {"db": {"password": "pw"}, "items": [{"token": "t"}], "host": "h"},
            "note": "",
        },
    )
    line = out.getvalue().rstrip("\n")
    assert "\n" not in line
    ts, rest = line.split(" ", 1)
    assert ts.startswith("ts=") and ts.endswith("Z")
    assert datetime.fromisoformat(ts[3:].replace("Z", "+00:00")).utcoffset() == timedelta(0)
    assert rest == (
        'level=INFO logger=sigma.test msg="order placed" symbol=BTCUSDT qty="0.5" '
        'api_key=*** config={"db":{"password":"***"},"host":"h","items":[{"token":"***"}]} '
        'note=""'
    )
    assert "k-123" not in line and "pw" not in line


def test_json_lines_with_exception(restore_root: None) -> None:
    out = io.StringIO()
    init_logging(logging.WARNING, json=True, stream=out)
    log = logging.getLogger("sigma.test")
    log.info("dropped: below the level")
    try:
        raise ValueError("bad")
    except ValueError:
        log.exception("failed", extra={"client_secret": "s", "attempt": 2}, stack_info=True)
    (line,) = out.getvalue().splitlines()
    record = json.loads(line)
    assert record["level"] == "ERROR"
    assert record["msg"] == "failed"
    assert record["client_secret"] == REDACTED
    assert record["attempt"] == 2
    assert "ValueError: bad" in record["exc"]
    assert record["stack"].startswith("Stack (most recent call last)")
    assert record["ts"].endswith("Z")


def test_reinit_replaces_own_handler_only_and_quiets_noisy_libraries(restore_root: None) -> None:
    root = logging.getLogger()
    before = len(root.handlers)
    first = init_logging(stream=io.StringIO())
    second_out = io.StringIO()
    second = init_logging("INFO", json=True, stream=second_out)
    assert first not in root.handlers and second in root.handlers
    assert len(root.handlers) == before + 1
    assert logging.getLogger("httpx").level == logging.WARNING
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("careful", UserWarning, stacklevel=1)
    assert json.loads(second_out.getvalue())["logger"] == "py.warnings"


def test_helpers() -> None:
    assert all(map(is_secret_name, ["password", "DB_PASSWORD", "bot_token", "apiKey", "api_key"]))
    assert all(map(is_secret_name, ["slack_webhook_url", "secret", "passwd"]))
    assert not any(map(is_secret_name, ["symbol", "qty", "reason", "user"]))
    assert redact(("a", {"token": 1})) == ["a", {"token": REDACTED}]
    assert kv_value("plain") == "plain"
    assert kv_value('has "quote"') == '"has \\"quote\\""'
    assert kv_value("a=b") == '"a=b"'
    assert kv_value(3) == "3"
    assert kv_value(None) == "null"
    assert kv_value({"m": "two words"}) == '"{\\"m\\":\\"two words\\"}"'

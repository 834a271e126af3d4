"""Reading the process log files back: the end of a file, filtered by level and text."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from sigma.ops.logging import close_file_log, log_file, log_folder, log_to_file
from sigma.ops.logtail import LogLine, log_files, tail


def record(level: str, msg: str, **extra: object) -> str:
    return json.dumps(
        {"ts": "2026-12-07T00:00:00.000Z", "level": level, "logger": "t", "msg": msg, **extra}
    )


def test_files_are_listed_by_name_without_archives(tmp_path: Path) -> None:
    folder = log_folder(tmp_path)
    assert log_files(folder) == {}
    folder.mkdir()
    for name in ("up.log", "api.log", "up.log.20261206.gz"):
        (folder / name).write_text("x\n")
    (folder / "odd.log").mkdir()
    assert log_files(folder) == {"api": folder / "api.log", "up": folder / "up.log"}


def test_a_real_log_file_reads_back_with_its_fields(tmp_path: Path) -> None:
    path = log_file(tmp_path, "up")
    log_to_file(path)
    logger = logging.getLogger("sigma.test.logtail")
    logger.setLevel(logging.INFO)
    try:
        logger.info("order_sent BTC buy 0.5 @ 100", extra={"strategy": "sma_cross"})
        logger.warning("feed stale")
    finally:
        close_file_log()
    first, second = tail(path, limit=10)
    assert second.level == "WARNING"
    assert (first.level, first.logger, first.msg) == (
        "INFO",
        "sigma.test.logtail",
        "order_sent BTC buy 0.5 @ 100",
    )
    assert first.extra["strategy"] == "sma_cross" and "pid" in first.extra
    assert [line.msg for line in tail(path, limit=10, level="warning")] == ["feed stale"]


def test_filters_limit_and_lines_that_are_not_records(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    lines = [
        record("DEBUG", "tick"),
        record("INFO", "order_sent BTC"),
        "Traceback (most recent call last):",
        "",
        record("ERROR", "fill failed", symbol="BTC"),
        "[1, 2]",
        record("INFO", "order_sent ETH"),
    ]
    path.write_text("\n".join(lines) + "\n")
    assert [line.msg for line in tail(path, limit=100, level="INFO")] == [
        "order_sent BTC",
        "Traceback (most recent call last):",
        "fill failed",
        "[1, 2]",
        "order_sent ETH",
    ]
    assert tail(path, limit=100, level="ERROR")[1] == LogLine(
        "2026-12-07T00:00:00.000Z", "ERROR", "t", "fill failed", {"symbol": "BTC"}
    )
    assert [line.msg for line in tail(path, limit=100, text="order_SENT")] == [
        "order_sent BTC",
        "order_sent ETH",
    ]
    assert [line.msg for line in tail(path, limit=2)] == ["[1, 2]", "order_sent ETH"]


@pytest.mark.parametrize("size", [10, 60])
def test_only_the_end_is_read_and_a_cut_line_is_dropped(tmp_path: Path, size: int) -> None:
    path = tmp_path / "x.log"
    path.write_text("\n".join(record("INFO", f"line {i}") for i in range(5)) + "\n")
    read = tail(path, limit=100, size=size)
    # Never half a record: what was cut is left out, whole lines are parsed.
    assert all(line.level == "INFO" for line in read)
    assert len(read) < 5

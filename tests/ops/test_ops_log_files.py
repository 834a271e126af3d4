"""Every `sigma` command logs to `<var>/logs/<command>.log` as JSON lines with its pid; the
log rotation job rotates the file of a process that is still writing to it, and the default
database and logs of a run stay inside `SIGMA_VAR_DIR`."""

from __future__ import annotations

import gzip
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sigma.cli.main import app
from sigma.ops import logging as sigma_logging
from sigma.ops.logging import close_file_log, init_process_logging, log_file, log_to_file
from sigma.scheduler.maintenance import rotate_logs

DEADLINE = 30.0


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers = list(root.handlers)
    yield
    close_file_log()
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)


def _records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_file_lines_are_json_with_the_pid_and_a_new_file_replaces_the_old(
    tmp_path: Path, restore_root: None
) -> None:
    first = tmp_path / "logs" / "a.log"
    handler = log_to_file(first, "INFO")
    assert first.parent.is_dir() and not first.exists()  # created with the first record
    log = logging.getLogger("sigma.test.files")
    log.setLevel(logging.DEBUG)
    log.debug("below the file's level")
    log.info("written", extra={"api_key": "k", "n": 1})
    second = tmp_path / "logs" / "b.log"
    log_to_file(second)
    assert handler not in logging.getLogger().handlers
    log.info("to the second file")
    [record] = _records(first)
    assert record["msg"] == "written" and record["pid"] == os.getpid()
    assert record["api_key"] == "***" and record["n"] == 1
    assert [r["msg"] for r in _records(second)] == ["to the second file"]
    close_file_log()
    close_file_log()  # nothing left to close
    assert sigma_logging._file_installed is None


def test_process_logging_keeps_an_existing_setup(tmp_path: Path, restore_root: None) -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    assert before  # pytest's capture handler: the stderr handler is not added
    init_process_logging("INFO", None)
    assert root.handlers == before
    init_process_logging("INFO", tmp_path / "x.log")
    assert len(root.handlers) == len(before) + 1


def test_log_file_names() -> None:
    assert log_file(Path("/v"), "up") == Path("/v/logs/up.log")
    assert log_file(Path("/v"), "jobs run/x") == Path("/v/logs/jobs_run_x.log")


def test_a_command_logs_to_its_file_until_it_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restore_root: None
) -> None:
    monkeypatch.setenv("SIGMA_VAR_DIR", str(tmp_path / "var"))
    handlers = list(logging.getLogger().handlers)
    result = CliRunner().invoke(app, ["strategies"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "var" / "logs").is_dir()
    assert logging.getLogger().handlers == handlers  # removed when the command ended
    # Wrong settings: no file; the command reports them itself.
    monkeypatch.setenv("SIGMA_VAR_DIR", str(tmp_path / "other"))
    monkeypatch.setenv("SIGMA_BAR_SECONDS", "0")
    CliRunner().invoke(app, ["strategies"])
    assert not (tmp_path / "other").exists()


def _wait(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _sigma(args: list[str], cwd: Path, var: Path, **env: str) -> subprocess.Popen[bytes]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SIGMA_")}
    clean |= {"SIGMA_VAR_DIR": str(var), "SIGMA_LOG_LEVEL": "INFO", **env}
    return subprocess.Popen(
        [sys.executable, "-m", "sigma.cli.main", *args],
        cwd=cwd,
        env=clean,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        assert process.wait(timeout=DEADLINE) == 0
    finally:
        if process.poll() is None:  # pragma: no cover - only when stopping failed
            process.kill()


def _lines(path: Path) -> list[dict[str, object]]:
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return []
    # A line being written may be incomplete: only whole lines count.
    return [json.loads(line) for line in text.split(b"\n")[:-1]]


def test_rotation_of_the_log_a_running_scheduler_writes(tmp_path: Path) -> None:
    cwd, var = tmp_path / "cwd", tmp_path / "var"
    cwd.mkdir()
    process = _sigma(["scheduler"], cwd, var, SIGMA_HEALTH_INTERVAL_SECONDS="1")
    live = var / "logs" / "scheduler.log"
    try:
        _wait(
            lambda: any('Running job "HealthCheck' in str(r["msg"]) for r in _lines(live)),
            "a log line",
        )
        now = datetime.now(UTC)
        result = rotate_logs(
            var / "logs", now, max_bytes=10**9, keep=timedelta(days=7), every=timedelta(days=1)
        )
        [archive] = result.rotated
        with gzip.open(archive, "rt", encoding="utf-8") as archived:
            old = [json.loads(line) for line in archived]
        assert {r["pid"] for r in old} == {process.pid}
        # The process goes on writing to the truncated file, from its start (O_APPEND).
        _wait(
            lambda: any('Running job "HealthCheck' in str(r["msg"]) for r in _lines(live)),
            "a new line",
        )
        assert all(r["ts"] >= old[-1]["ts"] for r in _lines(live))
    finally:
        _stop(process)
    assert not any(cwd.iterdir())  # the database and everything else went to the var dir
    assert (var / "sigma.db").is_file()


def test_sigma_up_writes_nothing_outside_the_var_dir(tmp_path: Path) -> None:
    cwd, var = tmp_path / "cwd", tmp_path / "var"
    cwd.mkdir()
    components = "market,prices,bot,worker,sim,scheduler"
    process = _sigma(["up", "--only", components], cwd, var, SIGMA_FEED_SPEED="600")
    try:
        # The price client connected to the built-in market: every component is running.
        _wait(
            lambda: any(r["msg"] == "connection open" for r in _lines(var / "logs" / "up.log")),
            "the price client",
        )
    finally:
        _stop(process)
    assert not any(cwd.iterdir())
    assert (var / "sigma.db").is_file() and (var / "logs" / "up.log").is_file()

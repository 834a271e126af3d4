"""Issue 24 item 6 with real processes: several `sigma optimize` started together on a fresh
PostgreSQL database share the study; Ctrl-C (SIGINT) prints the best so far and exits 130."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import optuna
import psycopg
import pytest

from sigma.feeds.synthetic import generate_bars, write_csv
from tests.cli.plugin_strategies import write_plugin
from tests.conftest import PG_ADMIN_URL, _sqlalchemy_url

DEADLINE = 180.0


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    bars, _ = generate_bars(500, seed=2, freq="1h")
    write_csv(bars, tmp_path / "bars.csv")
    write_plugin(tmp_path / "plugins")
    return tmp_path


def _env(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGMA_")}
    return {
        **env,
        "SIGMA_DATABASE_URL": f"sqlite:///{workdir / 'sigma.db'}",
        "SIGMA_VAR_DIR": str(workdir / "var"),
        "SIGMA_STRATEGY_PATHS": str(workdir / "plugins"),
    }


def _sigma(workdir: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sigma.cli.main", *args],
        cwd=workdir,
        env=_env(workdir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture
def fresh_pg_url() -> Iterator[str]:
    """A PostgreSQL database created for this test (no optuna schema yet), dropped after."""
    name = f"sigma_optuna_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _sqlalchemy_url(name)
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.pg
def test_processes_started_together_on_a_fresh_database_share_the_study(
    workdir: Path, fresh_pg_url: str
) -> None:
    args = [
        "optimize", "--data", "bars.csv", "--folds", "0", "--trials", "30", "--workers", "1",
        "--study", "together", "--bound", "fast=2:30",
    ]  # fmt: skip
    # As typed on another machine: a bare postgresql:// URL (optuna alone would want psycopg2).
    bare = fresh_pg_url.replace("postgresql+psycopg://", "postgresql://")
    processes = [
        _sigma(workdir, *args, "--out", f"report{i}", "--storage", url)
        for i, url in enumerate([fresh_pg_url, fresh_pg_url, bare])
    ]
    outputs = [p.communicate(timeout=DEADLINE)[0] for p in processes]
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output
        assert "Traceback" not in output and "IntegrityError" not in output
    study = optuna.load_study(study_name="together", storage=fresh_pg_url)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) >= 30
    # One study, not one per process: each process reports the shared study's best when it
    # finished (a process that finished while another still ran trials may report less), so
    # every report is one of the study's scores and the last one is the study's best.
    prefix = "sigma optimize: in-sample Sharpe "
    reported = {
        line.split(prefix, 1)[1].strip()
        for out in outputs
        for line in out.splitlines()
        if prefix in line
    }
    assert len(reported) >= 1, outputs
    assert reported <= {f"{t.value:.3f}" for t in complete}, reported
    assert f"{study.best_value:.3f}" in reported, (reported, study.best_value)


def _lines(process: subprocess.Popen[str]) -> queue.Queue[str]:
    """The process's output lines as they come (read on a thread, so waits have deadlines)."""
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    return lines


def _wait_for(lines: queue.Queue[str], text: str, seen: list[str]) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=deadline - time.monotonic())
        except queue.Empty:
            break
        seen.append(line)
        if text in line:
            return
    raise AssertionError(f"{text!r} not printed:\n{''.join(seen)}")


def test_ctrl_c_prints_the_best_so_far_and_exits_130(workdir: Path) -> None:
    process = _sigma(
        workdir, "optimize", "--strategy", "slow_cross", "--data", "bars.csv", "--folds", "0",
        "--trials", "5000", "--workers", "1",
    )  # fmt: skip
    lines, seen = _lines(process), []
    _wait_for(lines, "in-sample: trial 1/5000", seen)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=DEADLINE) == 130
    _wait_for(lines, "best so far", seen)
    output = "".join(seen)
    while not lines.empty():
        output += lines.get()
    assert "stopped: optimisation of slow_cross cancelled after" in output
    assert "Traceback" not in output and "KeyboardInterrupt" not in output
    assert "best so far: in-sample Sharpe" in output
    assert "fast" in output.split("best so far", 1)[1]

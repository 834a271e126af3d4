"""The event loop of SIGMA's long-running processes."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sigma.cli import live
from sigma.cli.main import app
from sigma.runtime.event_loop import new_event_loop, serve


def test_serve_runs_on_uvloop_with_the_startup_heap_frozen() -> None:
    seen: list[str] = []

    async def main() -> None:
        seen.append(type(asyncio.get_running_loop()).__module__)
        seen.append(str(gc.get_freeze_count() > 0))

    try:
        serve(main)
    finally:
        gc.unfreeze()
    assert seen == ["uvloop", "True"]
    loop = new_event_loop()
    try:
        assert loop.run_until_complete(asyncio.sleep(0, "ok")) == "ok"
    finally:
        loop.close()


def test_sigma_up_and_worker_run_on_uvloop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SIGMA_DATABASE_URL", f"sqlite:///{tmp_path / 'up.db'}")
    loops: list[tuple[str, tuple[str, ...]]] = []

    async def fake_run_system(app: object, components: object, **kwargs: object) -> None:
        loops.append((type(asyncio.get_running_loop()).__module__, tuple(components)))  # type: ignore[arg-type]

    monkeypatch.setattr(live, "run_services", fake_run_system)
    try:
        for command in (["up", "--only", "bot"], ["worker"]):
            result = CliRunner().invoke(app, command)
            assert result.exit_code == 0, result.output
            assert result.output.endswith("stopped cleanly\n")
    finally:
        gc.unfreeze()
    assert loops == [("uvloop", ("bot",)), ("uvloop", ("worker",))]

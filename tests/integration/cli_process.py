"""`sigma <command>` as a child process of a test, killed and restarted at will.

The process is the real CLI command (`sigma bot`, `sigma worker`); only its log is set up as
JSON lines on stdout (`init_logging(json=True)`; the CLI's own `basicConfig` then adds
nothing), so a test can read the decisions back even from a process it killed before it
flushed its audit trail. With `SIGMA_TEST_TRACEMALLOC=<file>` in its environment the process
traces its allocations and, on SIGUSR1, writes `{"traced": bytes, "peak": bytes}` (after a
full collection) to that file.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from tests.integration.steady_orders import decisions_in_log, wait_until

CLI = """
import gc, json, os, signal, sys, tracemalloc
from sigma.ops.logging import init_logging

init_logging(json=True, stream=sys.stdout)
probe = os.environ.get("SIGMA_TEST_TRACEMALLOC")
if probe:
    tracemalloc.start()

    def report(signum, frame):
        gc.collect()
        current, peak = tracemalloc.get_traced_memory()
        with open(probe, "a") as f:
            f.write(json.dumps({"traced": current, "peak": peak}) + "\\n")

    signal.signal(signal.SIGUSR1, report)
from sigma.cli.main import app

sys.argv = ["sigma", sys.argv[1]]
app()
"""


def rss_bytes(pid: int) -> int:
    """Resident set size of process `pid` (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


class Process:
    """One `sigma <command>`, restarted under the same name; the output of every run is kept
    in `lines`."""

    def __init__(self, command: str, env: dict[str, str], cwd: Path) -> None:
        self.command = command
        self.env = {**os.environ, **env}
        self.cwd = cwd
        self.proc: asyncio.subprocess.Process | None = None
        self.lines: list[str] = []
        self.runs = 0
        self._first = 0
        self._reader: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def start(self) -> None:
        """Start a run and return once it announced it is ready ("Ctrl-C stops")."""
        await self.launch()
        await self.ready()

    async def launch(self) -> None:
        """Start a run; `ready` waits for it to announce it is ready."""
        self.runs += 1
        self._first = len(self.lines)
        self.proc = proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", CLI, self.command, env=self.env, cwd=self.cwd,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            limit=1 << 20,
        )  # fmt: skip
        self._reader = asyncio.create_task(self._read(proc))

    async def ready(self) -> None:
        """Wait until the run `launch` started announced it is ready ("Ctrl-C stops")."""
        proc, first = self.proc, self._first
        assert proc is not None
        await wait_until(
            lambda: "Ctrl-C stops" in self.lines[first:] or proc.returncode is not None,
            f"sigma {self.command} to start",
            # A guard against a hang, not a speed check: a process importing all of SIGMA
            # (under tracemalloc in the memory tests) took over 30 s on two busy cores.
            timeout=90.0,
        )
        assert proc.returncode is None, f"sigma {self.command} ended:\n" + "\n".join(
            self.lines[first:][-30:]
        )

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))

    async def kill(self) -> None:
        """kill -9, and read what it wrote before."""
        if self.proc is None:
            return
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()
        if self._reader is not None:
            await self._reader

    async def stop(self) -> None:
        """Ctrl-C: the command stops in order, exits 0 and says so."""
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(self.proc.wait(), 30)
        if self._reader is not None:
            await self._reader
        assert code == 0 and "stopped cleanly" in self.lines, "\n".join(self.lines[-30:])

    def decisions(self, action: str) -> list[str]:
        """Client order ids of the bot's `action` decisions in every run's log."""
        return decisions_in_log(self.lines, action)

    def records(self) -> list[dict[str, object]]:
        """The JSON log records of every run."""
        return [json.loads(line) for line in self.lines if line.startswith("{")]

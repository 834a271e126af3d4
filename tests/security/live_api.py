"""A real `sigma api` process for attack tests: a child process on a free port with its own
SQLite database, users created beforehand, and its output kept for the log checks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from sigma.api.users import create_user
from sigma.bootstrap import App
from sigma.config import load_settings
from sigma.store.db import session_scope

PASSWORD = "live-attack-password"
ADMIN_PASSWORD = "operator-chose-this-1"
START_TIMEOUT = 60.0
CLI = "import sys; from sigma.cli.main import app; sys.argv[0] = 'sigma'; app()"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for(condition: object, what: str, timeout: float = 10.0) -> None:
    """Poll `condition()` until it is true; AssertionError naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


@dataclass
class LiveApi:
    """A running `sigma api`: its base URL, process and output file."""

    url: str
    process: subprocess.Popen[bytes]
    output: Path

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/ws"

    def log(self) -> str:
        """Everything the process wrote so far (stdout and stderr)."""
        return self.output.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        """Ctrl-C, then kill if it does not end within 20 s."""
        if self.process.poll() is None:
            self.process.send_signal(2)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_api(
    tmp_path: Path,
    users: dict[str, str],
    *,
    rounds: int = 4,
    env: dict[str, str] | None = None,
) -> LiveApi:
    """Create `users` ({name: role}, password `PASSWORD`) in a fresh database under
    `tmp_path`, then start `sigma api` on it (the first admin's password from the
    environment) and wait until `/api/health` answers."""
    folder = tmp_path / f"api-{len(list(tmp_path.glob('api-*')))}"
    folder.mkdir()
    database = f"sqlite:///{folder / 'sigma.db'}"
    settings = {
        "SIGMA_DATABASE_URL": database,
        "SIGMA_VAR_DIR": str(folder / "var"),
        "SIGMA_BCRYPT_ROUNDS": str(rounds),
        "SIGMA_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "SIGMA_LOG_LEVEL": "INFO",
        **(env or {}),
    }
    app = App(load_settings(database_url=database, var_dir=folder / "var"))
    try:
        with session_scope(app.sessions) as session:
            for name, role in users.items():
                create_user(session, name, PASSWORD, role, rounds=rounds)
    finally:
        app.close()
    port = free_port()
    output = folder / "output.log"
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SIGMA_")},
        **settings,
    }
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-c", CLI, "api", "--host", "127.0.0.1", "--port", str(port)],
            env=environment,
            cwd=folder,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    live = LiveApi(f"http://127.0.0.1:{port}", process, output)

    def healthy() -> bool:
        assert process.poll() is None, f"sigma api ended:\n{live.log()[-3000:]}"
        try:
            return httpx.get(f"{live.url}/api/health", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(healthy, "sigma api to answer", START_TIMEOUT)
    except BaseException:
        live.stop()
        raise
    return live

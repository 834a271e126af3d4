"""Private instances of Redis, PostgreSQL and RabbitMQ for the restart tests.

The shared servers on 6379/5432/5672 serve the tests running next to these (pytest -n 2), so a
test that restarts a server gets its own: the real binaries, started and stopped with their
real commands (`redis-server`/`redis-cli shutdown`, `pg_createcluster`/`pg_ctlcluster`,
`rabbitmq-server -detached`/`rabbitmqctl stop`) on free ports, removed afterwards. A server
that cannot start fails the test with its log, never skips it.

`stop()` and `start()` are coroutines: a test calls them while the system under test runs on
the same event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import random
import shutil
import signal
import socket
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

# Ports are taken below Linux's ephemeral range (32768+): a listener there can meet
# EADDRINUSE from an outgoing connection that happened to get the same local port.
_PORT_RANGE = (20_000, 32_000)
COMMAND_TIMEOUT = 90.0


class ServerError(RuntimeError):
    """A private server did not start or stop; the message carries its log."""


def free_port() -> int:
    """A port nobody listens on (127.0.0.1), outside the ephemeral range."""
    for _ in range(200):
        port = random.randint(*_PORT_RANGE)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise ServerError("no free port found")


def port_open(port: int) -> bool:
    """True when something accepts TCP connections on 127.0.0.1:`port`."""
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(no log at {path}: {exc})"


async def _run(
    *argv: str, env: dict[str, str] | None = None, timeout: float = COMMAND_TIMEOUT
) -> str:
    """Run a command; its output, or ServerError with the output when it fails."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        raise ServerError(f"{' '.join(argv)} did not finish within {timeout:.0f}s") from None
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        raise ServerError(f"{' '.join(argv)} exited with {proc.returncode}:\n{text}")
    return text


async def _until(
    check: Callable[[], bool], what: str, timeout: float, log: Path | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise ServerError(
                f"timed out after {timeout:.0f}s waiting for {what}"
                + (f"\n--- {log} ---\n{_tail(log)}" if log else "")
            )
        await asyncio.sleep(0.05)


class PrivateServer:
    """A server of our own: `start`, `stop`, `restart` (stop + start), `remove` at the end."""

    name = "server"
    port: int
    log: Path

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def restart(self, down_for: float = 0.0) -> float:
        """Stop, stay down `down_for` seconds, start again; returns the seconds it was down."""
        started = time.monotonic()
        await self.stop()
        if down_for:
            await asyncio.sleep(down_for)
        await self.start()
        return time.monotonic() - started

    async def remove(self) -> None:
        """Stop (if running) and delete everything the server created."""
        raise NotImplementedError


class PrivateRedis(PrivateServer):
    """`redis-server --daemonize yes` on its own port; stopped with `SHUTDOWN NOSAVE`."""

    name = "redis"

    def __init__(self) -> None:
        if shutil.which("redis-server") is None:
            raise ServerError("redis-server is not installed")
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="sigma-redis-"))
        self.log = self.dir / "redis.log"
        self.url = f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        await _run(
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
            "--daemonize", "yes", "--save", "", "--appendonly", "no",
            "--dir", str(self.dir), "--pidfile", str(self.dir / "redis.pid"),
            "--logfile", str(self.log),
        )  # fmt: skip
        await _until(lambda: port_open(self.port), "redis to listen", 30, self.log)

    async def stop(self) -> None:
        # The server closes every client connection and exits; the command's own connection
        # is cut by that, so its exit status says nothing.
        with contextlib.suppress(ServerError):
            await _run("redis-cli", "-p", str(self.port), "shutdown", "nosave", timeout=30)
        await _until(lambda: not port_open(self.port), "redis to exit", 30, self.log)

    async def remove(self) -> None:
        if port_open(self.port):
            await self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def _pg_version() -> str:
    versions = sorted(Path("/etc/postgresql").glob("*"), key=lambda p: float(p.name))
    if not versions:
        raise ServerError("no PostgreSQL installation under /etc/postgresql")
    return versions[-1].name


class PrivatePostgres(PrivateServer):
    """A cluster of our own (`pg_createcluster`), trust authentication on 127.0.0.1,
    started and stopped with `pg_ctlcluster`, dropped with `pg_dropcluster --stop`."""

    name = "postgresql"

    def __init__(self) -> None:
        if shutil.which("pg_createcluster") is None:
            raise ServerError("pg_createcluster (postgresql-common) is not installed")
        self.version = _pg_version()
        self.cluster = f"sigmafault_{uuid.uuid4().hex[:8]}"
        self.port = free_port()
        self.log = Path(f"/var/log/postgresql/postgresql-{self.version}-{self.cluster}.log")
        self.created = False

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL of `database` on this cluster."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def dsn(self, database: str = "postgres") -> str:
        """libpq URL of `database` on this cluster."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    async def create(self) -> None:
        await _run(
            "pg_createcluster", self.version, self.cluster, "--port", str(self.port),
            "--", "--auth-local=trust", "--auth-host=trust",
        )  # fmt: skip
        self.created = True
        # initdb's --auth-host already says trust; spell the line out so the intent is plain.
        hba = Path(f"/etc/postgresql/{self.version}/{self.cluster}/pg_hba.conf")
        with hba.open("a") as f:
            f.write("host all all 127.0.0.1/32 trust\n")

    async def _ctl(self, action: str) -> None:
        await _run("pg_ctlcluster", "--skip-systemctl-redirect", self.version, self.cluster, action)

    async def start(self) -> None:
        try:
            await self._ctl("start")
        except ServerError as exc:
            raise ServerError(f"{exc}\n--- {self.log} ---\n{_tail(self.log)}") from None
        await _until(lambda: port_open(self.port), "postgresql to listen", 30, self.log)

    async def stop(self) -> None:
        await self._ctl("stop")  # fast shutdown: sessions are terminated
        await _until(lambda: not port_open(self.port), "postgresql to exit", 30, self.log)

    async def remove(self) -> None:
        if self.created:
            await _run("pg_dropcluster", "--stop", self.version, self.cluster)
            self.created = False


class PrivateRabbit(PrivateServer):
    """A second RabbitMQ node (`<name>@localhost`) with its own ports, config, enabled
    plugins (none), database and logs in a temporary folder owned by the `rabbitmq` user."""

    name = "rabbitmq"

    def __init__(self) -> None:
        if shutil.which("rabbitmq-server") is None:
            raise ServerError("rabbitmq-server is not installed")
        self.node = f"sigmafault{uuid.uuid4().hex[:6]}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="sigma-rabbit-"))
        self.log = self.dir / "log" / f"{self.node}.log"
        self.pid_file = self.dir / "pid"
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/"
        (self.dir / "rabbitmq.conf").write_text("loopback_users.guest = true\n")
        (self.dir / "rabbitmq-env.conf").write_text("")  # not the system node's NODENAME
        (self.dir / "enabled_plugins").write_text("[].\n")  # no management listener on 15672
        try:
            user = pwd.getpwnam("rabbitmq")
        except KeyError:
            user = None
        if user is not None:
            for path in (self.dir, *self.dir.iterdir()):
                os.chown(path, user.pw_uid, user.pw_gid)
        self.env = {
            **os.environ,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": str(self.dir / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_PID_FILE": str(self.pid_file),
        }

    def _pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def _alive(self) -> bool:
        pid = self._pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    def _exited(self) -> bool:
        """True only when the pid file names a process that is gone. The node creates the
        file before it writes its pid, so an empty file means "starting", not "dead" (read as
        dead, a slow start failed the test and left the node running)."""
        return self._pid() is not None and not self._alive()

    async def start(self) -> None:
        self.pid_file.unlink(missing_ok=True)
        await _run("rabbitmq-server", "-detached", env=self.env)
        # The AMQP listener opens last, once the broker application has started (cheaper
        # to watch than `rabbitmqctl wait`, whose own Erlang VM takes seconds to boot).
        await _until(
            lambda: port_open(self.port) or self._exited(),
            "rabbitmq to listen",
            90,
            self.log,
        )
        if not port_open(self.port):
            raise ServerError(
                f"rabbitmq exited while starting\n--- {self.log} ---\n{_tail(self.log)}"
            )

    async def stop(self) -> None:
        if not self._alive():
            return
        # With the pid file, `stop` returns once the OS process is gone (ports released).
        await _run("rabbitmqctl", "-n", self.node, "stop", str(self.pid_file), env=self.env)
        await _until(lambda: not port_open(self.port), "rabbitmq to exit", 30, self.log)

    async def remove(self) -> None:
        # SIGTERM is an orderly stop for the Erlang VM (init:stop), without the seconds the
        # CLI takes to boot; the folder goes anyway.
        if self.pid_file.exists():
            # A node still writing its pid file is stopped too, not left behind.
            with contextlib.suppress(ServerError):
                await _until(lambda: self._pid() is not None, "rabbitmq's pid", 10, self.log)
        pid = self._pid()
        try:
            if pid is not None and self._alive():
                os.kill(pid, signal.SIGTERM)
                with contextlib.suppress(ServerError):
                    await _until(lambda: not self._alive(), "rabbitmq to exit", 30, self.log)
        finally:
            if pid is not None and self._alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            shutil.rmtree(self.dir, ignore_errors=True)

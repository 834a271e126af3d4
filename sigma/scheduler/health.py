"""HealthCheck: database, Redis, RabbitMQ, feed freshness, order worker (orders waiting and
heartbeats), disk and memory.

Each check talks to the real thing (a query, a PING, an AMQP connection) and returns a
`CheckResult`. `HealthMonitor` runs them, exports ``sigma_health_ok{check=...}`` gauges and
raises an alert only when a check changes state (ok -> failing: error; failing -> ok: info), so
a 30-second schedule does not repeat the same alert all night.
"""

from __future__ import annotations

import asyncio
import shutil
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge

from sigma.ops.metrics import Metrics
from sigma.scheduler.tasks import Alerter
from sigma.store import heartbeats
from sigma.store.handles import Engine, SessionFactory
from sigma.store.queries import health as queries


@dataclass(frozen=True, slots=True)
class CheckResult:
    """Outcome of one check. `ok` None means "nothing to judge yet" (e.g. no ticks stored)."""

    name: str
    ok: bool | None
    detail: str


Check = Callable[[datetime], CheckResult]


def _guard(name: str, fn: Callable[[], CheckResult]) -> CheckResult:
    try:
        return fn()
    except Exception as exc:
        return CheckResult(name, False, f"{type(exc).__name__}: {exc}")


def check_database(engine: Engine) -> Check:
    """The database answers a query."""

    def run(_now: datetime) -> CheckResult:
        def probe() -> CheckResult:
            queries.ping(engine)
            return CheckResult("database", True, queries.dialect(engine))

        return _guard("database", probe)

    return run


def check_redis(url: str) -> Check:
    """Redis answers PING."""

    def run(_now: datetime) -> CheckResult:
        def probe() -> CheckResult:
            import redis

            client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
            try:
                client.ping()
            finally:
                client.close()
            return CheckResult("redis", True, "PONG")

        return _guard("redis", probe)

    return run


def check_rabbitmq(url: str) -> Check:
    """RabbitMQ accepts an AMQP connection."""

    async def connect() -> None:
        import aio_pika

        connection = await aio_pika.connect(url, timeout=3)
        await connection.close()

    def run(_now: datetime) -> CheckResult:
        def probe() -> CheckResult:
            asyncio.run(connect())
            return CheckResult("rabbitmq", True, "connected")

        return _guard("rabbitmq", probe)

    return run


def check_feed(engine: Engine, max_age: timedelta, symbols: Sequence[str] = ()) -> Check:
    """The newest recorded tick is younger than `max_age`, or newer than at the previous
    check; with `symbols`, that of each symbol (once any has ticks, a symbol without any fails
    too: its feed never delivered). Ticks carry market time: a replay or the built-in market
    may run behind the wall clock while its prices still arrive, and that is alive.

    With `symbols` the newest tick is read per symbol: a maximum over all symbols would read
    every tick kept (a month of them, every 30 seconds)."""

    def newest() -> dict[str, datetime | None]:
        if not symbols:
            return {"": queries.newest_tick(engine)}
        return queries.newest_ticks(engine, symbols)

    previous: dict[str, datetime | None] = {}

    def run(now: datetime) -> CheckResult:
        def probe() -> CheckResult:
            latest = newest()
            seen = dict(previous)
            previous.update(latest)
            if all(ts is None for ts in latest.values()):
                return CheckResult("feed", None, "no ticks stored yet")
            ages = {sym: None if ts is None else now - ts for sym, ts in latest.items()}
            stale = {
                sym: age
                for sym, age in ages.items()
                if age is None
                # Old, and no newer than at the last check (a first look gives it one round).
                or (age > max_age and seen.get(sym) == latest[sym])
            }
            if not symbols:
                age = ages[""]
                assert age is not None
                return CheckResult("feed", not stale, f"last tick {age.total_seconds():.0f}s ago")
            shown = stale or ages
            detail = ", ".join(
                f"{sym} {'no ticks' if age is None else f'{age.total_seconds():.0f}s ago'}"
                for sym, age in shown.items()
            )
            prefix = "stale: " if stale else "last tick: "
            return CheckResult("feed", not stale, prefix + detail)

        return _guard("feed", probe)

    return run


def check_worker(engine: Engine, max_wait: timedelta) -> Check:
    """No order has waited longer than `max_wait` for the order worker to book it."""

    def run(now: datetime) -> CheckResult:
        def probe() -> CheckResult:
            waiting, oldest = queries.waiting_orders(engine)
            if not waiting or oldest is None:
                return CheckResult("worker", True, "no orders waiting")
            age = now - oldest
            ok = age <= max_wait
            detail = f"{waiting} order(s) waiting, oldest {age.total_seconds():.0f}s"
            return CheckResult("worker", ok, detail)

        return _guard("worker", probe)

    return run


def check_heartbeats(sessions: SessionFactory, max_age: timedelta) -> Check:
    """Every order worker that beats into `worker_heartbeats` (in this process or any other)
    did so within `max_age`. With none on record there is nothing to judge; a worker that
    never started shows in `check_worker` as orders left waiting."""

    def run(now: datetime) -> CheckResult:
        def probe() -> CheckResult:
            with sessions() as session:
                known = heartbeats.beats(session)
            if not known:
                return CheckResult("heartbeat", None, "no worker heartbeats on record")
            silent = [
                (b.name, (now - b.beat_at).total_seconds())
                for b in known
                if now - b.beat_at > max_age
            ]
            if silent:
                detail = ", ".join(f"{name} silent for {age:.0f}s" for name, age in silent)
                return CheckResult("heartbeat", False, detail)
            return CheckResult("heartbeat", True, f"{len(known)} worker(s) beating")

        return _guard("heartbeat", probe)

    return run


def check_disk(path: Path, min_free_pct: float) -> Check:
    """The volume holding `path` has at least `min_free_pct` percent free."""

    def run(_now: datetime) -> CheckResult:
        def probe() -> CheckResult:
            usage = shutil.disk_usage(path)
            free = 100.0 * usage.free / usage.total
            return CheckResult("disk", free >= min_free_pct, f"{free:.1f}% free at {path}")

        return _guard("disk", probe)

    return run


def check_memory(min_available_pct: float, meminfo: Path = Path("/proc/meminfo")) -> Check:
    """At least `min_available_pct` percent of memory is available (Linux /proc/meminfo)."""

    def run(_now: datetime) -> CheckResult:
        def probe() -> CheckResult:
            fields = {}
            for line in meminfo.read_text().splitlines():
                key, _, rest = line.partition(":")
                fields[key] = float(rest.split()[0])
            avail = 100.0 * fields["MemAvailable"] / fields["MemTotal"]
            ok = avail >= min_available_pct
            return CheckResult("memory", ok, f"{avail:.1f}% available")

        return _guard("memory", probe)

    return run


# One gauge per registry: registering the same name twice on a registry is an error. Keyed
# by the registry itself, weakly: an id() outlives its registry and is handed to the next
# one, which would then never get its gauge.
_GAUGES: weakref.WeakKeyDictionary[CollectorRegistry, Gauge] = weakref.WeakKeyDictionary()


def _gauge(metrics: Metrics) -> Gauge:
    key = metrics.registry
    if key not in _GAUGES:
        _GAUGES[key] = Gauge(
            "health_ok",
            "1 when a health check passes, 0 when it fails, -1 when it has nothing to judge.",
            ["check"],
            namespace="sigma",
            registry=metrics.registry,
        )
    return _GAUGES[key]


class HealthMonitor:
    """Runs checks, exports them as metrics, and alerts when a check changes state."""

    def __init__(
        self, checks: list[Check], alerter: Alerter, metrics: Metrics | None = None
    ) -> None:
        self.checks = checks
        self.alerter = alerter
        self.metrics = metrics
        self.state: dict[str, bool | None] = {}

    def run(self, now: datetime) -> list[CheckResult]:
        """Run every check once; returns the results."""
        results = [check(now) for check in self.checks]
        for result in results:
            if self.metrics is not None:
                value = -1.0 if result.ok is None else float(result.ok)
                _gauge(self.metrics).labels(check=result.name).set(value)
            before = self.state.get(result.name)
            self.state[result.name] = result.ok
            if result.ok is False and before is not False:
                self.alerter.send(
                    "error",
                    "health",
                    f"{result.name} check failing: {result.detail}",
                    dedupe_key=f"health:{result.name}",
                )
            elif result.ok is True and before is False:
                self.alerter.send(
                    "info", "health", f"{result.name} check recovered: {result.detail}"
                )
        return results

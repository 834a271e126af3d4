"""Health checks against the real database, Redis and RabbitMQ (and unreachable ones), feed
and worker freshness from stored rows, disk and memory; alerts only on change of state."""

from __future__ import annotations

import gc
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from scheduler_helpers import alerts
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from sigma.ops.metrics import Metrics
from sigma.scheduler.health import (
    CheckResult,
    HealthMonitor,
    check_database,
    check_disk,
    check_feed,
    check_heartbeats,
    check_memory,
    check_rabbitmq,
    check_redis,
    check_worker,
)
from sigma.scheduler.tasks import Alerter
from sigma.store import heartbeats
from sigma.store.db import create_db_engine, session_scope
from sigma.store.models import OrderRecord, TickRecord, WorkerHeartbeat

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def test_database_check(engine: Engine) -> None:
    assert check_database(engine)(NOW).ok is True
    broken = check_database(create_db_engine("postgresql://nobody@127.0.0.1:1/none"))(NOW)
    assert broken.ok is False and "OperationalError" in broken.detail


def test_redis_and_rabbitmq_checks(redis_url: str, amqp_url: str) -> None:
    assert check_redis(redis_url)(NOW) == CheckResult("redis", True, "PONG")
    assert check_redis("redis://127.0.0.1:1/0")(NOW).ok is False
    assert check_rabbitmq(amqp_url)(NOW) == CheckResult("rabbitmq", True, "connected")
    assert check_rabbitmq("amqp://guest:guest@127.0.0.1:1/")(NOW).ok is False


def test_feed_freshness(engine: Engine, sessions: sessionmaker[Session]) -> None:
    check = check_feed(engine, timedelta(seconds=30))
    assert check(NOW).ok is None
    with session_scope(sessions) as session:
        session.add(TickRecord(symbol="BTC", ts=NOW - timedelta(seconds=10), price=Decimal(1)))
    assert check(NOW).ok is True
    late = check(NOW + timedelta(minutes=5))
    assert late.ok is False and late.detail == "last tick 310s ago"


def test_worker_heartbeat_from_waiting_orders(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    check = check_worker(engine, timedelta(seconds=60))
    assert check(NOW) == CheckResult("worker", True, "no orders waiting")
    with session_scope(sessions) as session:
        session.add(
            OrderRecord(
                client_order_id="c1",
                mode="paper",
                symbol="BTC",
                side="buy",
                qty=Decimal(1),
                created_at=NOW - timedelta(seconds=30),
            )
        )
    assert check(NOW).ok is True
    stuck = check(NOW + timedelta(seconds=90))
    assert stuck.ok is False and stuck.detail == "1 order(s) waiting, oldest 120s"


def test_heartbeats_of_workers_in_any_process(sessions: sessionmaker[Session]) -> None:
    check = check_heartbeats(sessions, timedelta(seconds=120))
    assert check(NOW) == CheckResult("heartbeat", None, "no worker heartbeats on record")
    with session_scope(sessions) as session:
        heartbeats.beat(session, "worker-1", now=NOW - timedelta(seconds=100))
        # A worker of another process (another machine): only its row tells.
        session.add(
            WorkerHeartbeat(name="worker-2", host="other", pid=1, started_at=NOW, beat_at=NOW)
        )
    assert check(NOW) == CheckResult("heartbeat", True, "2 worker(s) beating")
    later = NOW + timedelta(seconds=30)
    assert check(later) == CheckResult("heartbeat", False, "worker-1 silent for 130s")
    with session_scope(sessions) as session:
        heartbeats.beat(session, "worker-1", now=later)  # it came back
    assert check(later).ok is True


def test_a_beat_keeps_the_start_of_its_process_and_forget_spares_other_processes(
    sessions: sessionmaker[Session],
) -> None:
    with session_scope(sessions) as session:
        heartbeats.beat(session, "w", now=NOW)
        heartbeats.beat(session, "w", now=NOW + timedelta(seconds=15))
        session.add(
            WorkerHeartbeat(name="theirs", host="other", pid=1, started_at=NOW, beat_at=NOW)
        )
    with sessions() as session:
        (mine, theirs) = sorted(heartbeats.beats(session), key=lambda b: b.name != "w")
    assert (mine.started_at, mine.beat_at) == (NOW, NOW + timedelta(seconds=15))
    with session_scope(sessions) as session:
        # The row of a name a new process took over is the new one's: it starts anew.
        row = session.get(WorkerHeartbeat, "w")
        assert row is not None
        row.pid = -1
    with session_scope(sessions) as session:
        heartbeats.beat(session, "w", now=NOW + timedelta(seconds=60))
    with sessions() as session:
        renewed = next(b for b in heartbeats.beats(session) if b.name == "w")
    assert renewed.started_at == NOW + timedelta(seconds=60)
    with session_scope(sessions) as session:
        heartbeats.forget(session, "theirs")  # not this process's row: kept
        heartbeats.forget(session, "w")
    with sessions() as session:
        assert [b.name for b in heartbeats.beats(session)] == ["theirs"]
    assert theirs.host == "other"


def test_disk_and_memory(tmp_path: Path) -> None:
    assert check_disk(tmp_path, 0.0)(NOW).ok is True
    assert check_disk(tmp_path, 99.999999)(NOW).ok is False
    assert check_disk(tmp_path / "missing", 1.0)(NOW).ok is False
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal: 1000 kB\nMemFree: 10 kB\nMemAvailable: 40 kB\n")
    low = check_memory(5.0, meminfo)(NOW)
    assert low == CheckResult("memory", False, "4.0% available")
    assert check_memory(1.0, meminfo)(NOW).ok is True
    assert check_memory(1.0)(NOW).ok is not None


def test_monitor_alerts_on_change_of_state(
    sessions: sessionmaker[Session], alerter: Alerter
) -> None:
    state = {"ok": True}

    def flaky(_now: datetime) -> CheckResult:
        return CheckResult("feed", state["ok"], "detail")

    metrics = Metrics()
    monitor = HealthMonitor(
        [flaky, lambda _now: CheckResult("disk", None, "n/a")], alerter, metrics
    )
    monitor.run(NOW)
    assert alerts(sessions) == []
    state["ok"] = False
    monitor.run(NOW)
    monitor.run(NOW)
    state["ok"] = True
    monitor.run(NOW)
    messages = [(a.severity, a.message) for a in alerts(sessions)]
    assert messages == [
        ("error", "feed check failing: detail"),
        ("info", "feed check recovered: detail"),
    ]
    text = metrics.render().decode()
    assert 'sigma_health_ok{check="feed"} 1.0' in text
    assert 'sigma_health_ok{check="disk"} -1.0' in text
    # A second monitor on the same registry reuses the gauge.
    HealthMonitor([flaky], alerter, metrics).run(NOW)


def test_every_new_registry_gets_its_health_gauge(alerter: Alerter) -> None:
    """A registry that is gone leaves its address to the next one: the gauge is still made
    for the new registry (keyed by id() it was not, about nine times in ten)."""
    # The objects earlier tests left are set aside: each collection below then looks only at
    # this test's (a full one in a worker that ran a thousand tests took ~2.7 s).
    gc.freeze()
    try:
        for _ in range(20):
            metrics = Metrics()
            feed = [lambda _now: CheckResult("feed", True, "ok")]
            HealthMonitor(feed, alerter, metrics).run(NOW)
            assert 'sigma_health_ok{check="feed"} 1.0' in metrics.render().decode()
            del metrics
            gc.collect()
    finally:
        gc.unfreeze()

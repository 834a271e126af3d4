"""The order worker's start: it reconciles before it takes any order, and what it cannot reach
then (the venue, the database) is waited for with one line naming it and growing pauses,
not a traceback and an exit (the venue case runs against `sigma venue` in
tests/integration/test_integration_venue_faults.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from sigma.execution.broker import PaperBroker, address
from sigma.execution.worker import OrderWorker
from sigma.ops.metrics import Metrics
from sigma.runtime.supervisor import Backoff
from sigma.runtime.worker_tasks import WorkerTasks
from sigma.store.sqlite_file import DatabaseFileError
from sigma.venues.factory import make_ccxt_broker
from tests.runtime.pipeline_helpers import make_app


class Queue:
    """Records whether the worker started consuming."""

    def __init__(self) -> None:
        self.consumed: list[str] = []

    async def consume(self, name: str, handler: Any, prefetch: int) -> None:
        self.consumed.append(name)


def tasks(tmp_path: Path, alerts: list[tuple[str, str]]) -> tuple[WorkerTasks, Queue]:
    app = make_app(f"sqlite:///{tmp_path / 'sigma.db'}", var_dir=tmp_path / "var")
    worker = OrderWorker(
        app.sessions,
        PaperBroker(),
        on_alert=lambda severity, message, details: alerts.append((severity, message)),
    )
    queue = Queue()
    out = WorkerTasks(worker, queue, None, Metrics(), app.sessions, "w1")  # type: ignore[arg-type]
    out.backoff = Backoff(first=0.01)
    return out, queue


async def test_a_database_away_at_start_is_waited_for_then_the_queue_is_consumed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    alerts: list[tuple[str, str]] = []
    worker_tasks, queue = tasks(tmp_path, alerts)
    real = worker_tasks.worker.reconcile
    failures = 3

    async def reconcile(mode: str) -> dict[str, int]:
        nonlocal failures
        if failures:
            failures -= 1
            raise DatabaseFileError("the database file /x/sigma.db is damaged")
        return await real(mode)

    worker_tasks.worker.reconcile = reconcile  # type: ignore[method-assign]
    await asyncio.wait_for(worker_tasks.consume("paper", 1, asyncio.Event()), 10)
    assert queue.consumed == ["orders"] and worker_tasks.reconciled.is_set()
    lines = [r.getMessage() for r in caplog.records if "cannot reconcile" in r.getMessage()]
    assert len(lines) == 3
    assert "the database file /x/sigma.db is damaged" in lines[0]
    assert "check that the database is up" in lines[0]
    assert [severity for severity, _ in alerts] == ["critical"]  # one alert, not one a try
    # A restart of the component (RabbitMQ went away) does not reconcile again.
    worker_tasks.worker.reconcile = None  # type: ignore[assignment,method-assign]
    await worker_tasks.consume("paper", 1, asyncio.Event())
    assert queue.consumed == ["orders", "orders"]


async def test_stopping_while_the_venue_is_away_ends_without_consuming(tmp_path: Path) -> None:
    alerts: list[tuple[str, str]] = []
    worker_tasks, queue = tasks(tmp_path, alerts)
    worker_tasks.backoff = Backoff(first=30)
    stop = asyncio.Event()

    async def reconcile(mode: str) -> dict[str, int]:
        stop.set()
        raise ConnectionError("venue away")

    worker_tasks.worker.reconcile = reconcile  # type: ignore[method-assign]
    await asyncio.wait_for(worker_tasks.consume("paper", 1, stop), 5)
    assert queue.consumed == [] and not worker_tasks.reconciled.is_set()
    ((_, message),) = alerts
    assert "paper failed: ConnectionError: venue away" in message
    assert "SIGMA_EXCHANGE_CONFIG" in message


async def test_a_broker_is_named_with_the_address_it_sends_to() -> None:
    assert address(PaperBroker()) == "paper"
    clients = [
        make_ccxt_broker("binance", {"BTC": "BTC/USDT"}, {}),
        make_ccxt_broker("upbit", {"BTC": "BTC/KRW"}, {}),  # ccxt's "https://{hostname}"
        make_ccxt_broker(
            "binance", {"BTC": "BTC/USDT"}, {"urls": {"api": "http://127.0.0.1:1/api"}}
        ),
    ]
    try:
        assert [address(c) for c in clients] == [
            "binance at https://api.binance.com/api/v3",
            "upbit at https://api.upbit.com",
            "binance at http://127.0.0.1:1/api",
        ]
    finally:
        for client in clients:
            await client.close()

"""The live pipeline on the real servers: Redis Pub/Sub prices, RabbitMQ orders, PostgreSQL
rows, the worker in its own process; the stored rows equal the backtest's on the same prices."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from sigma.bootstrap import App
from sigma.bus.base import QUEUE_ORDERS
from sigma.bus.rabbitmq import RabbitWorkQueue
from tests.runtime.pipeline_helpers import (
    SYMBOL,
    assert_matches_backtest,
    bars,
    make_app,
    run_pipeline,
)

pytestmark = [pytest.mark.integration, pytest.mark.pg]


@pytest.fixture
async def queues(amqp_url: str, bus_prefix: str) -> AsyncIterator[RabbitWorkQueue]:
    admin = RabbitWorkQueue(amqp_url, bus_prefix)
    yield admin
    await admin.delete_queues(QUEUE_ORDERS)
    await admin.close()


@pytest.fixture
def services(
    pg_schema_url: str, redis_url: str, amqp_url: str, bus_prefix: str
) -> Iterator[dict[str, Any]]:
    yield {
        "database_url": pg_schema_url,
        "redis_url": redis_url,
        "amqp_url": amqp_url,
        "bus_prefix": bus_prefix,
    }


async def test_pipeline_on_real_services_matches_the_backtest(
    services: dict[str, Any], queues: RabbitWorkQueue
) -> None:
    app = make_app(**services)
    frame = bars()
    outcome = await run_pipeline(app, frame)
    assert assert_matches_backtest(outcome, app, frame) >= 6
    assert await queues.dead_letters(QUEUE_ORDERS) == []
    app.close()


async def test_worker_process_books_orders_dead_letters_poison_and_stops_cleanly(
    services: dict[str, Any], queues: RabbitWorkQueue
) -> None:
    app = make_app(**services)
    App(app.settings).db  # noqa: B018 - schema ready before the worker process starts
    env = {
        **os.environ,
        "SIGMA_DATABASE_URL": services["database_url"],
        "SIGMA_REDIS_URL": services["redis_url"],
        "SIGMA_AMQP_URL": services["amqp_url"],
        "SIGMA_BUS_PREFIX": services["bus_prefix"],
        "SIGMA_SYMBOLS": SYMBOL,
        "SIGMA_COMMISSION_PCT": "0.001",
        "SIGMA_SLIPPAGE_BPS": "5",
    }
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sigma.cli.main", "worker",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        await queues.publish(QUEUE_ORDERS, b'{"client_order_id": 1}', message_id="poison-1")
        frame = bars()
        outcome = await run_pipeline(app, frame, components=("bot",))
        assert_matches_backtest(outcome, app, frame)
        letters = await queues.dead_letters(QUEUE_ORDERS)
        assert [d.message_id for d in letters] == ["poison-1"]
        assert "malformed order event 'poison-1'" in letters[0].headers["x-error"]
    finally:
        worker.send_signal(signal.SIGINT)
        output, _ = await asyncio.wait_for(worker.communicate(), 30)
    assert worker.returncode == 0, output.decode()[-2000:]
    assert b"stopped cleanly" in output
    app.close()

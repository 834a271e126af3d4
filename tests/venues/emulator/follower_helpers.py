"""What the order follower's tests share: a worker and its follower on a database and on
`sigma venue` through real ccxt (ccxt.pro, so with the user-data stream, or ccxt's async
client, without), the rows they booked, and waiting on a condition with a deadline."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro
from adapter_helpers import _VENUES
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from sigma.execution.events import CancelEvent
from sigma.execution.follower import FollowerSettings, OrderFollower
from sigma.execution.worker import OrderWorker
from sigma.store import session_factory
from sigma.store.models import FillRecord, OrderRecord
from sigma.venues.ccxt.errors import RetryPolicy
from sigma.venues.ccxt.execution import CcxtExecutionClient
from sigma.venues.emulator.server import VenueServer

WAIT = 15.0


class RealSleeps(list[float]):
    """Waits for real (a venue's Retry-After must be honoured) and records each wait."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)
        await asyncio.sleep(seconds)


@dataclass
class Following:
    """A worker with its follower running, and what it raised."""

    worker: OrderWorker
    client: CcxtExecutionClient
    sleeps: RealSleeps
    alerts: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    @property
    def follower(self) -> OrderFollower:
        return self.worker.follower

    @property
    def sessions(self) -> sessionmaker[Session]:
        return self.worker.sessions


@contextlib.asynccontextmanager
async def following(
    server: VenueServer,
    venue: str,
    engine: Engine,
    key: str,
    secret: str,
    *,
    stream: bool = True,
    run: bool = True,
    mode: str = "live",
    **settings: Any,
) -> AsyncIterator[Following]:
    """A worker on ``engine`` trading ``venue`` on ``server``, its follower running (unless
    ``run`` is false) with ``settings``; ccxt's own throttle is off so the follower's budget
    and the venue's limits are what the tests see."""
    options, profile, symbols = _VENUES[venue]
    config = options(
        {**server.ccxt_config(venue), "apiKey": key, "secret": secret, "enableRateLimit": False}
    )
    exchange = getattr(ccxt_pro if stream else ccxt_async, venue)(config)
    sleeps = RealSleeps()
    client = CcxtExecutionClient(
        exchange, profile(), symbols, retry=RetryPolicy(attempts=6), sleep=sleeps
    )
    alerts: list[tuple[str, str, dict[str, Any]]] = []
    worker = OrderWorker(
        session_factory(engine),
        client,
        on_alert=lambda *alert: alerts.append(alert),
        follow=FollowerSettings(**{"retry_seconds": 0.1, **settings}),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(worker.follower.run(mode, stop)) if run else None
    try:
        await client.instruments()
        yield Following(worker, client, sleeps, alerts)
    finally:
        stop.set()
        if task is not None:
            await asyncio.wait_for(task, WAIT)
        await worker.close()
        await client.close()


async def until(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    """Wait until ``condition()`` holds; fail naming ``what`` after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def order_row(sessions: sessionmaker[Session], coid: str) -> OrderRecord:
    with sessions() as session:
        row = session.scalars(select(OrderRecord).where(OrderRecord.client_order_id == coid)).one()
        session.expunge(row)
        return row


def fills(sessions: sessionmaker[Session], coid: str) -> list[FillRecord]:
    with sessions() as session:
        found = list(session.scalars(select(FillRecord).where(FillRecord.client_order_id == coid)))
        session.expunge_all()
        return found


def booked(sessions: sessionmaker[Session], coid: str) -> tuple[str, Decimal, int]:
    """The order's status, filled quantity and number of fills, as booked."""
    row = order_row(sessions, coid)
    return row.status, row.filled_qty, len(fills(sessions, coid))


def cancel_body(coid: str, symbol: str = "BTC") -> bytes:
    from datetime import UTC, datetime

    return CancelEvent(
        client_order_id=coid, symbol=symbol, reason="test", created_at=datetime.now(UTC)
    ).to_bytes()

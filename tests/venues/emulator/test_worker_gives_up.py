"""The order worker on its last try of a venue order (the queue dead-letters it if that fails
too): it settles the order rather than leaving it open on record with nothing to finish it and
the bot waiting. Real ccxt over HTTP to `sigma venue` through a proxy that spoils answers
(`proxy_helpers`), one try per placement and no queue retries, so the first failure is the
last.

- the venue never took the order (every new order's answer spoiled, unsent): it is recorded
  rejected with the reason, the bot is told, an alert says which venue;
- the venue took it and only the answer was lost: the last lookup finds it and books it; the
  delivery succeeds after all;
- the venue is away (503 for everything): whether it holds the order is unknown, so it stays
  open on record for reconciliation, the bot is told it is dead-lettered, a critical alert.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal as D
from typing import Any

from adapter_helpers import adapter, event
from proxy_helpers import SPOILED, VENUES, proxy
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from sigma.bus import CHANNEL_ORDER_STATUS, InMemoryWorkQueue
from sigma.domain import Side
from sigma.execution.events import OrderStatusEvent
from sigma.execution.worker import OrderWorker
from sigma.store import session_factory
from sigma.store.models import FillRecord, OrderRecord
from sigma.venues.emulator.server import VenueServer
from tests.execution.execution_helpers import RecordingPubSub

KEY, SECRET, _, START = VENUES["binance"]
COID = "last-0000001"


class Outcome:
    """What one order's single delivery left: the worker's alerts and announcements, the
    dead letters, the stored order and fills, the venue's orders."""

    def __init__(self) -> None:
        self.alerts: list[tuple[str, str]] = []
        self.statuses: list[OrderStatusEvent] = []
        self.dead: list[str] = []
        self.order: OrderRecord | None = None
        self.fills = 0
        self.held: list[str] = []


async def run(
    server: VenueServer, engine: Engine, spoiled: str | None = None, **spoil: Any
) -> Outcome:
    """Run one live buy through a worker on the venue behind a proxy that answers with the
    `spoiled` body (of `SPOILED`) and is set up with `spoil` (after the client loaded the
    markets through it)."""
    sessions: sessionmaker[Session] = session_factory(engine)
    out, pubsub = Outcome(), RecordingPubSub()
    async with (
        proxy(server, "binance") as (spoiler, url),
        adapter(server, "binance", KEY, SECRET, attempts=1, http_url=url) as (client, _),
    ):
        if spoiled is not None:
            spoiler.body, spoiler.content_type, _ = SPOILED[spoiled]
        for name, value in spoil.items():
            setattr(spoiler, name, value)
        worker = OrderWorker(
            sessions,
            client,
            pubsub,
            on_alert=lambda severity, message, _: out.alerts.append((severity, message)),
        )
        queue = InMemoryWorkQueue(max_retries=0)
        consumer = asyncio.create_task(queue.consume("orders", worker.handle))
        order = event(COID, Side.BUY, "0.01", START)
        await queue.publish("orders", order.to_bytes(), message_id=COID)
        for _ in range(1000):
            out.dead = [d.message_id for d in await queue.dead_letters("orders")]
            if out.dead or worker.processed:
                break
            await asyncio.sleep(0.01)
        await queue.stop()
        await consumer
        await worker.close()
        out.statuses = [
            OrderStatusEvent.model_validate_json(raw)
            for channel, raw in pubsub.sent
            if channel == CHANNEL_ORDER_STATUS
        ]
    with sessions() as s:
        out.order = s.scalars(select(OrderRecord)).one_or_none()
        out.fills = len(s.scalars(select(FillRecord)).all())
    out.held = [o.client_id for o in server.binance.orders(KEY)]
    return out


async def test_an_order_the_venue_never_took_is_rejected_with_the_reason(
    venue_server: VenueServer, engine: Engine
) -> None:
    out = await run(venue_server, engine, "html", spoil=100, forward=False)
    assert out.held == [] and out.dead == [COID] and out.fills == 0
    assert out.order is not None and out.order.status == "rejected"
    reason = (
        "given up after 1 attempts at binance: BadResponse: binance: the answer about order "
        f"{COID} is not an order (no order id): '<html><body>upstream timeout</body></html>'"
    )
    assert [(s.status, s.reason) for s in out.statuses] == [("rejected", reason)]
    assert out.alerts == [("warning", f"order {COID} rejected: {reason}; binance does not hold it")]


async def test_an_order_the_venue_took_is_found_on_the_last_try_and_booked(
    venue_server: VenueServer, engine: Engine
) -> None:
    out = await run(venue_server, engine, "cut_short", spoil=1, forward=True)
    assert out.held == [COID] and out.dead == []
    assert out.order is not None and out.order.status == "filled"
    assert out.order.filled_qty == D("0.01") and out.fills == 1
    assert [s.status for s in out.statuses] == ["filled"] and out.alerts == []


async def test_an_order_whose_venue_is_away_stays_open_for_reconciliation(
    venue_server: VenueServer, engine: Engine
) -> None:
    out = await run(venue_server, engine, down=True)
    assert out.held == [] and out.dead == [COID] and out.fills == 0
    assert out.order is not None and out.order.status == "new"
    ((status, reason),) = [(s.status, s.reason) for s in out.statuses]
    assert status == "dead_lettered"
    assert reason.startswith("given up after 1 attempts at binance: ExchangeNotAvailable:")
    ((severity, message),) = out.alerts
    assert severity == "critical" and "no healthy upstream" in message
    assert message.endswith(
        "it stays open on record, and reconciliation books it if binance has it"
    )

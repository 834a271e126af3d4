"""The order worker on its last try of a venue order (the queue dead-letters it if that fails
too): it settles the order rather than leaving it open on record with nothing to finish it and
the bot waiting. Real ccxt over HTTP to `sigma venue` through a proxy that spoils answers
(`proxy_helpers`), one try per placement and no queue retries, so the first failure is the
last.

- the venue never took the order (every new order's answer spoiled, unsent): it stays open,
  dead-lettered, while the placement might still land, then is recorded rejected with the
  reason, the bot is told, an alert says which venue; one whose placement lands late is booked;
- the venue took it and only the answer was lost: the last lookup finds it and books it; the
  delivery succeeds after all;
- the venue is away (503 for everything): whether it holds the order is unknown, so it stays
  open on record, marked dead-lettered, the bot is told so, a critical alert. The follower
  (also a restarted worker's) looks it up until the venue answers: never placed, it is
  rejected once the venue says twice it does not hold it, and the bot is told (its
  reservation released); taken by the venue before it went away, it is booked as traded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal as D
from typing import Any

import pytest
from adapter_helpers import adapter, event
from proxy_helpers import SPOILED, VENUES, SpoilingProxy, proxy
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from sigma.bus import CHANNEL_ORDER_STATUS, InMemoryWorkQueue
from sigma.domain import Side
from sigma.execution.events import OrderStatusEvent
from sigma.execution.follower import FollowerSettings
from sigma.execution.worker import OrderWorker
from sigma.store import session_factory
from sigma.store.models import FillRecord, OrderRecord
from sigma.store.restart import open_orders
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


#: what a test does once the delivery is done, before the worker and the proxy go
After = Callable[[SpoilingProxy, OrderWorker], Awaitable[None]]


async def run(
    server: VenueServer,
    engine: Engine,
    spoiled: str | None = None,
    after: After | None = None,
    **spoil: Any,
) -> Outcome:
    """Run one live buy through a worker on the venue behind a proxy that answers with the
    `spoiled` body (of `SPOILED`) and is set up with `spoil` (after the client loaded the
    markets through it); then `after`."""
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
        if after is not None:
            await after(spoiler, worker)
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
    async def settle(spoiler: SpoilingProxy, worker: OrderWorker) -> None:
        assert status(worker) == "new"  # its placement might still land
        # Long enough after the give-up that a placement sent before it can no longer land.
        worker.follower.settings = FollowerSettings(unplaced_after=0)
        assert await worker.follower.refresh(COID) is None  # one miss: asked again
        assert await worker.follower.refresh(COID) == "rejected"

    out = await run(venue_server, engine, "html", settle, spoil=100, forward=False)
    assert out.held == [] and out.dead == [COID] and out.fills == 0
    assert out.order is not None and out.order.status == "rejected"
    given_up = (
        "given up after 1 attempts at binance: BadResponse: binance: the answer about order "
        f"{COID} is not an order (no order id): '<html><body>upstream timeout</body></html>'"
    )
    reason = (
        "binance does not hold it (not found 2 times in a row after its order event was "
        "dead-lettered): it was never placed"
    )
    assert [(s.status, s.reason) for s in out.statuses] == [
        ("dead_lettered", given_up),
        ("rejected", reason),
    ]
    assert out.alerts == [
        (
            "critical",
            f"order {COID} {given_up}; binance does not hold it yet: it stays open on record "
            "and is looked up until binance answers: booked if binance holds it, rejected "
            "once binance says it does not",
        ),
        ("warning", f"order {COID} rejected: {reason}"),
    ]


async def test_an_order_the_venue_takes_after_the_last_lookup_is_booked_not_rejected(
    venue_server: VenueServer, engine: Engine
) -> None:
    """The last placement's answer is lost and the lookup right after it does not find the
    order: the placement may still be on its way to the venue's matching engine, so the
    order is not settled rejected then. When it lands, the follower books it as filled."""

    async def late(spoiler: SpoilingProxy, worker: OrderWorker) -> None:
        assert status(worker) == "new"
        await worker.broker.place(event(COID, Side.BUY, "0.01", START))  # the placement lands
        assert await worker.follower.refresh(COID) == "filled"

    out = await run(venue_server, engine, "html", late, spoil=1, forward=False)
    assert out.held == [COID] and out.dead == [COID]
    assert out.order is not None and out.order.status == "filled" and out.fills == 1
    assert [s.status for s in out.statuses] == ["dead_lettered", "filled"]


async def test_an_order_the_venue_took_is_found_on_the_last_try_and_booked(
    venue_server: VenueServer, engine: Engine
) -> None:
    out = await run(venue_server, engine, "cut_short", spoil=1, forward=True)
    assert out.held == [COID] and out.dead == []
    assert out.order is not None and out.order.status == "filled"
    assert out.order.filled_qty == D("0.01") and out.fills == 1
    assert [s.status for s in out.statuses] == ["filled"] and out.alerts == []


def status(worker: OrderWorker) -> str:
    with worker.sessions() as s:
        return s.scalars(select(OrderRecord.status)).one()


async def test_an_order_whose_venue_is_away_is_rejected_once_the_venue_says_it_never_had_it(
    venue_server: VenueServer, engine: Engine
) -> None:
    """The venue is away when the order is given up: it stays open, dead-lettered. While the
    venue cannot answer, nothing is settled. A restarted worker's follower finds it on record;
    the first lookup that misses it asks again, the second settles it rejected and tells the
    bot; the bot restarted then no longer holds it in flight."""
    counts: dict[str, int] = {}

    async def recover(spoiler: SpoilingProxy, worker: OrderWorker) -> None:
        assert worker.follower.open[COID].dead_lettered  # followed from the give-up on
        with pytest.raises(Exception, match="no healthy upstream"):
            await worker.follower.refresh(COID)  # the venue cannot say yet
        assert status(worker) == "new"
        spoiler.down = False
        # Long enough after the give-up that a placement sent before it can no longer land.
        follow = FollowerSettings(unplaced_after=0)
        restarted = OrderWorker(worker.sessions, worker.broker, worker.pubsub, follow=follow)
        restarted.on_alert = worker.on_alert
        counts.update(await restarted.reconcile("live"))
        assert await restarted.follower.load("live") == 1
        assert await restarted.follower.refresh(COID) is None  # one miss: asked again
        assert status(worker) == "new"
        assert await restarted.follower.refresh(COID) == "rejected"
        assert COID not in restarted.follower.open
        await restarted.close()

    out = await run(venue_server, engine, down=True, after=recover)
    assert out.held == [] and out.dead == [COID] and out.fills == 0
    assert counts["dead_lettered"] == 1 and counts["awaiting_redelivery"] == 0
    assert out.order is not None and out.order.status == "rejected"
    assert out.order.dead_lettered_at is not None
    with session_factory(engine)() as s:
        assert open_orders(s, "live") == []  # a restarted bot reserves nothing for it
    (dead, rejected) = [(s.status, s.reason) for s in out.statuses]
    assert dead[0] == "dead_lettered"
    assert dead[1].startswith("given up after 1 attempts at binance: ExchangeNotAvailable:")
    assert rejected == (
        "rejected",
        "binance does not hold it (not found 2 times in a row after its order event was "
        "dead-lettered): it was never placed",
    )
    (severity, message), (severity2, message2) = out.alerts
    assert severity == "critical" and "no healthy upstream" in message
    assert message.endswith(
        "it stays open on record and is looked up until binance answers: booked if binance "
        "holds it, rejected once binance says it does not"
    )
    assert (severity2, message2) == ("warning", f"order {COID} rejected: {rejected[1]}")


async def test_an_order_the_venue_takes_late_is_booked_not_rejected(
    venue_server: VenueServer, engine: Engine
) -> None:
    """The venue is away (slow) when the order is given up: its placement may still reach the
    venue's matching engine after lookups by client order id found nothing. Two misses a
    second apart right after the give-up do not settle it rejected; once the late placement
    lands, the follower finds the order and books it as the venue filled it."""

    async def recover(spoiler: SpoilingProxy, worker: OrderWorker) -> None:
        spoiler.down = False
        assert await worker.follower.refresh(COID) is None  # not at the venue (yet)
        assert await worker.follower.refresh(COID) is None  # nor a second later
        assert status(worker) == "new"
        await worker.broker.place(event(COID, Side.BUY, "0.01", START))  # the placement lands
        assert await worker.follower.refresh(COID) == "filled"

    out = await run(venue_server, engine, down=True, after=recover)
    assert out.held == [COID] and out.dead == [COID]
    assert out.order is not None and out.order.status == "filled" and out.fills == 1
    assert [s.status for s in out.statuses] == ["dead_lettered", "filled"]


async def test_an_order_the_venue_took_before_it_went_away_is_booked_not_rejected(
    venue_server: VenueServer, engine: Engine
) -> None:
    """The venue takes the order, its answer is lost and it goes away before the last
    lookup: dead-lettered, unknown. Once the venue answers, the follower finds the order
    and books it as the venue filled it."""

    async def recover(spoiler: SpoilingProxy, worker: OrderWorker) -> None:
        assert status(worker) == "new"
        spoiler.down = False
        assert await worker.follower.refresh(COID) == "filled"

    out = await run(
        venue_server, engine, "cut_short", recover, spoil=1, forward=True, down_after_spoil=True
    )
    assert out.held == [COID] and out.dead == [COID]
    assert out.order is not None and out.order.status == "filled" and out.fills == 1
    assert [s.status for s in out.statuses] == ["dead_lettered", "filled"]
    assert [severity for severity, _ in out.alerts] == ["critical"]

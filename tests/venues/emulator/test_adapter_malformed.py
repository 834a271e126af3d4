"""A venue whose answer to a new order is not an order (cut short, empty, a proxy's page, JSON
of another shape), through real ccxt over HTTP: a reverse proxy in front of `sigma venue`
spoils the answers. ccxt parses any such 2xx body into an order of Nones; the execution client
must not take that for the venue's answer (it booked an open order the venue never had, and
the worker acknowledged its message). The outcome is unknown, so the client looks the client
order id up before it sends again: one order at the venue, its real fills in the report."""

from __future__ import annotations

from decimal import Decimal as D

import ccxt
import pytest
from adapter_helpers import adapter, event
from proxy_helpers import SPOILED, VENUES, proxy

from sigma.domain import OrderStatus, Side
from sigma.venues.emulator.server import VenueServer


def held(server: VenueServer, venue: str, key: str) -> list[str]:
    book = server.binance if venue == "binance" else server.upbit
    return [o.client_id for o in book.orders(key)]


@pytest.mark.parametrize("venue", VENUES)
@pytest.mark.parametrize("spoiled", SPOILED)
async def test_an_answer_that_is_no_order_is_looked_up_and_the_order_placed_once(
    venue_server: VenueServer, venue: str, spoiled: str
) -> None:
    key, secret, _, start = VENUES[venue]
    async with proxy(venue_server, venue) as (spoiler, url):
        spoiler.body, spoiler.content_type, forward = SPOILED[spoiled]
        spoiler.spoil, spoiler.forward = 1, forward
        async with adapter(venue_server, venue, key, secret, http_url=url) as (client, sleeps):
            report = await client.place(event("spoil-000001", Side.BUY, "0.01", start))
    assert spoiler.spoiled == ["forwarded" if forward else "withheld"]
    assert held(venue_server, venue, key) == ["spoil-000001"]
    assert report.status is OrderStatus.FILLED and report.exchange_order_id not in ("", "None")
    assert report.fills and sum(f.qty for f in report.fills) > D(0)
    assert len(sleeps) == 1


@pytest.mark.parametrize("venue", VENUES)
async def test_a_venue_that_keeps_answering_no_order_fails_naming_the_venue_and_the_order(
    venue_server: VenueServer, venue: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Every try answered with a page cut short (the venue never sees the order): after the
    policy's tries the error says which venue, which order and what came back, and the venue
    holds nothing (the worker's queue retries the order later)."""
    key, secret, _, start = VENUES[venue]
    async with proxy(venue_server, venue) as (spoiler, url):
        spoiler.body, spoiler.content_type, _ = SPOILED["cut_short"]
        spoiler.spoil, spoiler.forward = 100, False
        async with adapter(venue_server, venue, key, secret, http_url=url, attempts=3) as (
            client,
            sleeps,
        ):
            with pytest.raises(ccxt.BadResponse) as raised:
                await client.place(event("spoil-000002", Side.BUY, "0.01", start))
    assert str(raised.value) == (
        f"{venue}: the answer about order spoil-000002 is not an order (no order id): "
        '\'{"symbol":"BTCUSDT","orderId\''
    )
    assert len(spoiler.spoiled) == 3 and len(sleeps) == 2
    assert held(venue_server, venue, key) == []
    assert f"{venue}: place spoil-000002 failed 3 times" in caplog.text

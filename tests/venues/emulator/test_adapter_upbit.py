"""SIGMA's Upbit adapter through real ccxt over HTTP to `sigma venue` (Upbit's protocol):
market buys by cost, partial fills with fees shared out, the KRW ladder and minimum total,
refused stops, faults, rate limits, cancels."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from adapter_helpers import adapter, event, limit
from venue_helpers import UPBIT_KEY, UPBIT_KEY_2, UPBIT_SECRET, UPBIT_SECRET_2

from sigma.domain import OrderStatus, OrderType, Side
from sigma.execution.broker import Capability
from sigma.venues.ccxt.profile import VenueProfile
from sigma.venues.emulator.server import VenueServer
from sigma.venues.factory import make_ccxt_broker
from sigma.venues.upbit.execution import UpbitProfile

BTC = "KRW-BTC"
START = D(130_000_000)


def held(server: VenueServer, key: str = UPBIT_KEY) -> list[str]:
    """The identifiers of the orders the venue holds for the account."""
    return [o.client_id for o in server.upbit.orders(key)]


async def test_market_buy_spends_an_amount_and_market_sell_sells_a_quantity(
    venue_server: VenueServer,
) -> None:
    async with adapter(venue_server, "upbit", UPBIT_KEY, UPBIT_SECRET) as (client, _):
        assert Capability.MARKET_BUY_BY_COST in client.capabilities
        assert Capability.STOP_ORDERS not in client.capabilities
        bought = await client.place(event("buy-00000001", Side.BUY, "0.01", START))
        sold = await client.place(event("sell-0000001", Side.SELL, "0.01", START))
    buy_order, _ = venue_server.upbit.orders(UPBIT_KEY)
    assert buy_order.quote_qty == D(1_300_000) and buy_order.qty is None
    assert bought.status is OrderStatus.FILLED and sold.status is OrderStatus.FILLED
    spent = sum(f.qty * f.price for f in bought.fills)
    assert D(1_299_000) < spent <= D(1_300_000)  # by cost: the quantity follows the price
    assert sum(f.qty for f in sold.fills) == D("0.01")
    for report in (bought, sold):
        assert {f.fee_asset for f in report.fills} == {"KRW"}
        fee = sum(f.fee for f in report.fills)
        assert fee == pytest.approx(sum(f.qty * f.price for f in report.fills) * D("0.0005"))
    assert held(venue_server) == ["buy-00000001", "sell-0000001"]


async def test_a_resting_limit_fills_over_several_ticks_with_the_order_fee_shared_out(
    venue_server: VenueServer,
) -> None:
    async with adapter(venue_server, "upbit", UPBIT_KEY, UPBIT_SECRET) as (client, _):
        # 0.01 BTC a level; 129,000,400 KRW is off the 1,000 KRW tick: a buy rounds down.
        placed = await client.place(limit("lim-00000001", Side.BUY, "0.025", "129000400"))
        assert placed.status is OrderStatus.NEW
        (order,) = venue_server.upbit.orders(UPBIT_KEY)
        assert order.price == D(129_000_000)
        seen = []
        for price in (128_990_000, 128_980_000, 128_970_000):
            venue_server.upbit.tick(BTC, D(price), D(1))
            report = await client.lookup("lim-00000001", "BTC")
            assert report is not None
            seen.append((report.status, sum(f.qty for f in report.fills)))
    assert seen == [
        (OrderStatus.PARTIALLY_FILLED, D("0.01")),
        (OrderStatus.PARTIALLY_FILLED, D("0.02")),
        (OrderStatus.FILLED, D("0.025")),
    ]
    assert [(f.fee, f.fee_asset) for f in report.fills] == [
        (D(645), "KRW"),
        (D(645), "KRW"),
        (D("322.5"), "KRW"),
    ]


@pytest.mark.parametrize(
    ("order", "reason"),
    [
        (
            event("stop-0000001", Side.SELL, type=OrderType.STOP, stop_price=D(120_000_000)),
            "upbit takes no stop orders",
        ),
        (event("small-000001", qty="0.00003", ref=START), "order total 3900 KRW is under"),
        (
            limit("small-000002", Side.BUY, "0.00003", 129_000_000),
            "order total 3870 KRW is under the minimum 5000 KRW",
        ),
    ],
)
async def test_refusals_before_sending(
    venue_server: VenueServer, order: object, reason: str
) -> None:
    async with adapter(venue_server, "upbit", UPBIT_KEY, UPBIT_SECRET) as (client, _):
        report = await client.place(order)  # type: ignore[arg-type]
    assert report.status is OrderStatus.REJECTED and reason in report.reason
    assert held(venue_server) == []


async def test_insufficient_funds_is_rejected_with_the_venues_message(
    venue_server: VenueServer,
) -> None:
    async with adapter(venue_server, "upbit", UPBIT_KEY_2, UPBIT_SECRET_2) as (client, _):
        report = await client.place(limit("poor-0000001", Side.BUY, "0.01", 129_000_000))
    assert report.status is OrderStatus.REJECTED
    assert "InsufficientFunds" in report.reason and "insufficient_funds_bid" in report.reason
    assert held(venue_server, UPBIT_KEY_2) == []


async def test_a_reply_lost_after_the_venue_accepted_is_found_not_resent(
    venue_server: VenueServer,
) -> None:
    async with adapter(venue_server, "upbit", UPBIT_KEY, UPBIT_SECRET) as (client, sleeps):
        venue_server.faults.update({"drop_after_accept": 1})
        report = await client.place(event("drop-0000001", Side.SELL, "0.01", START))
    assert report.status is OrderStatus.FILLED and sum(f.qty for f in report.fills) == D("0.01")
    assert held(venue_server) == ["drop-0000001"] and len(sleeps) == 1


async def test_server_errors_and_rate_limits_are_retried_with_one_order(
    venue_server: VenueServer,
) -> None:
    async with adapter(venue_server, "upbit", UPBIT_KEY, UPBIT_SECRET) as (client, sleeps):
        venue_server.faults.update({"error_5xx": 1})
        first = await client.place(event("err5-0000001", Side.SELL, "0.01", START))
        venue_server.faults.update({"rate_limit_storm": 1})
        second = await client.place(event("429s-0000001", Side.SELL, "0.01", START))
    assert first.status is OrderStatus.FILLED and second.status is OrderStatus.FILLED
    assert held(venue_server) == ["err5-0000001", "429s-0000001"]
    # The 503 waits the backoff; the 429 at least the venue's Retry-After (a second).
    assert sleeps[0] == 0.25 and sleeps[1] >= 1


async def test_cancel_one_and_cancel_all(venue_server: VenueServer) -> None:
    async with adapter(venue_server, "upbit", UPBIT_KEY, UPBIT_SECRET) as (client, _):
        for n, price in enumerate((120_000_000, 119_000_000, 118_000_000)):
            await client.place(limit(f"rest-000000{n}", Side.BUY, "0.001", price))
        cancelled = await client.cancel("rest-0000000", "BTC")
        assert cancelled is not None and cancelled.status is OrderStatus.CANCELLED
        assert await client.cancel("rest-0000000", "BTC") == cancelled
        assert await client.cancel("never-placed", "BTC") is None
        assert await client.cancel_all() == 2
        assert venue_server.upbit.open_orders(UPBIT_KEY) == []


class _MarketsOnly(UpbitProfile):
    """Upbit as ccxt's markets describe it: no ladder, no minimum total."""

    refine = VenueProfile.refine


async def test_a_venue_refusal_ccxt_does_not_sort_is_looked_up_then_rejected(
    venue_server: VenueServer,
) -> None:
    """Without the profile's minimum, Upbit itself refuses the order (``under_min_total_bid``,
    which ccxt raises as a plain ExchangeError): the id is looked up, then rejected."""
    async with adapter(venue_server, "upbit", UPBIT_KEY, UPBIT_SECRET) as (client, _):
        client.profile = _MarketsOnly()
        client._instruments = None  # load the markets again with this profile
        report = await client.place(limit("tiny-0000001", Side.BUY, "0.00003", 129_000_000))
        assert report.status is OrderStatus.REJECTED and "under_min_total_bid" in report.reason
        venue_server.faults.update({"error_5xx": 1})
        assert await client.lookup("tiny-0000001", "BTC") is None
    assert held(venue_server) == []


async def test_the_factory_builds_upbit_by_name(venue_server: VenueServer) -> None:
    config = {**venue_server.ccxt_config("upbit"), "apiKey": UPBIT_KEY, "secret": UPBIT_SECRET}
    client = make_ccxt_broker("upbit", {"BTC": "BTC/KRW"}, config)
    try:
        assert client.name == "upbit" and client.exchange.enableRateLimit
        assert (await client.instrument("BTC")).min_notional == 5000
    finally:
        await client.close()

"""SIGMA's Binance adapter through real ccxt over HTTP to `sigma venue` (Binance spot's
protocol): placement, partial fills, stops, refusals, faults, cancels."""

from __future__ import annotations

from decimal import Decimal as D

import ccxt
import pytest
from adapter_helpers import adapter, event, limit
from venue_helpers import BINANCE_KEY, BINANCE_KEY_2, BINANCE_SECRET, BINANCE_SECRET_2

from sigma.domain import OrderStatus, OrderType, Side
from sigma.execution.broker import Capability
from sigma.venues.emulator.server import VenueServer
from sigma.venues.factory import make_ccxt_broker

BTC = "BTCUSDT"


def held(server: VenueServer, key: str = BINANCE_KEY) -> list[str]:
    """The client ids of the orders the venue holds for the account."""
    return [o.client_id for o in server.binance.orders(key)]


async def test_market_buy_and_sell_fill_with_their_fees_in_the_asset_received(
    venue_server: VenueServer,
) -> None:
    async with adapter(venue_server, "binance", BINANCE_KEY, BINANCE_SECRET) as (client, _):
        assert client.capabilities == {
            Capability.CANCEL,
            Capability.STOP_ORDERS,
            Capability.RECONCILE,
        }
        bought = await client.place(event("buy-00000001", Side.BUY, "0.01"))
        sold = await client.place(event("sell-0000001", Side.SELL, "0.02"))
    assert bought.status is OrderStatus.FILLED and sold.status is OrderStatus.FILLED
    assert sum(f.qty for f in bought.fills) == D("0.01")
    assert {(f.fee_asset, f.fee) for f in bought.fills} == {("BTC", D("0.00001"))}
    (fill,) = sold.fills
    assert fill.fee_asset == "USDT" and fill.fee == (D("0.02") * fill.price * D("0.001"))
    assert fill.fill_id.startswith("BTCUSDT-") and sold.exchange_order_id is not None
    assert held(venue_server) == ["buy-00000001", "sell-0000001"]


async def test_a_resting_limit_fills_over_several_ticks_then_a_lookup_agrees(
    venue_server: VenueServer,
) -> None:
    async with adapter(venue_server, "binance", BINANCE_KEY, BINANCE_SECRET) as (client, _):
        # 0.05 BTC a level: a resting order fills at most that much per trade at its price.
        placed = await client.place(limit("lim-00000001", Side.BUY, "0.12", "91000.004"))
        assert placed.status is OrderStatus.NEW and placed.fills == ()
        (order,) = venue_server.binance.orders(BINANCE_KEY)
        assert order.price == D("91000.00")  # on the tick, never above the limit asked
        seen = []
        for price in ("90990", "90980", "90970"):
            venue_server.binance.tick(BTC, D(price), D(1))
            report = await client.lookup("lim-00000001", "BTC")
            assert report is not None
            seen.append((report.status, sum(f.qty for f in report.fills)))
        assert seen == [
            (OrderStatus.PARTIALLY_FILLED, D("0.05")),
            (OrderStatus.PARTIALLY_FILLED, D("0.10")),
            (OrderStatus.FILLED, D("0.12")),
        ]
        assert report.fills[0].price == D("91000") and len({f.fill_id for f in report.fills}) == 3
        assert [(f.fee_asset, f.fee) for f in report.fills] == [
            ("BTC", D("0.00005")),
            ("BTC", D("0.00005")),
            ("BTC", D("0.00002")),
        ]
        assert await client.place(limit("lim-00000001", Side.BUY, "0.12", "91000")) == report
    assert held(venue_server) == ["lim-00000001"]


async def test_a_sell_stop_waits_for_its_price_then_fills(venue_server: VenueServer) -> None:
    async with adapter(venue_server, "binance", BINANCE_KEY, BINANCE_SECRET) as (client, _):
        stop = event("stop-0000001", Side.SELL, "0.01", type=OrderType.STOP, stop_price=D(91000))
        placed = await client.place(stop)
        assert placed.status is OrderStatus.NEW
        (order,) = venue_server.binance.orders(BINANCE_KEY)
        assert (order.type, order.stop_price) == ("STOP_LOSS", D(91000))
        venue_server.binance.tick(BTC, D(91500), D(1))
        assert (await client.lookup("stop-0000001", "BTC")) == placed
        venue_server.binance.tick(BTC, D(90900), D(1))
        report = await client.lookup("stop-0000001", "BTC")
    assert report is not None and report.status is OrderStatus.FILLED
    assert sum(f.qty for f in report.fills) == D("0.01") and report.fills[0].fee_asset == "USDT"


@pytest.mark.parametrize(
    ("order", "reason"),
    [
        (event("dust-0000001", qty="0.000004"), "quantity 0.000004 is under the lot step 0.00001"),
        (event("small-000001", qty="0.00005"), "order total 4.6 USDT is under the minimum 5 USDT"),
        (
            limit("small-000002", Side.SELL, "0.00005", "92000"),
            "order total 4.6 USDT is under the minimum 5 USDT",
        ),
    ],
)
async def test_refusals_before_sending(
    venue_server: VenueServer, order: object, reason: str
) -> None:
    async with adapter(venue_server, "binance", BINANCE_KEY, BINANCE_SECRET) as (client, _):
        report = await client.place(order)  # type: ignore[arg-type]
    assert report.status is OrderStatus.REJECTED and reason in report.reason
    assert held(venue_server) == []


async def test_insufficient_funds_is_rejected_with_the_venues_message(
    venue_server: VenueServer,
) -> None:
    async with adapter(venue_server, "binance", BINANCE_KEY_2, BINANCE_SECRET_2) as (client, _):
        report = await client.place(limit("poor-0000001", Side.BUY, "0.1", "91000"))
    assert report.status is OrderStatus.REJECTED
    assert "InsufficientFunds" in report.reason and "insufficient balance" in report.reason
    assert held(venue_server, BINANCE_KEY_2) == []


async def test_a_reply_lost_after_the_venue_accepted_is_found_not_resent(
    venue_server: VenueServer,
) -> None:
    async with adapter(venue_server, "binance", BINANCE_KEY, BINANCE_SECRET) as (client, sleeps):
        venue_server.faults.update({"drop_after_accept": 1})
        report = await client.place(event("drop-0000001", Side.BUY, "0.01"))
    assert report.status is OrderStatus.FILLED and sum(f.qty for f in report.fills) == D("0.01")
    assert held(venue_server) == ["drop-0000001"] and len(sleeps) == 1


async def test_server_errors_are_retried_with_backoff_and_one_order(
    venue_server: VenueServer,
) -> None:
    async with adapter(venue_server, "binance", BINANCE_KEY, BINANCE_SECRET) as (client, sleeps):
        venue_server.faults.update({"error_5xx": 2})
        report = await client.place(event("err5-0000001", Side.BUY, "0.01"))
        assert report.status is OrderStatus.FILLED and held(venue_server) == ["err5-0000001"]
        assert sleeps == [0.25, 0.5]
        venue_server.faults.update({"error_5xx": 10})
        with pytest.raises(ccxt.OperationFailed, match="Internal error"):
            await client.place(event("err5-0000002", Side.BUY, "0.01"))
        assert held(venue_server) == ["err5-0000001"]


async def test_cancel_one_and_cancel_all(venue_server: VenueServer) -> None:
    async with adapter(venue_server, "binance", BINANCE_KEY, BINANCE_SECRET) as (client, _):
        for n, price in enumerate(("90000", "89000", "88000")):
            await client.place(limit(f"rest-000000{n}", Side.BUY, "0.01", price))
        await client.place(limit("rest-eth-0001", Side.SELL, "0.1", "3100", symbol="ETH"))
        cancelled = await client.cancel("rest-0000000", "BTC")
        assert cancelled is not None and cancelled.status is OrderStatus.CANCELLED
        assert await client.cancel("rest-0000000", "BTC") == cancelled  # already ended
        assert await client.cancel("never-placed", "BTC") is None
        assert await client.cancel_all(["BTC"]) == 2
        assert await client.cancel_all() == 1
        assert venue_server.binance.open_orders(BINANCE_KEY) == []


async def test_the_factory_builds_the_client_by_name(venue_server: VenueServer) -> None:
    config = {**venue_server.ccxt_config("binance"), "apiKey": BINANCE_KEY}
    client = make_ccxt_broker("binance", {"BTC": "BTC/USDT"}, config)
    try:
        assert client.name == "binance"
        assert client.exchange.options["newOrderRespType"]["market"] == "FULL"
        with pytest.raises(ValueError, match="no exchange market configured for symbol 'ACME'"):
            await client.place(event("acme-0000001", symbol="ACME"))
    finally:
        await client.close()
    with pytest.raises(ValueError, match="no venue adapter for 'okx'; known: binance, upbit"):
        make_ccxt_broker("okx", {})

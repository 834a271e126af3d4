"""The ccxt broker against an in-memory exchange with ccxt's order structures (no network
here, so the venue is simulated; the structures follow ccxt's unified API)."""

from decimal import Decimal

import pytest
from execution_helpers import Venue, order_event

from sigma.domain import OrderStatus, OrderType, Side
from sigma.execution.ccxt_broker import CcxtBroker, make_ccxt_broker, to_report


async def test_places_with_the_client_order_id_and_never_twice() -> None:
    venue = Venue()
    broker = CcxtBroker(venue, {"ACME": "ACME/KRW"}, "upbit")
    event = order_event(qty="2")
    report = await broker.place(event)
    assert venue.created == [
        ("ACME/KRW", "market", "buy", 2.0, None, {"clientOrderId": "coid-0001"})
    ]
    assert report.status is OrderStatus.FILLED and report.exchange_order_id == "X1"
    (fill,) = report.fills
    assert (fill.fill_id, fill.qty, fill.price, fill.fee) == (
        "X1-all",
        Decimal(2),
        Decimal("101.5"),
        Decimal("0.25"),
    )
    again = await broker.place(event)
    assert len(venue.created) == 1 and again == report
    await broker.close()
    assert venue.closed


async def test_limit_and_stop_parameters() -> None:
    venue = Venue()
    broker = CcxtBroker(venue, {"ACME": "ACME/USDT"}, "binance")
    await broker.place(order_event("l-000001", type=OrderType.LIMIT, limit_price=Decimal(99)))
    await broker.place(
        order_event("s-000001", side=Side.SELL, type=OrderType.STOP, stop_price=Decimal(90))
    )
    assert venue.created[0][1:5] == ("limit", "buy", 10.0, 99.0)
    assert venue.created[1][5] == {"clientOrderId": "s-000001", "stopPrice": 90.0}


async def test_unknown_symbol_is_a_clear_error() -> None:
    broker = CcxtBroker(Venue(), {}, "upbit")
    with pytest.raises(ValueError, match="upbit: no exchange market configured for symbol 'ACME'"):
        await broker.place(order_event())


def test_order_structures_map_to_reports() -> None:
    partial = to_report(
        "c1",
        {
            "id": 7,
            "status": "open",
            "filled": 1,
            "trades": [
                {"id": "t1", "amount": 1, "price": 10, "fee": {"cost": 0.01}, "timestamp": None}
            ],
        },
    )
    assert partial.status is OrderStatus.PARTIALLY_FILLED and partial.fills[0].fill_id == "t1"
    assert to_report("c2", {"id": 8, "status": "open", "filled": 0}).status is OrderStatus.NEW
    rejected = to_report("c3", {"id": 9, "status": "rejected", "info": {"msg": "no funds"}})
    assert rejected.status is OrderStatus.REJECTED and "no funds" in rejected.reason
    assert to_report("c4", {"id": 1, "status": "canceled"}).status is OrderStatus.CANCELLED


def test_make_ccxt_broker_builds_a_real_ccxt_exchange_or_refuses_an_unknown_one() -> None:
    broker = make_ccxt_broker("upbit", {"BTC": "BTC/KRW"})
    assert broker.name == "upbit" and type(broker.exchange).__name__ == "upbit"
    with pytest.raises(ValueError, match="ccxt has no exchange 'nope'"):
        make_ccxt_broker("nope", {})

"""ccxt order structures into broker reports (pure). Orders through ccxt to a venue are tested
against `sigma venue` in tests/venues/emulator/test_adapter_*.py."""

from decimal import Decimal

from sigma.domain import OrderStatus
from sigma.venues.ccxt.reports import to_report


def test_order_structures_map_to_reports() -> None:
    partial = to_report(
        "c1",
        {
            "id": 7,
            "status": "open",
            "filled": 1,
            "trades": [
                {
                    "id": "t1",
                    "amount": 1,
                    "price": 10,
                    "fee": {"cost": 0.01, "currency": "BTC"},
                    "timestamp": None,
                }
            ],
        },
    )
    assert partial.status is OrderStatus.PARTIALLY_FILLED and partial.fills[0].fill_id == "t1"
    assert (partial.fills[0].fee, partial.fills[0].fee_asset) == (Decimal("0.01"), "BTC")
    assert to_report("c2", {"id": 8, "status": "open", "filled": 0}).status is OrderStatus.NEW
    rejected = to_report("c3", {"id": 9, "status": "rejected", "info": {"msg": "no funds"}})
    assert rejected.status is OrderStatus.REJECTED and "no funds" in rejected.reason
    assert to_report("c4", {"id": 1, "status": "canceled"}).status is OrderStatus.CANCELLED


def test_a_finished_order_without_trades_is_one_fill() -> None:
    report = to_report(
        "c1",
        {
            "id": "X1",
            "status": "closed",
            "filled": 2.0,
            "average": 101.5,
            "fee": {"cost": 0.25, "currency": "KRW"},
            "timestamp": 1_700_000_000_000,
        },
        fill_prefix="ACME-",
    )
    (fill,) = report.fills
    assert (fill.fill_id, fill.qty, fill.price, fill.fee, fill.fee_asset) == (
        "ACME-X1-all",
        Decimal("2.0"),
        Decimal("101.5"),
        Decimal("0.25"),
        "KRW",
    )
    assert fill.ts.timestamp() == 1_700_000_000


def test_an_order_fee_is_shared_over_trades_by_cost_and_market_orders_that_traded_are_filled() -> (
    None
):
    """Upbit lists an order's trades without fees and ends a market buy that could not spend
    its last won as "cancel"."""
    report = to_report(
        "c1",
        {
            "id": "u1",
            "type": "market",
            "status": "canceled",
            "filled": 0.3,
            "fee": {"cost": "15", "currency": "KRW"},
            "trades": [
                {"id": "b", "amount": 0.2, "price": 100000, "cost": 20000, "timestamp": 2},
                {"id": "a", "amount": 0.1, "price": 100000, "timestamp": 1},
            ],
        },
    )
    assert report.status is OrderStatus.FILLED
    assert [(f.fill_id, f.fee, f.fee_asset) for f in report.fills] == [
        ("a", Decimal(5), "KRW"),
        ("b", Decimal(10), "KRW"),
    ]
    unpaid = to_report(
        "c2",
        {
            "id": "u2",
            "status": "closed",
            "filled": 1,
            "trades": [{"id": "x", "amount": 1, "price": 1}],
        },
    )
    assert unpaid.fills[0].fee == 0 and unpaid.fills[0].fee_asset == ""

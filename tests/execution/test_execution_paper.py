from datetime import UTC, datetime
from decimal import Decimal

from execution_helpers import order_event

from sigma.domain import OrderStatus, OrderType, Side, TimeInForce
from sigma.engine.fill_model import FillModel
from sigma.execution.broker import Capability, PaperBroker

NOW = datetime(2026, 3, 2, 10, tzinfo=UTC)


def broker() -> PaperBroker:
    model = FillModel(commission_pct=Decimal("0.001"), slippage_bps=Decimal(5))
    return PaperBroker(model, clock=lambda: NOW)


async def test_market_order_fills_at_slipped_reference_with_fee_once() -> None:
    paper = broker()
    first = await paper.place(order_event(qty="3", ref="200"))
    (fill,) = first.fills
    assert first.status is OrderStatus.FILLED
    assert fill.price == Decimal("200.1")  # 5 bps against the buyer
    assert fill.fee == Decimal("3") * Decimal("200.1") * Decimal("0.001")
    assert fill.ts == NOW and fill.fill_id == "paper-coid-0001-1"
    assert await paper.place(order_event(qty="3", ref="999")) is first  # same id: no new trade
    assert await paper.lookup("coid-0001", "ACME") is first
    assert await paper.lookup("other", "ACME") is None


async def test_limit_rests_until_the_price_reaches_it() -> None:
    paper = broker()
    sell = order_event(side=Side.SELL, type=OrderType.LIMIT, limit_price=Decimal("105"), ref="100")
    assert (await paper.place(sell)).status is OrderStatus.NEW
    assert paper.on_price("OTHER", Decimal(200)) == []
    assert paper.on_price("ACME", Decimal("104.99")) == []
    (report,) = paper.on_price("ACME", Decimal("106"))
    assert report.status is OrderStatus.FILLED and report.fills[0].price == Decimal(106)
    assert paper.on_price("ACME", Decimal("107")) == []  # filled once


async def test_an_ioc_or_fok_limit_not_marketable_now_is_cancelled_not_rested() -> None:
    paper = broker()
    for n, tif in enumerate((TimeInForce.IOC, TimeInForce.FOK)):
        sell = order_event(f"ioc-000{n}", side=Side.SELL, type=OrderType.LIMIT,
                           limit_price=Decimal("105"), ref="100", tif=tif)  # fmt: skip
        report = await paper.place(sell)
        assert (report.status, report.fills) == (OrderStatus.CANCELLED, ())
    assert paper.on_price("ACME", Decimal("106")) == []  # nothing rested
    now = order_event("ioc-0009", type=OrderType.LIMIT, limit_price=Decimal("101"),
                      tif=TimeInForce.IOC)  # fmt: skip
    assert (await paper.place(now)).status is OrderStatus.FILLED


async def test_marketable_limit_fills_at_the_reference_without_slippage() -> None:
    report = await broker().place(
        order_event(type=OrderType.LIMIT, limit_price=Decimal("101"), ref="100")
    )
    assert report.fills[0].price == Decimal(100)


async def test_stop_triggers_through_the_price_with_slippage() -> None:
    paper = broker()
    stop = order_event(side=Side.SELL, type=OrderType.STOP, stop_price=Decimal(95), ref="100")
    assert (await paper.place(stop)).status is OrderStatus.NEW
    (report,) = paper.on_price("ACME", Decimal(94))
    assert report.fills[0].price == Decimal(94) * (1 - Decimal("0.0005"))
    buy_stop = order_event(coid="coid-0002", type=OrderType.STOP, stop_price=Decimal(99), ref="100")
    assert (await paper.place(buy_stop)).status is OrderStatus.FILLED
    await paper.close()


async def test_cancel_one_and_cancel_all_resting_orders() -> None:
    paper = broker()
    assert Capability.CANCEL in paper.capabilities and Capability.SHORT in paper.capabilities
    for coid, symbol in (("rest-0001", "ACME"), ("rest-0002", "ACME"), ("rest-0003", "OTHER")):
        await paper.place(
            order_event(coid, symbol=symbol, type=OrderType.LIMIT, limit_price=Decimal(90))
        )
    filled = await paper.place(order_event("fill-0001"))
    cancelled = await paper.cancel("rest-0001", "ACME")
    assert cancelled is not None and cancelled.status is OrderStatus.CANCELLED
    assert await paper.cancel("fill-0001", "ACME") is filled  # finished first: as it finished
    assert await paper.cancel("never", "ACME") is None
    assert await paper.cancel_all(["ACME"]) == 1 and paper.resting == 1
    assert await paper.cancel_all() == 1 and paper.resting == 0
    assert paper.on_price("ACME", Decimal(80)) == []

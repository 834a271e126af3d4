from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from sigma.domain import Order, Side
from sigma.risk.limits import AccountState, RiskLimits, RiskManager

DAY = datetime(2026, 5, 4, 12, tzinfo=UTC)


def buy(qty: str) -> Order:
    return Order("ACME", Side.BUY, qty=Decimal(qty))


def sell(qty: str) -> Order:
    return Order("ACME", Side.SELL, qty=Decimal(qty))


def account(equity: str = "10000", qty: str = "0", open_orders: int = 0, now: datetime = DAY):
    return AccountState("s1:ACME", Decimal(equity), Decimal(qty), open_orders, now)


def test_no_limits_accepts() -> None:
    assert RiskManager(RiskLimits()).check(buy("1000"), Decimal(100), account()).accepted


def test_order_notional_limit_names_the_amounts() -> None:
    risk = RiskManager(RiskLimits(max_order_notional=Decimal(1000)))
    assert risk.check(buy("10"), Decimal(100), account()).accepted
    decision = risk.check(buy("11"), Decimal(100), account())
    assert not decision.accepted and decision.rule == "max_order_notional"
    assert decision.reason == "order notional 1100.00 exceeds max_order_notional 1000"


def test_position_limit_counts_the_holding_and_allows_reducing() -> None:
    risk = RiskManager(RiskLimits(max_position_notional=Decimal(2000)))
    assert not risk.check(buy("5"), Decimal(100), account(qty="16")).accepted
    assert risk.check(buy("4"), Decimal(100), account(qty="16")).accepted
    assert risk.check(sell("10"), Decimal(100), account(qty="30")).accepted  # reduces
    short = risk.check(sell("25"), Decimal(100), account(qty="0"))
    assert short.rule == "max_position_notional"


def test_open_orders_limit() -> None:
    risk = RiskManager(RiskLimits(max_open_orders=2))
    assert risk.check(buy("1"), Decimal(1), account(open_orders=1)).accepted
    assert risk.check(buy("1"), Decimal(1), account(open_orders=2)).rule == "max_open_orders"


def test_kill_switch_halts_everything_even_reducing_orders() -> None:
    on = {"v": True}
    risk = RiskManager(RiskLimits(), kill_switch=lambda: on["v"])
    decision = risk.check(sell("1"), Decimal(1), account(qty="5"))
    assert (decision.accepted, decision.rule) == (False, "kill_switch")
    on["v"] = False
    assert risk.check(sell("1"), Decimal(1), account(qty="5")).accepted


def test_daily_loss_breaker_trips_allows_exits_and_rearms_next_day() -> None:
    risk = RiskManager(RiskLimits(max_daily_loss=Decimal(500)))
    assert risk.check(buy("1"), Decimal(1), account("10000", qty="10")).accepted
    tripped = risk.check(buy("1"), Decimal(1), account("9500", qty="10"))
    assert tripped.rule == "circuit_breaker" and "daily loss 500.00" in tripped.reason
    # The equity recovering within the day does not re-arm it; exits stay allowed.
    assert not risk.check(buy("1"), Decimal(1), account("9900", qty="10")).accepted
    assert risk.check(sell("10"), Decimal(1), account("9900", qty="10")).accepted
    tomorrow = DAY + timedelta(days=1)
    assert risk.check(buy("1"), Decimal(1), account("9400", qty="10", now=tomorrow)).accepted


def test_drawdown_breaker_holds_until_reset() -> None:
    risk = RiskManager(RiskLimits(max_drawdown=Decimal("0.2")))
    assert risk.check(buy("1"), Decimal(1), account("10000")).accepted
    assert risk.check(buy("1"), Decimal(1), account("12000")).accepted  # new peak
    decision = risk.check(buy("1"), Decimal(1), account("9600"))
    assert decision.reason.startswith("drawdown 20.00% reached max_drawdown 20.00%")
    later = DAY + timedelta(days=3)
    assert not risk.check(buy("1"), Decimal(1), account("9700", now=later)).accepted
    risk.reset("s1:ACME")
    assert risk.check(buy("1"), Decimal(1), account("9700", now=later)).accepted


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("max_order_notional", Decimal(0), "max_order_notional must be > 0"),
        ("max_open_orders", 0, "max_open_orders must be >= 1"),
        ("max_drawdown", Decimal("1.5"), r"max_drawdown must be in \(0, 1\)"),
    ],
)
def test_invalid_limits_are_refused(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RiskLimits(**{field: value})  # type: ignore[arg-type]

"""How simulated orders fill: price rules per order type, slippage, commission, lot rounding.

Used by the backtest engine and by the paper broker, so paper fills and backtest fills agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from enum import StrEnum

from sigma.domain import Order, OrderType, Side

_BPS = Decimal("0.0001")
_ZERO = Decimal(0)  # a Decimal compares with a Decimal in half the time it takes with an int
# Enum members read per order and fill, bound once: `OrderType.MARKET` goes through the
# enum machinery (several times the cost of a plain global in Python 3.11).
_BUY = Side.BUY
_MARKET = OrderType.MARKET
_LIMIT = OrderType.LIMIT


class FillModelError(ValueError):
    """A fill model setting out of range; `field` names it, `reason` says why."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field} {reason}")


class FillTiming(StrEnum):
    """When a market order placed on bar i fills."""

    NEXT_OPEN = "next_open"  # at bar i+1's open: no look-ahead (the default)
    CLOSE = "close"  # at bar i's close: the price the signal saw


@dataclass(frozen=True, slots=True)
class FillModel:
    """Commission (`commission_pct` of notional + `commission_fixed` per fill), slippage in
    basis points against the trader, and the quantity step (`lot_size`: 1 for whole shares,
    0.00000001 for fractional crypto)."""

    commission_pct: Decimal = Decimal(0)
    commission_fixed: Decimal = Decimal(0)
    slippage_bps: Decimal = Decimal(0)
    lot_size: Decimal = Decimal(1)
    timing: FillTiming = FillTiming.NEXT_OPEN

    def __post_init__(self) -> None:
        if not Decimal(0) <= self.commission_pct < Decimal("0.1"):
            raise FillModelError(
                "commission_pct", f"must be in [0, 0.1), got {self.commission_pct}"
            )
        if self.commission_fixed < 0:
            raise FillModelError("commission_fixed", f"must be >= 0, got {self.commission_fixed}")
        if self.slippage_bps < 0:
            raise FillModelError("slippage_bps", f"must be >= 0, got {self.slippage_bps}")
        if self.lot_size <= 0:
            raise FillModelError("lot_size", f"must be > 0, got {self.lot_size}")

    def fee(self, qty: Decimal, price: Decimal) -> Decimal:
        """Commission for one fill of `qty` at `price`."""
        return self.commission_fixed + qty * price * self.commission_pct

    def slipped(self, side: Side, price: Decimal) -> Decimal:
        """`price` moved against the trader by the slippage."""
        if not self.slippage_bps:
            return price
        return price * (1 + side.sign * self.slippage_bps * _BPS)

    def round_qty(self, qty: Decimal) -> Decimal:
        """Round a quantity down to the lot size."""
        return (qty / self.lot_size).to_integral_value(ROUND_FLOOR) * self.lot_size

    def affordable_qty(self, budget: Decimal, price: Decimal) -> Decimal:
        """Largest lot-rounded quantity whose cost plus commission fits in `budget`."""
        spendable = budget - self.commission_fixed
        if spendable <= _ZERO:
            return Decimal(0)
        return self.round_qty(spendable / (price * (1 + self.commission_pct)))

    def trigger_price(
        self, order: Order, open_: Decimal, high: Decimal, low: Decimal
    ) -> Decimal | None:
        """Price at which `order` fills within a bar, or None when it does not.

        Market orders take the open. A limit buy fills when the low reaches the limit, at the
        better of open and limit; a stop buy when the high reaches the stop, at the worse of
        open and stop (a gap through the stop fills at the open). Sells mirror this.
        """
        buy = order.side is _BUY
        if order.type is _MARKET:
            return open_
        if order.type is _LIMIT:
            limit = order.limit_price
            assert limit is not None
            if buy:
                return min(open_, limit) if low <= limit else None
            return max(open_, limit) if high >= limit else None
        stop = order.stop_price
        assert stop is not None
        if buy:
            return max(open_, stop) if high >= stop else None
        return min(open_, stop) if low <= stop else None

"""Settlement (the seed's PaymentProcessor): the exact cash and position effect of one fill.

Plain functions on Decimals, the same arithmetic as the engine's `Portfolio`, so the rows the
order worker writes agree to the cent with a backtest on the same prices:

* cash moves by the full notional and the fee: buy −(qty·price + fee), sell +(qty·price − fee);
* the average entry price is the quantity-weighted average while a position grows, unchanged
  while it shrinks, and the fill price when a fill flips it;
* realised PnL is the price gain of the closed part, gross of fees (fees are booked in their
  own column, so net = realised − fees).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sigma.domain import Side

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Holding:
    """A net position: signed quantity, average entry price, realised PnL so far."""

    qty: Decimal = _ZERO
    avg_price: Decimal = _ZERO
    realized_pnl: Decimal = _ZERO


@dataclass(frozen=True, slots=True)
class Settlement:
    """What one fill does: the new holding, the cash movement and the PnL it realised."""

    holding: Holding
    cash_delta: Decimal
    realized_pnl: Decimal
    fee: Decimal


def settle(holding: Holding, side: Side, qty: Decimal, price: Decimal, fee: Decimal) -> Settlement:
    """Apply a fill of `qty` (> 0) at `price` with `fee` to `holding`."""
    if qty <= 0 or price <= 0 or fee < 0:
        raise ValueError(f"invalid fill: qty={qty} price={price} fee={fee}")
    signed = qty * side.sign
    cash_delta = -signed * price - fee
    old = holding.qty
    new_qty = old + signed
    if old == 0 or (old > 0) == (signed > 0):
        avg = (old * holding.avg_price + signed * price) / new_qty
        return Settlement(Holding(new_qty, avg, holding.realized_pnl), cash_delta, _ZERO, fee)
    closing = min(qty, abs(old))
    direction = 1 if old > 0 else -1
    realized = direction * closing * (price - holding.avg_price)
    if new_qty == 0:
        avg = _ZERO
    elif (new_qty > 0) == (old > 0):
        avg = holding.avg_price
    else:
        avg = price  # flipped: the remainder was opened at this fill
    return Settlement(
        Holding(new_qty, avg, holding.realized_pnl + realized), cash_delta, realized, fee
    )

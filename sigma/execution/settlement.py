"""Settlement (the seed's PaymentProcessor): the exact cash and position effect of one fill.

Plain functions on Decimals, the same arithmetic as the engine's `Portfolio`, so the rows the
order worker writes agree to the cent with a backtest on the same prices:

* cash moves by the full notional and the fee: buy −(qty·price + fee), sell +(qty·price − fee);
* the average entry price is the quantity-weighted average while a position grows, unchanged
  while it shrinks, and the fill price when a fill flips it;
* realised PnL is the price gain of the closed part, gross of fees (fees are booked in their
  own column, so net = realised − fees).

A venue may take the fee out of the asset traded instead of cash (a Binance buy pays in the
asset bought): `settle_fee_in` books what the account really holds then.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum

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


class FeeCurrency(Enum):
    """What a fill's fee was paid in, relative to the instrument traded."""

    QUOTE = "quote"  # cash: the paper broker, Upbit, a Binance sell
    BASE = "base"  # the asset traded: a Binance buy
    OTHER = "other"  # a third balance (Binance's BNB discount)


def fee_currency(fee_asset: str, base: str, quote: str) -> FeeCurrency:
    """Classify `fee_asset` for an instrument of `base`/`quote`; "" (not named) and an
    instrument whose currencies are unknown mean the quote currency, as brokers that do not
    name the fee asset charge."""
    if not fee_asset or not base or fee_asset == quote:
        return FeeCurrency.QUOTE
    return FeeCurrency.BASE if fee_asset == base else FeeCurrency.OTHER


def account_terms(
    side: Side, qty: Decimal, price: Decimal, fee: Decimal, currency: FeeCurrency
) -> tuple[Decimal, Decimal]:
    """A fill as a strategy account books it: the quantity its position moves by and the fee
    in the quote currency (`fee` is in `currency`'s units).

    A fee in the asset traded is kept by the venue from it: a buy holds qty - fee, a sell
    gives up qty + fee, booked at the fill price with a fee worth fee * price, so cash moves
    by exactly qty * price (the quote the venue moved) and equity falls by the fee's value,
    as the account's does. A fee from a third balance, which SIGMA does not book, is paid by
    neither cash nor the position (the fill row keeps it; reconciliation sees that balance).
    """
    if currency is FeeCurrency.QUOTE:
        return qty, fee
    if currency is FeeCurrency.BASE:
        return (qty - fee if side is Side.BUY else qty + fee), fee * price
    return qty, _ZERO


def settle_fee_in(
    holding: Holding,
    side: Side,
    qty: Decimal,
    price: Decimal,
    fee: Decimal,
    currency: FeeCurrency,
) -> Settlement:
    """`settle` for a fee paid in `currency` (`fee` in that currency's units)."""
    held, quote_fee = account_terms(side, qty, price, fee, currency)
    return settle(holding, side, held, price, quote_fee)

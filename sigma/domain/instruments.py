"""What a venue lets one trade: price ticks, lot step, minimums and fees of one market.

Exact Decimal arithmetic throughout: a price is valid when it is a multiple of the tick that
applies at that price (one tick for most venues, a ladder for Upbit's KRW market), a quantity
when it is a multiple of the lot step.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

from sigma.domain.orders import Side

#: ``(from_price, tick)`` rows in ascending ``from_price``: the tick of a price is the last row
#: at or below it.
TickLadder = tuple[tuple[Decimal, Decimal], ...]


def _to_step(value: Decimal, step: Decimal, rounding: str) -> Decimal:
    return (value / step).to_integral_value(rounding=rounding) * step


@dataclass(frozen=True, slots=True)
class Instrument:
    """One market at one venue.

    ``symbol`` is SIGMA's name (``BTC``), ``venue_symbol`` the name the venue adapter trades
    (ccxt's ``BTC/USDT``), ``venue_id`` the venue's own market id (``BTCUSDT``, ``KRW-BTC``).
    ``tick_ladder``, when given, replaces ``tick_size`` (which then is its finest tick).
    ``min_notional`` is the smallest order total in the quote currency; fees are rates.
    """

    symbol: str
    venue_symbol: str
    base: str
    quote: str
    tick_size: Decimal
    lot_step: Decimal
    min_qty: Decimal = Decimal(0)
    min_notional: Decimal = Decimal(0)
    maker_fee: Decimal = Decimal(0)
    taker_fee: Decimal = Decimal(0)
    tick_ladder: TickLadder = ()
    venue_id: str = ""

    def __post_init__(self) -> None:
        if self.tick_size <= 0 or self.lot_step <= 0:
            raise ValueError(
                f"{self.symbol}: tick size and lot step must be positive, "
                f"got {self.tick_size} and {self.lot_step}"
            )
        starts = [start for start, _ in self.tick_ladder]
        if starts != sorted(starts) or any(tick <= 0 for _, tick in self.tick_ladder):
            raise ValueError(f"{self.symbol}: tick ladder rows must ascend with positive ticks")

    def tick_at(self, price: Decimal) -> Decimal:
        """The price increment allowed at ``price``."""
        tick = self.tick_size
        for start, size in self.tick_ladder:
            if price >= start:
                tick = size
            else:
                break
        return tick

    def round_price(self, price: Decimal, side: Side | None = None) -> Decimal:
        """``price`` on the tick: for a buy down and for a sell up (never a worse price than
        asked), without a side to the nearest tick (half up)."""
        rounding = {None: ROUND_HALF_UP, Side.BUY: ROUND_FLOOR, Side.SELL: ROUND_CEILING}[side]
        rounded = _to_step(price, self.tick_at(price), rounding)
        # Rounding up can cross into a coarser band of a ladder; the result must fit that band.
        return _to_step(rounded, self.tick_at(rounded), rounding)

    def round_qty(self, qty: Decimal) -> Decimal:
        """``qty`` rounded down to the lot step (never more than asked)."""
        return _to_step(qty, self.lot_step, ROUND_FLOOR)

    def refusal(self, qty: Decimal, price: Decimal | None) -> str | None:
        """Why the venue would refuse ``qty`` at ``price`` (the limit, or the expected price of
        a market order; None skips the price checks), or None when the order passes."""
        if qty <= 0:
            return f"{self.symbol}: quantity {qty} must be positive"
        if qty % self.lot_step != 0:
            step = self.lot_step
            return f"{self.symbol}: quantity {qty} is not a multiple of the lot step {step}"
        if qty < self.min_qty:
            return f"{self.symbol}: quantity {qty} is under the minimum {self.min_qty}"
        if price is None:
            return None
        if price <= 0:
            return f"{self.symbol}: price {price} must be positive"
        tick = self.tick_at(price)
        if price % tick != 0:
            return f"{self.symbol}: price {price} is not a multiple of the tick {tick}"
        total = qty * price
        if total < self.min_notional:
            return (
                f"{self.symbol}: order total {total.normalize():f} {self.quote} is under the "
                f"minimum {self.min_notional.normalize():f} {self.quote}"
            )
        return None

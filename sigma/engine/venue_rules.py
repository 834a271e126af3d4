"""What a real venue allows an order to trade, applied by the live engine before it sends one.

A backtest and the paper broker trade any quantity on the fill model's lot; a venue has a lot
step, minimums and, on spot, no shorting and no credit. :class:`VenueRules` sizes an order the
way the venue will take it, or says why it would refuse it, so nothing is sent that the venue
must reject. With no instrument and shorting allowed (the paper default) it changes nothing.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from sigma.domain import Instrument, Order, OrderType, Side
from sigma.engine.fill_model import FillModel

log = logging.getLogger(__name__)

_ZERO = Decimal(0)


class VenueRules:
    """One engine's venue rules: ``instrument`` (None: no lot step or minimums beyond the fill
    model's) and whether the venue can hold a short; ``label`` names the engine in the log."""

    def __init__(self, instrument: Instrument | None, can_short: bool, label: str) -> None:
        self.instrument = instrument
        self.can_short = can_short
        self.label = label
        self.flat_said = False

    def size(
        self,
        order: Order,
        qty: Decimal,
        *,
        held: Decimal,
        cash: Decimal,
        price: Decimal,
        fill_model: FillModel,
    ) -> Decimal:
        """``qty`` as the venue lets ``order`` trade it, given the position ``held`` and the
        ``cash`` available (both as the engine projects them) at the expected ``price``."""
        if self.can_short:
            sized = qty
        elif order.side is Side.SELL:
            # Spot sells only what it holds: a short signal closes the long and stays flat.
            room = max(held, _ZERO)
            if qty > room and not order.reduce_only:
                self._say_flat()
            sized = min(qty, room)
        else:
            # Spot buys only with cash it has: no margin.
            sized = min(qty, fill_model.affordable_qty(cash, price))
        # A position that paid its fee in the asset (a Binance buy) is off the lot step: its
        # close sells what the step allows and leaves the dust, as the venue would.
        return sized if self.instrument is None else self.instrument.round_qty(sized)

    def refusal(self, order: Order, qty: Decimal, price: Decimal) -> str | None:
        """Why the venue would refuse ``order`` for ``qty`` (a market order judged at
        ``price``), or None."""
        if self.instrument is None:
            return None
        at = {OrderType.LIMIT: order.limit_price, OrderType.STOP: order.stop_price}.get(order.type)
        return self.instrument.refusal(qty, self.instrument.round_price(at or price))

    def _say_flat(self) -> None:
        if not self.flat_said:
            # Once per strategy: a strategy that goes short every few bars would flood the log.
            log.warning("%s: the venue cannot sell short, so a short signal means flat", self.label)
            self.flat_said = True

"""Binance spot's particulars for the ccxt execution client.

- Lookup by client id: ``GET /api/v3/order`` with ``origClientOrderId`` (ccxt's ``fetch_order``
  with the id in ``params`` and no order id). Binance keeps a client id unique among *open*
  orders only, so the client always looks the id up before sending.
- Trades: the placement's FULL response lists its fills; later ones come from
  ``GET /api/v3/myTrades?orderId=`` (``fetch_my_trades``), each with its commission and asset
  (a buy pays in the base asset unless BNB pays).
- Stops: ccxt sends a market order with ``triggerPrice`` as ``STOP_LOSS`` with ``stopPrice``;
  Binance triggers a buy stop when the last price rises to it and a sell stop when it falls to
  it, as SIGMA's stop orders mean.
- Cancel all: ``DELETE /api/v3/openOrders`` per symbol, one request (-2011 when none is open).
"""

from __future__ import annotations

from typing import ClassVar

import ccxt

from sigma.domain import Instrument
from sigma.execution.broker import Capability
from sigma.venues.binance import config, instruments
from sigma.venues.ccxt.profile import Exchange, RawOrder, VenueProfile


class BinanceProfile(VenueProfile):
    """Binance spot."""

    name: ClassVar[str] = config.NAME
    capabilities: ClassVar[frozenset[str]] = frozenset({Capability.CANCEL, Capability.STOP_ORDERS})

    def refine(self, instrument: Instrument) -> Instrument:
        return instruments.refine(instrument)

    async def find(self, exchange: Exchange, client_order_id: str, inst: Instrument) -> RawOrder:
        raw: RawOrder = await exchange.fetch_order(
            None, inst.venue_symbol, {"origClientOrderId": client_order_id}
        )
        return raw

    async def with_trades(self, exchange: Exchange, raw: RawOrder, inst: Instrument) -> RawOrder:
        trades = await exchange.fetch_my_trades(inst.venue_symbol, params={"orderId": raw["id"]})
        return {**raw, "trades": trades}

    async def cancel(self, exchange: Exchange, client_order_id: str, inst: Instrument) -> None:
        await exchange.cancel_order(None, inst.venue_symbol, {"origClientOrderId": client_order_id})

    async def cancel_all(self, exchange: Exchange, inst: Instrument) -> int:
        try:
            return len(await exchange.cancel_all_orders(inst.venue_symbol))
        except ccxt.OrderNotFound:
            return 0  # Binance answers -2011 "Unknown order sent." when none is open

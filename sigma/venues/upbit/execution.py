"""Upbit's particulars for the ccxt execution client.

- Lookup and cancel by client id: ``GET``/``DELETE /v1/order`` with ``identifier``. ccxt's
  ``fetch_order``/``cancel_order`` always send ``uuid`` (``uuid=None`` without an order id), so
  the implicit endpoints are called with ``identifier`` alone and the answer parsed by ccxt.
  Upbit never reuses an identifier, even after its order ended.
- Trades: ``GET /v1/order`` lists an order's trades without fees; the order's ``paid_fee``
  (KRW, both sides) is shared out over them by their funds.
- Market buys spend an amount of KRW (``ord_type=price``): ccxt's ``cost`` parameter, the
  quantity times the decision price, rounded down to a whole won.
- No stop orders: Upbit's order API has none, so a stop is refused before sending.
- No ``fetch_orders`` (ccxt's upbit does not support it) and no cancel-all in ccxt: open orders
  are listed with ``fetch_open_orders`` and cancelled one by one.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import ClassVar

from sigma.domain import Instrument
from sigma.execution.broker import Capability
from sigma.venues.ccxt.instruments import decimal
from sigma.venues.ccxt.profile import Exchange, RawOrder, VenueProfile
from sigma.venues.upbit import config, instruments

#: Upbit lists ended orders over a window of at most 7 days; a minute less, for clock skew
_CLOSED_WINDOW_MS = 7 * 24 * 3600 * 1000 - 60_000


class UpbitProfile(VenueProfile):
    """Upbit (KRW markets)."""

    name: ClassVar[str] = config.NAME
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {Capability.CANCEL, Capability.MARKET_BUY_BY_COST}
    )
    cost_steps: ClassVar[Mapping[str, Decimal]] = {"KRW": Decimal(1)}

    def refine(self, instrument: Instrument) -> Instrument:
        return instruments.refine(instrument)

    async def find(self, exchange: Exchange, client_order_id: str, inst: Instrument) -> RawOrder:
        response = await exchange.private_get_order({"identifier": client_order_id})
        raw: RawOrder = exchange.parse_order(response)
        return raw

    async def with_trades(self, exchange: Exchange, raw: RawOrder, inst: Instrument) -> RawOrder:
        fresh: RawOrder = await exchange.fetch_order(raw["id"], inst.venue_symbol)
        return fresh

    async def traded_orders(
        self, exchange: Exchange, inst: Instrument, since_ms: int
    ) -> list[RawOrder]:
        """Upbit lists no account trades: the orders created since ``since_ms`` that ended
        done or cancelled, and the open ones, each that traded fetched with its trades. Upbit
        lists ended orders by creation time over at most a week; an order SIGMA holds open is
        looked up by its own id, so an older one is not missed."""
        since_ms = max(since_ms, exchange.milliseconds() - _CLOSED_WINDOW_MS)
        listed = await exchange.fetch_open_orders(inst.venue_symbol)
        for state in ("done", "cancel"):
            listed += await exchange.fetch_closed_orders(
                inst.venue_symbol, since_ms, params={"state": state}
            )
        traded = [raw for raw in listed if decimal(raw.get("filled")) > 0]
        return [await exchange.fetch_order(raw["id"], inst.venue_symbol) for raw in traded]

    async def cancel(self, exchange: Exchange, client_order_id: str, inst: Instrument) -> None:
        await exchange.private_delete_order({"identifier": client_order_id})

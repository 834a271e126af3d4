"""What differs between ccxt venues, in one place per venue.

The execution client is the same for every venue; a :class:`VenueProfile` says how this venue
looks an order up by client id, where an order's trades come from, how it cancels, which
order kinds it takes (its capabilities) and what its markets leave out. Binance and Upbit
subclass it in their own folders; another ccxt venue is one more subclass.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import ROUND_FLOOR, Decimal
from typing import Any, ClassVar

import ccxt

from sigma.domain import Instrument, OrderType, Side, TimeInForce
from sigma.execution.broker import Capability
from sigma.execution.events import OrderEvent

log = logging.getLogger(__name__)

#: trades asked for per request when reconciling (Binance's most)
_TRADES_PAGE = 1000

#: a ccxt async exchange (ccxt ships no type information)
Exchange = Any
#: a ccxt order structure
RawOrder = dict[str, Any]


@dataclass(frozen=True)
class OrderPlan:
    """An order as it goes to ccxt's ``create_order``: prices and amounts already on the
    venue's steps, as strings (ccxt takes them and keeps every digit)."""

    type: str
    side: str
    amount: str | None
    price: str | None
    params: dict[str, str | bool] = field(default_factory=dict)


def _text(value: Decimal) -> str:
    return f"{value.normalize():f}"


class VenueProfile:
    """A ccxt venue's particulars; the defaults are ccxt's unified API."""

    #: ccxt's exchange id
    name: ClassVar[str] = ""
    capabilities: ClassVar[frozenset[str]] = frozenset({Capability.CANCEL})
    #: the step a market buy's amount to spend is rounded down to, per quote currency
    cost_steps: ClassVar[Mapping[str, Decimal]] = {}

    # --- instruments ------------------------------------------------------------------------
    def refine(self, instrument: Instrument) -> Instrument:
        """Add what the venue's ccxt markets leave out (nothing by default)."""
        return instrument

    # --- placing ----------------------------------------------------------------------------
    def plan(self, order: OrderEvent, inst: Instrument) -> OrderPlan | str:
        """The order on the venue's steps with its flags (`flags`), or why it is refused
        before sending.

        The quantity is rounded down to the lot step and a limit price to the tick (down for
        a buy, up for a sell: never a worse price than asked); what is then under the venue's
        minimums is refused with the reason."""
        plan = self._plan(order, inst)
        flags = self.flags(order)
        if isinstance(plan, str) or not flags:
            return plan
        return replace(plan, params={**plan.params, **flags})

    def flags(self, order: OrderEvent) -> dict[str, str | bool]:
        """The venue's flags for `order`, in ccxt's unified parameters: ``timeInForce`` of a
        limit order that is not good till cancelled (Binance and Upbit take IOC and FOK on
        limit orders; a market order fills at once anyway), ``reduceOnly`` where the venue
        takes it (`Capability.REDUCE_ONLY`; spot does not)."""
        flags: dict[str, str | bool] = {}
        if order.type is OrderType.LIMIT and order.tif is not TimeInForce.GTC:
            flags["timeInForce"] = order.tif.value
        if order.reduce_only and Capability.REDUCE_ONLY in self.capabilities:
            flags["reduceOnly"] = True
        return flags

    def _plan(self, order: OrderEvent, inst: Instrument) -> OrderPlan | str:
        qty = inst.round_qty(order.qty)
        if qty == 0:
            return f"{inst.symbol}: quantity {order.qty} is under the lot step {inst.lot_step}"
        if order.type is OrderType.STOP:
            if Capability.STOP_ORDERS not in self.capabilities:
                return f"{self.name} takes no stop orders: its order API has none"
            assert order.stop_price is not None  # validated by the OrderEvent's producer
            stop = inst.round_price(order.stop_price)
            refusal = inst.refusal(qty, stop)
            return refusal or self.stop_plan(order.side, qty, stop)
        if order.type is OrderType.LIMIT:
            assert order.limit_price is not None
            price = inst.round_price(order.limit_price, order.side)
            refusal = inst.refusal(qty, price)
            return refusal or OrderPlan("limit", order.side.value, _text(qty), _text(price))
        # A market order's total is judged at the price the decision was made at.
        refusal = inst.refusal(qty, inst.round_price(order.ref_price))
        if refusal:
            return refusal
        if order.side is Side.BUY and Capability.MARKET_BUY_BY_COST in self.capabilities:
            step = self.cost_steps.get(inst.quote, Decimal("1e-8"))
            cost = (qty * order.ref_price / step).to_integral_value(ROUND_FLOOR) * step
            return OrderPlan("market", "buy", None, None, {"cost": _text(cost)})
        return OrderPlan("market", order.side.value, _text(qty), None)

    def stop_plan(self, side: Side, qty: Decimal, stop: Decimal) -> OrderPlan:
        """A stop-market order (a market order once the last price reaches ``stop``), in
        ccxt's unified form: ``triggerPrice`` on a market order."""
        return OrderPlan("market", side.value, _text(qty), None, {"triggerPrice": _text(stop)})

    def client_id_params(self, client_order_id: str) -> dict[str, str]:
        """The parameters that send our client order id (ccxt maps ``clientOrderId`` to each
        venue's own field)."""
        return {"clientOrderId": client_order_id}

    # --- reading ----------------------------------------------------------------------------
    async def find(self, exchange: Exchange, client_order_id: str, inst: Instrument) -> RawOrder:
        """The order with our client id; ccxt's ``OrderNotFound`` when the venue has none."""
        raise NotImplementedError

    async def with_trades(self, exchange: Exchange, raw: RawOrder, inst: Instrument) -> RawOrder:
        """``raw`` with its trades (called when it has executions but lists none)."""
        raise NotImplementedError

    async def watch_orders(self, exchange: Exchange) -> list[RawOrder]:
        """The next order changes on the venue's user-data stream, every market (ccxt.pro's
        ``watch_orders``: Binance's ``executionReport``, Upbit's ``myOrder``)."""
        orders: list[RawOrder] = await exchange.watch_orders()
        return orders

    async def traded_orders(
        self, exchange: Exchange, inst: Instrument, since_ms: int
    ) -> list[RawOrder]:
        """The orders on ``inst`` that traded since ``since_ms``, each with those trades. By
        default from the account's trades (ccxt's ``fetch_my_trades``, page by page), then
        each order they belong to (one request per order)."""
        trades: dict[str, dict[str, Any]] = {}
        while True:
            page = await exchange.fetch_my_trades(inst.venue_symbol, since_ms, _TRADES_PAGE)
            fresh = [t for t in page if str(t["id"]) not in trades]
            trades.update((str(t["id"]), t) for t in fresh)
            if len(page) < _TRADES_PAGE or not fresh:
                break
            since_ms = max(int(t["timestamp"]) for t in page)  # a page ends mid-millisecond
        by_order: dict[str, list[dict[str, Any]]] = {}
        for trade in trades.values():
            by_order.setdefault(str(trade["order"]), []).append(trade)
        orders = []
        for order_id, own in by_order.items():
            raw: RawOrder = await exchange.fetch_order(order_id, inst.venue_symbol)
            orders.append({**raw, "trades": own})
        return orders

    # --- cancelling -------------------------------------------------------------------------
    async def cancel(self, exchange: Exchange, client_order_id: str, inst: Instrument) -> None:
        """Ask the venue to cancel the order with our client id (``OrderNotFound`` when it is
        unknown or no longer open)."""
        raise NotImplementedError

    async def cancel_all(self, exchange: Exchange, inst: Instrument) -> int:
        """Cancel every open order on ``inst``; how many. By default one by one, from the
        venue's list of open orders; an order that ended meanwhile is not counted."""
        cancelled = 0
        for raw in await exchange.fetch_open_orders(inst.venue_symbol):
            try:
                await exchange.cancel_order(raw["id"], inst.venue_symbol)
            except ccxt.OrderNotFound:
                log.info("%s: order %s ended before its cancel", self.name, raw["id"])
                continue
            cancelled += 1
        return cancelled

"""A real exchange through ccxt's async REST API (Upbit, Binance and the other ccxt venues).

The client order id goes to the exchange (`clientOrderId`, which ccxt maps to each venue's own
field), so a worker that crashed after sending can find the order again instead of sending it
twice: `place` first looks the id up.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

from sigma.domain import OrderStatus, OrderType
from sigma.execution.broker import BrokerFill, BrokerReport
from sigma.execution.events import OrderEvent

log = logging.getLogger(__name__)

_STATUS = {
    "closed": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELLED,
    "cancelled": OrderStatus.CANCELLED,
    "expired": OrderStatus.CANCELLED,
    "rejected": OrderStatus.REJECTED,
}


class TradingExchange(Protocol):
    """The part of a ccxt async exchange this broker uses."""

    async def create_order(
        self,
        symbol: str,
        type: str,
        side: str,
        amount: float,
        price: float | None = None,
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Place an order."""
        ...

    async def fetch_orders(
        self,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
        params: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Recent orders on `symbol`."""
        ...

    async def close(self) -> None:
        """Close connections."""
        ...


def _dec(value: object) -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal(0)


def _ts(ms: Any) -> datetime:
    return datetime.fromtimestamp(int(ms) / 1000, UTC) if ms else datetime.now(UTC)


def to_report(client_order_id: str, raw: Mapping[str, Any]) -> BrokerReport:
    """Translate a ccxt order structure (with its `trades` when the venue sends them)."""
    filled = _dec(raw.get("filled"))
    status = _STATUS.get(str(raw.get("status")))
    if status is None:
        status = OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.NEW
    fills: list[BrokerFill] = []
    for trade in raw.get("trades") or []:
        fee = trade.get("fee") or {}
        fills.append(
            BrokerFill(
                str(trade["id"]),
                _dec(trade["amount"]),
                _dec(trade["price"]),
                _dec(fee.get("cost")),
                _ts(trade.get("timestamp")),
            )
        )
    if not fills and filled > 0 and status is OrderStatus.FILLED:
        # Venues that do not list trades with the order: one fill for the whole execution.
        fee = raw.get("fee") or {}
        fills.append(
            BrokerFill(
                f"{raw['id']}-all",
                filled,
                _dec(raw.get("average") or raw.get("price")),
                _dec(fee.get("cost")),
                _ts(raw.get("lastTradeTimestamp") or raw.get("timestamp")),
            )
        )
    reason = str(raw.get("info", ""))[:200] if status is OrderStatus.REJECTED else ""
    return BrokerReport(client_order_id, status, tuple(fills), str(raw["id"]), reason)


class CcxtBroker:
    """Orders on a ccxt exchange; `symbols` maps SIGMA symbols to the venue's (`BTC/KRW`)."""

    def __init__(self, exchange: TradingExchange, symbols: Mapping[str, str], name: str) -> None:
        self.exchange = exchange
        self.symbols = dict(symbols)
        self.name = name

    def _market(self, symbol: str) -> str:
        market = self.symbols.get(symbol)
        if market is None:
            raise ValueError(f"{self.name}: no exchange market configured for symbol {symbol!r}")
        return market

    async def place(self, order: OrderEvent) -> BrokerReport:
        """Send the order unless the exchange already has this client order id."""
        known = await self.lookup(order.client_order_id, order.symbol)
        if known is not None:
            log.info("%s: order %s already at the exchange", self.name, order.client_order_id)
            return known
        price = order.limit_price if order.type is OrderType.LIMIT else None
        params: dict[str, Any] = {"clientOrderId": order.client_order_id}
        if order.type is OrderType.STOP:
            params["stopPrice"] = float(order.stop_price or 0)
        raw = await self.exchange.create_order(
            self._market(order.symbol),
            "limit" if order.type is OrderType.LIMIT else "market",
            order.side.value,
            float(order.qty),
            float(price) if price is not None else None,
            params,
        )
        return to_report(order.client_order_id, raw)

    async def lookup(self, client_order_id: str, symbol: str) -> BrokerReport | None:
        """Find the order by client id among the venue's recent orders."""
        for raw in await self.exchange.fetch_orders(self._market(symbol), limit=100):
            if raw.get("clientOrderId") == client_order_id:
                return to_report(client_order_id, raw)
        return None

    async def close(self) -> None:
        """Close the exchange session."""
        await self.exchange.close()


def make_ccxt_broker(
    name: str, symbols: Mapping[str, str], config: Mapping[str, Any] | None = None
) -> CcxtBroker:
    """A broker on ccxt exchange `name` (`upbit`, `binance`, ...) with API keys in `config`."""
    import ccxt.async_support as ccxt_async

    factory = getattr(ccxt_async, name, None)
    if factory is None:
        raise ValueError(f"ccxt has no exchange {name!r}")
    exchange: TradingExchange = factory({"enableRateLimit": True, **(config or {})})
    return CcxtBroker(exchange, symbols, name)

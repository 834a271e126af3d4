"""ccxt order structures (with their trades) into :class:`BrokerReport` values.

A fill's id is the venue's trade id, prefixed with the market id when given: Binance numbers
trades per market, and the store keeps fill ids unique across markets. The same trade gives the
same fill id whether it came with the order's placement or a later lookup, so booking a report
twice adds nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sigma.domain import OrderStatus
from sigma.execution.broker import BrokerFill, BrokerReport
from sigma.venues.ccxt.instruments import decimal

_STATUS = {
    "closed": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELLED,
    "cancelled": OrderStatus.CANCELLED,
    "expired": OrderStatus.CANCELLED,
    "rejected": OrderStatus.REJECTED,
}
#: an order fee shared out over trades is kept to this many places
_FEE_PLACES = Decimal("1e-12")


def _ts(ms: Any) -> datetime:
    return datetime.fromtimestamp(int(ms) / 1000, UTC) if ms else datetime.now(UTC)


def _status(raw: Mapping[str, Any], filled: Decimal) -> OrderStatus:
    status = _STATUS.get(str(raw.get("status")))
    if status is None:
        return OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.NEW
    if status is OrderStatus.CANCELLED and raw.get("type") == "market" and filled > 0:
        # A market order is done once it has traded: Upbit ends a market buy that could not
        # spend its last won as "cancel", Binance one the book could not fill as "expired".
        return OrderStatus.FILLED
    return status


def _trade_cost(trade: Mapping[str, Any]) -> Decimal:
    cost = trade.get("cost")
    return decimal(cost) if cost is not None else decimal(trade["amount"]) * decimal(trade["price"])


def _fees(raw: Mapping[str, Any], trades: Sequence[Mapping[str, Any]]) -> list[tuple[Decimal, str]]:
    """Each trade's fee and currency. Venues that report the fee per order only (Upbit's
    ``paid_fee``) have it shared out over the trades by their cost."""
    own = [trade.get("fee") or {} for trade in trades]
    if any(fee.get("cost") is not None for fee in own):
        return [(decimal(fee.get("cost")), str(fee.get("currency") or "")) for fee in own]
    order_fee = raw.get("fee") or {}
    total_fee = decimal(order_fee.get("cost"))
    currency = str(order_fee.get("currency") or "")
    costs = [_trade_cost(trade) for trade in trades]
    total_cost = sum(costs, start=Decimal(0))
    if total_fee == 0 or total_cost == 0:
        return [(Decimal(0), currency) for _ in trades]
    return [
        ((total_fee * cost / total_cost).quantize(_FEE_PLACES, ROUND_HALF_UP).normalize(), currency)
        for cost in costs
    ]


def to_report(
    client_order_id: str,
    raw: Mapping[str, Any],
    trades: Sequence[Mapping[str, Any]] | None = None,
    *,
    fill_prefix: str = "",
    reason: str = "",
) -> BrokerReport:
    """Translate a ccxt order structure and its trades (``raw["trades"]`` when not given)."""
    trades = list((raw.get("trades") or []) if trades is None else trades)
    trades.sort(key=lambda trade: (trade.get("timestamp") or 0, str(trade.get("id"))))
    filled = decimal(raw.get("filled"))
    status = _status(raw, filled)
    fills = [
        BrokerFill(
            f"{fill_prefix}{trade['id']}",
            decimal(trade["amount"]),
            decimal(trade["price"]),
            fee,
            _ts(trade.get("timestamp") or raw.get("lastTradeTimestamp") or raw.get("timestamp")),
            asset,
        )
        for trade, (fee, asset) in zip(trades, _fees(raw, trades), strict=True)
    ]
    if not fills and filled > 0 and status is OrderStatus.FILLED:
        # A venue that lists no trades with a finished order: one fill for the whole of it.
        fee = raw.get("fee") or {}
        fills.append(
            BrokerFill(
                f"{fill_prefix}{raw['id']}-all",
                filled,
                decimal(raw.get("average") or raw.get("price")),
                decimal(fee.get("cost")),
                _ts(raw.get("lastTradeTimestamp") or raw.get("timestamp")),
                str(fee.get("currency") or ""),
            )
        )
    if status is OrderStatus.REJECTED and not reason:
        reason = str(raw.get("info", ""))[:300]
    # ccxt's unified symbol is BASE/QUOTE: booking needs both to book a fee paid in either.
    base, _, quote = str(raw.get("symbol") or "").partition("/")
    return BrokerReport(
        client_order_id, status, tuple(fills), str(raw["id"]), reason, base, quote.split(":")[0]
    )

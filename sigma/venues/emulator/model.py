"""The local exchange's value types: markets, order requests, orders, trades, rejections, events.

Protocol-neutral: the Binance and Upbit front ends translate their wire formats to and from
these. Every price, quantity and amount is a ``Decimal``; times are epoch milliseconds (the
venues' own unit).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from enum import StrEnum

__all__ = [
    "BalanceEvent",
    "FeeRule",
    "MarketSpec",
    "MarketTrade",
    "OrderEvent",
    "OrderRequest",
    "OrderStatus",
    "OrderType",
    "Reason",
    "Rejection",
    "Side",
    "TimeInForce",
    "VenueEvent",
    "VenueOrder",
    "VenueTrade",
    "ceil_to",
    "floor_to",
]


def floor_to(value: Decimal, step: Decimal) -> Decimal:
    """``value`` rounded down to a multiple of ``step``."""
    return (value / step).to_integral_value(rounding=ROUND_FLOOR) * step


def ceil_to(value: Decimal, step: Decimal) -> Decimal:
    """``value`` rounded up to a multiple of ``step``."""
    return (value / step).to_integral_value(rounding=ROUND_CEILING) * step


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class OrderType(StrEnum):
    """Binance's spot order types; Upbit's map onto MARKET and LIMIT."""

    MARKET = "MARKET"
    LIMIT = "LIMIT"
    LIMIT_MAKER = "LIMIT_MAKER"
    STOP_LOSS = "STOP_LOSS"
    STOP_LOSS_LIMIT = "STOP_LOSS_LIMIT"
    TAKE_PROFIT = "TAKE_PROFIT"
    TAKE_PROFIT_LIMIT = "TAKE_PROFIT_LIMIT"

    @property
    def is_stop(self) -> bool:
        return self in _STOPS

    @property
    def has_limit(self) -> bool:
        return self in _WITH_LIMIT


_STOPS = frozenset(
    {
        OrderType.STOP_LOSS,
        OrderType.STOP_LOSS_LIMIT,
        OrderType.TAKE_PROFIT,
        OrderType.TAKE_PROFIT_LIMIT,
    }
)
_WITH_LIMIT = frozenset(
    {
        OrderType.LIMIT,
        OrderType.LIMIT_MAKER,
        OrderType.STOP_LOSS_LIMIT,
        OrderType.TAKE_PROFIT_LIMIT,
    }
)


class TimeInForce(StrEnum):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"


class OrderStatus(StrEnum):
    """Binance's order states (Upbit's ``wait``/``watch``/``done``/``cancel`` derive from them)."""

    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"
    REJECTED = "REJECTED"

    @property
    def is_final(self) -> bool:
        return self in (
            OrderStatus.FILLED,
            OrderStatus.CANCELED,
            OrderStatus.EXPIRED,
            OrderStatus.REJECTED,
        )


class FeeRule(StrEnum):
    """Which asset pays the fee: what the trade brings in (Binance spot without BNB), or always
    the quote currency, reserved with the order on buys (Upbit)."""

    RECEIVED = "received"
    QUOTE = "quote"


class Reason(StrEnum):
    """Why the venue refused a request; each front end maps it to its own code and message."""

    UNKNOWN_SYMBOL = "unknown_symbol"
    PRICE_FILTER = "price_filter"
    LOT_SIZE = "lot_size"
    MIN_NOTIONAL = "min_notional"
    MAX_NOTIONAL = "max_notional"
    MAX_NUM_ORDERS = "max_num_orders"
    MAX_NUM_STOPS = "max_num_stops"
    PERCENT_PRICE = "percent_price"
    INSUFFICIENT_BALANCE = "insufficient_balance"
    DUPLICATE_ORDER = "duplicate_order"
    UNKNOWN_ORDER = "unknown_order"
    WOULD_TAKE = "would_take"
    WOULD_TRIGGER = "would_trigger"
    BAD_REQUEST = "bad_request"
    NO_LIQUIDITY = "no_liquidity"


class Rejection(Exception):
    """A request the venue refuses, with the reason and a detail for the message."""

    def __init__(self, reason: Reason, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class MarketSpec:
    """One market's rules. ``symbol`` is the venue's own id (``BTCUSDT``, ``KRW-BTC``).

    ``tick_sizes`` lists ``(from_price, tick)`` rows in ascending ``from_price``: the tick of a
    price is the last row at or below it (Binance has one row, Upbit's KRW market a ladder).
    ``level_qty`` is the synthetic book's quantity per level, and also how much the resting
    orders of one side can fill in all each time the price trades at or through them.
    ``min_notional`` applies to market orders too (Binance's NOTIONAL ``applyMinToMarket``).
    ``price_band`` is Binance's PERCENT_PRICE_BY_SIDE, one band for both sides: (down, up)
    multipliers of the average price of the last ``avg_price_mins`` minutes that bound a limit
    price; None when the market has no such rule (Upbit's).
    """

    symbol: str
    base: str
    quote: str
    tick_sizes: tuple[tuple[Decimal, Decimal], ...]
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    min_price: Decimal
    max_price: Decimal
    min_notional: Decimal
    max_notional: Decimal | None = None
    start_price: Decimal = Decimal(100)
    level_qty: Decimal = Decimal(1)
    levels: int = 20
    spread_bps: Decimal = Decimal(2)
    level_bps: Decimal = Decimal(1)
    max_open_orders: int = 200
    #: Binance's MAX_NUM_ALGO_ORDERS: open stop orders an account may have on the market
    #: (None: no such limit)
    max_stop_orders: int | None = None
    price_band: tuple[Decimal, Decimal] | None = None
    avg_price_mins: int = 5
    #: a market order's notional is priced at the ``avg_price_mins`` average, not the last
    #: price (Binance's NOTIONAL filter for MARKET orders)
    market_notional_at_average: bool = False
    base_precision: int = 8
    quote_precision: int = 8

    def tick_at(self, price: Decimal) -> Decimal:
        """The price increment allowed at ``price``."""
        tick = self.tick_sizes[0][1]
        for start, size in self.tick_sizes:
            if price >= start:
                tick = size
        return tick


@dataclass(frozen=True)
class OrderRequest:
    """A new order as the front end parsed it. ``qty`` is in base units; a market buy may give
    ``quote_qty`` (an amount to spend) instead."""

    symbol: str
    side: Side
    type: OrderType
    qty: Decimal | None = None
    quote_qty: Decimal | None = None
    price: Decimal | None = None
    stop_price: Decimal | None = None
    tif: TimeInForce = TimeInForce.GTC
    client_id: str | None = None


@dataclass
class VenueOrder:
    """An order at the venue; the front ends render it in their own shape."""

    order_id: int
    client_id: str
    account: str
    symbol: str
    side: Side
    type: OrderType
    tif: TimeInForce
    qty: Decimal | None
    quote_qty: Decimal | None
    price: Decimal | None
    stop_price: Decimal | None
    status: OrderStatus
    created_ms: int
    updated_ms: int
    filled: Decimal = Decimal(0)
    cum_quote: Decimal = Decimal(0)
    fees: dict[str, Decimal] = field(default_factory=dict)
    #: funds held for the order (quote for buys, base for sells)
    locked: Decimal = Decimal(0)
    #: a stop order waits for its trigger; working means on the book (or done)
    working: bool = True
    trade_count: int = 0
    #: False when the venue made the client id up (Upbit then shows no identifier)
    client_id_given: bool = True
    #: the client id of the request that canceled the order ("" while not canceled): the
    #: cancel's own newClientOrderId on Binance, made up when the request names none
    cancel_id: str = ""

    @property
    def remaining(self) -> Decimal:
        """Base quantity still to fill (0 for an amount-to-spend market order)."""
        return self.qty - self.filled if self.qty is not None else Decimal(0)

    def snapshot(self) -> VenueOrder:
        """A copy that later changes to this order do not touch (for events)."""
        return replace(self, fees=dict(self.fees))


@dataclass(frozen=True)
class VenueTrade:
    """One fill of one of our orders."""

    trade_id: int
    order_id: int
    client_id: str
    account: str
    symbol: str
    side: Side
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    fee: Decimal
    fee_asset: str
    maker: bool
    time_ms: int


@dataclass(frozen=True)
class MarketTrade:
    """A trade on the public tape: the price path's ticks and our own taker fills."""

    symbol: str
    trade_id: int
    price: Decimal
    qty: Decimal
    time_ms: int
    buyer_is_maker: bool


@dataclass(frozen=True)
class OrderEvent:
    """An order changed: ``kind`` is NEW, TRADE, CANCELED, EXPIRED, REJECTED or TRIGGERED."""

    kind: str
    order: VenueOrder
    trade: VenueTrade | None = None


@dataclass(frozen=True)
class BalanceEvent:
    """An account's balances after a change: asset -> (free, locked), changed assets only."""

    account: str
    balances: dict[str, tuple[Decimal, Decimal]]
    time_ms: int


VenueEvent = MarketTrade | OrderEvent | BalanceEvent

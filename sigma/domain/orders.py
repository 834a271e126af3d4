"""Orders and fills. The client order id is created once and is the idempotency key."""

from __future__ import annotations

import itertools
import os
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum

from sigma.domain.money import utc


class Side(StrEnum):
    """Order side."""

    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        """+1 for buys, -1 for sells."""
        return 1 if self is _BUY else -1


class OrderType(StrEnum):
    """Market, limit or stop (stop becomes market when touched)."""

    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"


class TimeInForce(StrEnum):
    """How long an order may wait to fill.

    GTC waits until filled or cancelled. IOC and FOK get one chance, the first price the order
    meets (the next bar's open; the signal bar's close when market orders fill at the close):
    what that price does not fill is cancelled. The engine fills an order whole or not at all,
    so IOC and FOK behave alike there; a venue may fill an IOC order in part."""

    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"


class OrderStatus(StrEnum):
    """Lifecycle of an order."""

    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"


# A Decimal compares with a Decimal in half the time it takes with an int.
_ZERO = Decimal(0)
_ONE = Decimal(1)
# Enum members read per order and fill, bound once: `OrderType.MARKET` goes through the
# enum machinery (several times the cost of a plain global in Python 3.11).
_BUY = Side.BUY
_MARKET = OrderType.MARKET
_LIMIT = OrderType.LIMIT
_STOP = OrderType.STOP
_GTC = TimeInForce.GTC

SIGNAL = "signal"
"""`Order.reason` of an order the strategy placed itself (and of a trade it closed)."""
STOP_LOSS = "stop_loss"
TAKE_PROFIT = "take_profit"
TRAILING_STOP = "trailing_stop"
PROTECTIVE = frozenset({STOP_LOSS, TAKE_PROFIT, TRAILING_STOP})
"""Reasons of protective orders: held by the engine, armed on a position, triggered by price."""
LIQUIDATION = "liquidation"
"""`Order.reason` of the order that closes an account whose margin was breached."""


class _IdSource:
    """Client order ids: 32 hex digits, a random 80-bit prefix per process and a 48-bit counter.

    Unique across processes and restarts (the live pipeline's idempotency key) like a uuid4:
    two processes draw the same prefix with odds of 2**-80, and a forked child draws its own.
    Unlike a uuid4 no random bytes are read per order, which made ids a cost of backtests."""

    __slots__ = ("_base", "_counter", "_prefix")

    _LAST = (1 << 48) - 1

    def __init__(self) -> None:
        self._prefix = ""
        self._base = 0
        self._counter = itertools.count()
        self.reseed()

    def reseed(self) -> None:
        """Draw a new prefix and restart the counter."""
        self._prefix = secrets.token_hex(10)
        self._base = int(self._prefix, 16) << 48  # the prefix's digits, then 12 zeros
        self._counter = itertools.count()

    def __call__(self) -> str:
        n = next(self._counter)
        if n > self._LAST:  # the counter would need a 13th digit
            self.reseed()
            n = next(self._counter)
        # One formatting of one number: f"{prefix}{n:012x}" parsed its format spec per id.
        return "%032x" % (self._base | n)


new_client_order_id = _IdSource()
"""A fresh, globally unique client order id."""
os.register_at_fork(after_in_child=new_client_order_id.reseed)


@dataclass(slots=True)
class Order:
    """An instruction to trade.

    Exactly one of `qty` (absolute units) or `equity_fraction` (size at fill time from the
    equity then available, net of commission) is set. `reduce_only` orders only shrink a
    position and are sized from it at fill time when `qty` is None.
    """

    symbol: str
    side: Side
    type: OrderType = OrderType.MARKET
    qty: Decimal | None = None
    equity_fraction: Decimal | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    reduce_only: bool = False
    strategy: str = ""
    tag: str = ""
    created_at: datetime | None = None
    client_order_id: str = field(default_factory=new_client_order_id)
    status: OrderStatus = OrderStatus.NEW
    filled_qty: Decimal = Decimal(0)
    tif: TimeInForce = TimeInForce.GTC
    bars: int | None = None
    reason: str = SIGNAL
    """Why the order exists: "signal" (the strategy's own), or the protective kind; a trade
    the order closes carries it as its `exit_reason`."""
    oco: str = ""
    parent_id: str = ""
    trail: Decimal | None = None
    trail_pct: Decimal | None = None

    def __post_init__(self) -> None:
        if self.created_at is not None:
            self.created_at = utc(self.created_at)
        qty, fraction = self.qty, self.equity_fraction
        if qty is None:
            if fraction is None:
                if not self.reduce_only:
                    raise ValueError("order needs exactly one of qty or equity_fraction")
            elif not _ZERO < fraction <= _ONE:
                raise ValueError(f"equity_fraction must be in (0, 1], got {fraction}")
        elif fraction is not None:
            raise ValueError("order needs exactly one of qty or equity_fraction")
        elif qty <= _ZERO:
            raise ValueError(f"order qty must be positive, got {qty}")
        if self.type is not _MARKET:  # a market order (most are) has no price to check
            self._check_prices()
        if self.bars is not None and self.bars < 1:
            raise ValueError(f"bars must be at least 1, got {self.bars}")
        if self.reason != SIGNAL:
            self._check_protective()

    def _check_prices(self) -> None:
        if self.type is _LIMIT and (self.limit_price is None or self.limit_price <= 0):
            raise ValueError("limit order needs a positive limit_price")
        if self.type is _STOP and (self.stop_price is None or self.stop_price <= 0):
            raise ValueError("stop order needs a positive stop_price")
        if self.tif is not _GTC and self.type is _STOP:
            raise ValueError(f"{self.tif} applies to market and limit orders, not to stops")

    def _check_protective(self) -> None:
        if self.reason not in PROTECTIVE or self.type is _MARKET:
            return  # an ordinary order: an operator's close, or the order a trigger sent
        if not self.reduce_only:
            raise ValueError(f"a {self.reason} order must be reduce-only")
        wanted = _LIMIT if self.reason == TAKE_PROFIT else _STOP
        if self.type is not wanted:
            raise ValueError(f"a {self.reason} order is a {wanted} order, got {self.type}")
        trails = (self.trail is not None) + (self.trail_pct is not None)
        if (self.reason == TRAILING_STOP) != (trails == 1):
            raise ValueError("a trailing stop needs exactly one of trail or trail_pct")
        if self.trail is not None and self.trail <= 0:
            raise ValueError(f"trail must be positive, got {self.trail}")
        if self.trail_pct is not None and not 0 < self.trail_pct < 1:
            raise ValueError(f"trail_pct must be in (0, 1), got {self.trail_pct}")
        if self.tif is not _GTC or self.bars is not None:
            raise ValueError("a protective order is good till cancelled")

    @property
    def is_protective(self) -> bool:
        """True for a stop-loss, take-profit or trailing stop held by the engine (not for the
        market order its trigger sends live, which carries its reason)."""
        return self.reason in PROTECTIVE and self.type is not _MARKET

    @property
    def is_open(self) -> bool:
        """True while the order can still fill."""
        return self.status in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)


FillIdentity = tuple[object, ...]


def fill_identity(
    client_order_id: str, fill_id: str, qty: Decimal, price: Decimal, ts: datetime
) -> FillIdentity:
    """What tells a reported fill from another, to book each once however often it is
    reported: the broker's id of the execution when it gave one (two executions of an order
    can share size, price and time: a resting order met by two equal trades in one
    millisecond), else its order, size, price and time."""
    if fill_id:
        return (client_order_id, fill_id)
    return (client_order_id, qty, price, ts)


# Not frozen, as no code changes a fill once made: a frozen dataclass sets each field through
# object.__setattr__, several times the cost of a plain slot, and a backtest makes one fill
# per order.
@dataclass(slots=True)
class Fill:
    """An execution: `qty` units at `price`, paying `fee`. Qty is always positive.
    `fill_id` is the broker's id of the execution ("" when none was given)."""

    client_order_id: str
    symbol: str
    side: Side
    qty: Decimal
    price: Decimal
    fee: Decimal
    ts: datetime
    strategy: str = ""
    fill_id: str = ""

    def __post_init__(self) -> None:
        if self.ts.tzinfo is not UTC:
            self.ts = utc(self.ts)
        if self.qty <= _ZERO or self.price <= _ZERO or self.fee < _ZERO:
            raise ValueError(f"fill {self.client_order_id}: qty/price must be > 0 and fee >= 0")

    @property
    def signed_qty(self) -> Decimal:
        """Positive for buys, negative for sells."""
        return self.qty if self.side is _BUY else -self.qty

    @property
    def identity(self) -> FillIdentity:
        """What tells this fill from another (`fill_identity`)."""
        return fill_identity(self.client_order_id, self.fill_id, self.qty, self.price, self.ts)

    @property
    def notional(self) -> Decimal:
        """Price times quantity."""
        return self.qty * self.price

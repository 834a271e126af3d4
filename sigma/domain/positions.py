"""Positions and round-trip trades."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal


@dataclass(slots=True)
class Position:
    """Net holding in one symbol. `qty` < 0 is short; `avg_price` is the entry average."""

    symbol: str
    qty: Decimal = Decimal(0)
    avg_price: Decimal = Decimal(0)
    realized_pnl: Decimal = Decimal(0)

    @property
    def is_flat(self) -> bool:
        """True when nothing is held."""
        return self.qty == 0

    def market_value(self, price: Decimal) -> Decimal:
        """Signed value of the holding at `price`."""
        return self.qty * price

    def unrealized_pnl(self, price: Decimal) -> Decimal:
        """Gain or loss if closed at `price`, before fees."""
        return self.qty * (price - self.avg_price)


@dataclass(frozen=True, slots=True)
class OpenLot:
    """The open part of a position as a trade: what a strategy reads in `self.trades`."""

    symbol: str
    qty: Decimal  # signed: > 0 long, < 0 short
    entry_price: Decimal  # average entry price of the open quantity
    entry_ts: datetime | None  # when the position was opened (None: not known)
    entry_bar: int = -1
    tag: str = ""


# Not frozen, as no code changes a trade once made: a frozen dataclass sets each field through
# object.__setattr__, several times the cost of a plain slot, and a backtest makes one per
# round trip.
@dataclass(slots=True)
class Trade:
    """A closed round trip: entry and exit, with both fees in `fees` and net `pnl`."""

    symbol: str
    qty: Decimal  # signed: > 0 long, < 0 short
    entry_ts: datetime
    entry_price: Decimal
    exit_ts: datetime
    exit_price: Decimal
    fees: Decimal
    pnl: Decimal
    entry_bar: int = -1
    exit_bar: int = -1
    strategy: str = ""
    exit_reason: str = "signal"
    """What closed it: "signal" (the strategy's own order), "stop_loss", "take_profit",
    "trailing_stop" (a protective order), "operator" (a close from the control API);
    "end_of_data" is left to a caller that closes what a run leaves open (the engine keeps it
    open, marked to market)."""
    tag: str = ""
    """The tag of the order that opened it."""

    @property
    def return_pct(self) -> Decimal:
        """Net return relative to the entry notional."""
        return self.pnl / (abs(self.qty) * self.entry_price)

    @property
    def is_long(self) -> bool:
        """True for a long round trip."""
        return self.qty > 0

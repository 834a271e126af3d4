"""The profit of a booked account, exactly: equity, closed and open PnL, win rate, drawdown and
profit per day, from its ledger entries and its positions marked at a last price.

The arithmetic is the settlement's (`sigma.execution.settlement`): cash moves by each fill's
notional and fee, realised PnL is gross of fees. So, for an account opened with capital C:

* equity = cash + position value, cash = C + the cash the fills moved, position value =
  qty x last price;
* closed PnL = realised PnL - every fee paid (the open part's entry fees are spent already);
* open PnL = qty x (last price - average entry price);
* total PnL = equity - C = closed + open.

A closed trade is a fill that closed (part of) a position, i.e. realised PnL; it is a win when
what it realised is more than its fee. Drawdown is measured, as freqtrade does, on the curve
of closed profit (C plus the closed PnL after each fill) ending at the current equity.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from itertools import accumulate, chain

_ZERO = Decimal(0)
_HUNDRED = Decimal(100)
PCT_PLACES = Decimal("0.0001")
"""Percentages are rounded to this (a ratio of Decimals has 28 digits otherwise)."""


def pct(part: Decimal, whole: Decimal) -> Decimal | None:
    """`part` as a percentage of `whole`, to `PCT_PLACES` rounded half up (None when `whole`
    is zero)."""
    if whole == 0:
        return None
    return (part / whole * _HUNDRED).quantize(PCT_PLACES, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class Booking:
    """One ledger entry of an account: when, the cash it moved, its fee and the PnL it
    realised (gross of the fee)."""

    ts: datetime
    cash_delta: Decimal
    fee: Decimal = _ZERO
    realized_pnl: Decimal = _ZERO

    @property
    def closes(self) -> bool:
        """True for a fill that closed (part of) a position."""
        return self.realized_pnl != 0

    @property
    def net(self) -> Decimal:
        """What the entry added to the closed PnL."""
        return self.realized_pnl - self.fee


@dataclass(frozen=True, slots=True)
class Mark:
    """A position of `qty` (signed) bought at `avg_price` on average, valued at `price`."""

    symbol: str
    qty: Decimal
    avg_price: Decimal
    price: Decimal

    @property
    def value(self) -> Decimal:
        """Signed market value (a short is worth less than nothing)."""
        return self.qty * self.price

    @property
    def open_pnl(self) -> Decimal:
        """The unrealised gain."""
        return self.qty * (self.price - self.avg_price)


@dataclass(frozen=True, slots=True)
class DayProfit:
    """What one UTC day's fills realised, net of their fees, and the closed PnL up to it."""

    day: date
    realized_pnl: Decimal
    fees: Decimal
    trades: int
    cumulative: Decimal

    @property
    def net(self) -> Decimal:
        """Realised PnL less fees."""
        return self.realized_pnl - self.fees


@dataclass(frozen=True, slots=True)
class Profit:
    """An account's (or a sum of accounts') standing; see the module docstring."""

    starting_capital: Decimal
    cash: Decimal
    position_value: Decimal
    closed_pnl: Decimal
    open_pnl: Decimal
    fees: Decimal
    trades: int
    wins: int
    losses: int
    max_drawdown: Decimal
    max_drawdown_pct: Decimal | None
    daily: tuple[DayProfit, ...] = field(default=())

    @property
    def equity(self) -> Decimal:
        """Cash plus position value."""
        return self.cash + self.position_value

    @property
    def total_pnl(self) -> Decimal:
        """Equity less the starting capital (= closed + open PnL)."""
        return self.equity - self.starting_capital

    @property
    def win_rate_pct(self) -> Decimal | None:
        """Share of closed trades that won, in percent (None before the first)."""
        return pct(Decimal(self.wins), Decimal(self.trades))


def _daily(entries: Sequence[Booking]) -> tuple[DayProfit, ...]:
    days: dict[date, tuple[Decimal, Decimal, int]] = {}
    for e in entries:
        realized, fees, trades = days.get(e.ts.date(), (_ZERO, _ZERO, 0))
        days[e.ts.date()] = (realized + e.realized_pnl, fees + e.fee, trades + e.closes)
    out = []
    cumulative = _ZERO
    for day in sorted(days):
        realized, fees, trades = days[day]
        cumulative += realized - fees
        out.append(DayProfit(day, realized, fees, trades, cumulative))
    return tuple(out)


def _drawdown(curve: Iterable[Decimal]) -> tuple[Decimal, Decimal | None]:
    """The deepest fall of `curve` below a previous peak: in money, and (its own deepest) in
    percent of that peak (None while no peak was above zero)."""
    peak: Decimal | None = None
    worst = _ZERO
    worst_pct: Decimal | None = None
    for value in curve:
        peak = value if peak is None else max(peak, value)
        worst = max(worst, peak - value)
        fall = pct(peak - value, peak) if peak > 0 else None
        if fall is not None and (worst_pct is None or fall > worst_pct):
            worst_pct = fall
    return worst, worst_pct


def profit(starting_capital: Decimal, entries: Sequence[Booking], marks: Sequence[Mark]) -> Profit:
    """The standing of an account (or of several: pass their summed capital, every entry
    and every mark) from its ledger `entries` in time order and its positions' `marks`."""
    closing = [e for e in entries if e.closes]
    position_value = sum((m.value for m in marks), _ZERO)
    open_pnl = sum((m.open_pnl for m in marks), _ZERO)
    cash = starting_capital + sum((e.cash_delta for e in entries), _ZERO)
    closed_curve = accumulate((e.net for e in entries), initial=starting_capital)
    max_dd, max_dd_pct = _drawdown(chain(closed_curve, [cash + position_value]))
    return Profit(
        starting_capital=starting_capital,
        cash=cash,
        position_value=position_value,
        closed_pnl=sum((e.net for e in entries), _ZERO),
        open_pnl=open_pnl,
        fees=sum((e.fee for e in entries), _ZERO),
        trades=len(closing),
        wins=sum(1 for e in closing if e.net > 0),
        losses=sum(1 for e in closing if e.net < 0),
        max_drawdown=max_dd,
        max_drawdown_pct=max_dd_pct,
        daily=_daily(entries),
    )

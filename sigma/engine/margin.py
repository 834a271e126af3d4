"""Margin, leverage and liquidation: what an account may borrow, and when it is closed out.

An account is one of three kinds (`AccountType`):

* ``spot``: no borrowing. A buy must be paid from cash; a sell may only reduce a holding, never
  open a short. An order that would borrow is reduced to what the account can pay (refused
  when that is nothing), with its reason counted and logged once per kind.
* ``margin`` (the default, with leverage 1): shorts and leverage up to `leverage` times the
  equity. An order opening exposure beyond the buying power (``leverage · equity − exposure``,
  commission included) is reduced the same way.
* ``futures``: as margin (perpetual futures usually trade with leverage above 1).

Whatever the kind, the account is liquidated at a bar's close when its equity is at or below
zero, or below the maintenance margin (``maintenance`` × gross exposure): every position is
closed at that close (with commission, no slippage: backtesting.py's rule), a deficit left
after the close is written off (cash set to 0, the loss a venue's insurance fund takes), and
the run stops. With margin and futures accounts, a ``funding_rate`` column in the bars charges
``qty · close · rate`` at each bar's close where it is set (a long pays a positive rate, a
short receives it).

`MarginModel` holds the rules; `MarginGuard` applies them to one engine's account and keeps
what happened (refused orders, funding paid, the liquidation) for the run's summary.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from sigma.domain import Order
from sigma.engine.fill_model import FillModel
from sigma.engine.portfolio import Portfolio

log = logging.getLogger(__name__)

_ZERO = Decimal(0)
_ONE = Decimal(1)
MAX_LEVERAGE = Decimal(125)
FUNDING_COLUMN = "funding_rate"
"""The bar column whose rate is charged on open positions (margin and futures accounts)."""

NEVER = sys.maxsize
"""A bar index no run reaches: no margin check is due."""

# The look-ahead for the next close that could breach the margin skips blocks of this many
# bars by their low and high, up to _MAX_BLOCKS blocks at once (fewer right after a change).
_BLOCK = 64
_MAX_BLOCKS = 64
# The float threshold is loosened by this much so that rounding never skips a bar the exact
# Decimal check would liquidate on; the exact check decides.
_SLACK = 1e-9


class AccountType(StrEnum):
    """What an account may borrow."""

    SPOT = "spot"
    MARGIN = "margin"
    FUTURES = "futures"


class MarginModelError(ValueError):
    """A margin setting out of range; `field` names it, `reason` says why."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field} {reason}")


@dataclass(frozen=True, slots=True)
class MarginModel:
    """The account's borrowing rules: its kind, its leverage (1 to 125; spot: 1) and its
    maintenance margin rate (a fraction of gross exposure, 0 <= rate < 1 / leverage)."""

    account: AccountType = AccountType.MARGIN
    leverage: Decimal = _ONE
    maintenance: Decimal = _ZERO
    # The rate as a float, for the per-fill look-ahead (converted once).
    _maintenance: float = field(init=False, repr=False, compare=False, default=0.0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_maintenance", float(self.maintenance))
        if not _ONE <= self.leverage <= MAX_LEVERAGE:
            raise MarginModelError(
                "leverage", f"must be in [1, {MAX_LEVERAGE}], got {self.leverage}"
            )
        if self.account is AccountType.SPOT and self.leverage != _ONE:
            raise MarginModelError("leverage", f"must be 1 on a spot account, got {self.leverage}")
        if not _ZERO <= self.maintenance < _ONE / self.leverage:
            raise MarginModelError(
                "maintenance",
                f"must be in [0, 1/leverage = {_ONE / self.leverage:.4g}), got {self.maintenance}",
            )

    @property
    def can_short(self) -> bool:
        """Whether the account may sell what it does not hold."""
        return self.account is not AccountType.SPOT

    @property
    def label(self) -> str:
        """``margin x1``, ``futures x5 mm 0.5%``, ``spot``: for summaries and reports."""
        if self.account is AccountType.SPOT:
            return "spot"
        text = f"{self.account.value} x{self.leverage.normalize():f}"
        if self.maintenance:
            text += f" mm {(self.maintenance * 100).normalize():f}%"
        return text

    def buying_power(self, account: Portfolio, prices: dict[str, Decimal]) -> Decimal:
        """What new exposure may still be opened: ``leverage · equity − gross exposure``."""
        return self.leverage * account.equity(prices) - account.gross_exposure(prices)

    def breach(self, equity: Decimal, exposure: Decimal) -> str | None:
        """Why an account with `equity` and gross `exposure` must be liquidated, or None."""
        if equity <= 0:
            return f"equity {equity:.2f} at or below zero"
        required = self.maintenance * exposure
        if equity < required:
            return (
                f"equity {equity:.2f} under the maintenance margin {required:.2f} "
                f"({(self.maintenance * 100).normalize():f}% of exposure {exposure:.2f})"
            )
        return None

    def liquidation_price(self, cash: float, qty: float) -> float | None:
        """The close at or beyond which a single position of `qty` with `cash` breaches:
        a long at or below it, a short at or above it; None when no positive price does."""
        if qty > 0:  # cash + q·p <= m·q·p
            price = -cash / (qty * (1.0 - self._maintenance))
        elif qty < 0:  # cash − Q·p <= m·Q·p
            price = cash / (-qty * (1.0 + self._maintenance))
        else:
            return None
        return price if price > 0 else (None if qty > 0 else 0.0)


@dataclass(frozen=True, slots=True)
class Liquidation:
    """When and why an account was liquidated: the bar, its time and close (the price every
    position was closed at), and the deficit written off after the close."""

    bar: int
    ts: datetime
    reason: str
    price: Decimal
    shortfall: Decimal

    def summary(self) -> dict[str, Any]:
        """The liquidation as summary fields."""
        return {
            "liquidation_reason": self.reason,
            "liquidation_bar": self.bar,
            "liquidation_ts": self.ts.isoformat(),
            "liquidation_price": self.price,
            "liquidation_shortfall": self.shortfall,
        }


class MarginGuard:
    """Applies a `MarginModel` to one account: caps orders to what it may borrow, charges
    funding, says when it must be liquidated, and keeps the record for the summary."""

    def __init__(self, model: MarginModel, label: str) -> None:
        self.model = model
        self.can_short = model.can_short
        self.label = label
        """Who the account belongs to, in log lines (``sma_cross BTC``)."""
        self.refused = 0
        """Orders refused because they needed more than the account may borrow."""
        self.reduced = 0
        """Orders cut down to what the account may borrow."""
        self.funding_paid = _ZERO
        """Funding charged (negative: received)."""
        self.liquidation: Liquidation | None = None
        self._funding: npt.NDArray[np.float64] | None = None
        self.funded = False
        """Whether funding is charged (`use_funding` was given rates)."""
        self._funding_bars: npt.NDArray[np.int64] | None = None
        self._logged: set[str] = set()
        self._close: npt.NDArray[np.float64] | None = None
        self._block_lo: list[float] | None = None
        self._block_hi: list[float] | None = None
        self._blocks = 1
        self._searched = -1  # where the last look ended without finding a breach

    # --- orders ----------------------------------------------------------------------------
    def cap(
        self,
        order: Order,
        qty: Decimal,
        price: Decimal,
        account: Portfolio,
        prices: dict[str, Decimal],
        fill_model: FillModel,
    ) -> Decimal:
        """The part of `qty` (of `order`, filling at `price`) the account may trade: all of
        what reduces a position, and of what opens one only what the account can carry."""
        held = account.qty(order.symbol)
        sign = order.side.sign
        reducing = min(qty, abs(held)) if held * sign < 0 else _ZERO
        opening = qty - reducing
        if opening <= 0:
            return qty
        if not self.model.can_short and sign < 0:
            allowed, kind = _ZERO, "spot accounts do not sell short"
        else:
            # Exposure left once the reducing part has filled, against the buying power.
            budget = self.model.buying_power(account, prices) + reducing * price
            allowed = fill_model.affordable_qty(budget, price)
            if allowed >= opening:
                return qty
            kind = (
                "spot accounts do not borrow"
                if not self.model.can_short
                else f"over the buying power at leverage {self.model.leverage.normalize():f}"
            )
        if allowed > 0:
            self.reduced += 1
        else:
            self.refused += 1
        self._say_once(
            kind,
            f"{order.side.value} {opening} {order.symbol} cut to {allowed} ({kind}); "
            "further orders cut for this reason are counted in the summary",
        )
        return reducing + allowed

    # --- funding ---------------------------------------------------------------------------
    def use_funding(self, rates: npt.NDArray[np.float64]) -> None:
        """Charge `rates` (one per bar, NaN or 0 where none) on open positions; a spot account
        holds no perpetual contracts and ignores them."""
        if self.model.account is AccountType.SPOT:
            return
        rates = np.asarray(rates, dtype=np.float64)
        self._funding = rates
        self.funded = True
        self._funding_bars = np.flatnonzero(np.nan_to_num(rates) != 0).astype(np.int64)

    def funding_rate(self, i: int) -> Decimal | None:
        """The funding rate of bar `i`, or None when none is charged there."""
        if self._funding is None or i >= len(self._funding):
            return None
        rate = float(self._funding[i])
        if rate != rate or rate == 0:  # NaN or zero
            return None
        return Decimal(repr(rate))

    def fund(self, account: Portfolio, symbol: str, price: Decimal, rate: Decimal) -> Decimal:
        """Charge one funding payment on the position in `symbol` marked at `price`; returns
        the payment (negative when the account is paid)."""
        payment = account.qty(symbol) * price * rate
        account.cash -= payment
        self.funding_paid += payment
        return payment

    # --- liquidation -----------------------------------------------------------------------
    def threshold(self, cash: Decimal, qty: Decimal) -> float | None:
        """The close beyond which the account (one position of `qty`, `cash`) may breach,
        loosened so that float rounding never hides a breach; None when no price does."""
        if qty > _ZERO and cash >= _ZERO:  # a paid-for long: no positive price breaches
            return None
        price = self.model.liquidation_price(float(cash), float(qty))
        if price is None:
            return None
        return price * (1 + _SLACK) if qty > _ZERO else price * (1 - _SLACK)

    @staticmethod
    def crossed(threshold: float, qty: Decimal, close: float) -> bool:
        """Whether `close` is at or beyond `threshold` for a position of `qty`: the exact
        check (`MarginModel.breach`) must then decide."""
        return close <= threshold if qty > _ZERO else close >= threshold

    def freeze(self, close: npt.NDArray[np.float64]) -> None:
        """Take the closes of a whole history (a backtest: they will not change), so that
        `next_due` can skip ahead by blocks of bars instead of looking at every bar."""
        self._close = close
        pad = (-len(close)) % _BLOCK
        blocks = np.concatenate([close, np.full(pad, np.nan)]).reshape(-1, _BLOCK)
        self._block_lo = np.fmin.reduce(blocks, axis=1).tolist()
        self._block_hi = np.fmax.reduce(blocks, axis=1).tolist()

    def next_due(self, i: int, qty: Decimal, threshold: float | None) -> int:
        """The next bar after `i` whose close the account (holding `qty`, breaching beyond
        `threshold`) must be looked at on: a close that may breach, or a funding charge.

        With `freeze`d closes it skips the blocks of bars whose low (a long) or high (a
        short) stays clear of the threshold, and looks into a block only where it does not;
        the bar after the blocks it looked at is due when it found nothing. Without (live:
        the data ends at `i`), the next bar is due."""
        if not qty:
            return NEVER
        due = NEVER
        if self._funding_bars is not None:
            at = int(np.searchsorted(self._funding_bars, i, side="right"))
            if at < len(self._funding_bars):
                due = int(self._funding_bars[at])
        if threshold is None:
            return due
        close = self._close
        if close is None:
            return min(i + 1, due)
        long = qty > _ZERO
        marks = self._block_lo if long else self._block_hi
        assert marks is not None
        end = min(due, len(close))
        j = i + 1
        # A look that goes on where the last one ended goes twice as far; a new account state
        # starts at one block, since most positions change within a few bars.
        self._blocks = min(2 * self._blocks, _MAX_BLOCKS) if j == self._searched else 1
        for _ in range(self._blocks):
            if j >= end:
                return end
            block = j // _BLOCK
            stop = min((block + 1) * _BLOCK, end)
            if (marks[block] <= threshold) if long else (marks[block] >= threshold):
                window = close[j:stop]
                hits = window <= threshold if long else window >= threshold
                first = int(hits.argmax())
                if hits[first]:
                    return j + first
            j = stop
        self._searched = j
        return j

    def liquidated(
        self, bar: int, ts: datetime, reason: str, price: Decimal, shortfall: Decimal
    ) -> None:
        """Record the liquidation (said once, as an error: it needs a trader's eyes)."""
        self.liquidation = Liquidation(bar, ts, reason, price, shortfall)
        log.error(
            "%s: LIQUIDATED at bar %d (%s), price %s: %s; positions closed, trading stopped",
            self.label,
            bar,
            ts.isoformat(),
            price,
            reason,
        )

    # --- reporting -------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """The account's margin figures for a run's summary."""
        out: dict[str, Any] = {
            "account": self.model.label,
            "liquidated": self.liquidation is not None,
        }
        if self.liquidation is not None:
            out.update(self.liquidation.summary())
        out["orders_refused_margin"] = self.refused
        out["orders_reduced_margin"] = self.reduced
        out["funding_paid"] = self.funding_paid
        return out

    def _say_once(self, kind: str, message: str) -> None:
        if kind not in self._logged:
            self._logged.add(kind)
            log.warning("%s: %s", self.label, message)


__all__ = [
    "FUNDING_COLUMN",
    "MAX_LEVERAGE",
    "NEVER",
    "AccountType",
    "Liquidation",
    "MarginGuard",
    "MarginModel",
    "MarginModelError",
]

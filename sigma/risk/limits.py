"""RiskManager: pre-trade limits, the daily-loss and drawdown circuit breakers, the kill switch.

Every order a strategy wants passes `check` before it leaves the process. Limits are in the
account currency. Orders that only shrink a position stay allowed when a loss breaker has
tripped or the symbol's price is not believed (a trader must be able to get flat); the kill
switch stops everything.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal

from sigma.domain import Order

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """Limits per account (one strategy on one symbol). None disables a limit.

    `max_daily_loss` is a currency amount lost since the day's first check; `max_drawdown`
    a fraction (0.2 = 20 %) below the highest equity seen.
    """

    max_order_notional: Decimal | None = None
    max_position_notional: Decimal | None = None
    max_open_orders: int | None = None
    max_daily_loss: Decimal | None = None
    max_drawdown: Decimal | None = None

    def __post_init__(self) -> None:
        for name in ("max_order_notional", "max_position_notional", "max_daily_loss"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        if self.max_open_orders is not None and self.max_open_orders < 1:
            raise ValueError(f"max_open_orders must be >= 1, got {self.max_open_orders}")
        if self.max_drawdown is not None and not _ZERO < self.max_drawdown < 1:
            raise ValueError(f"max_drawdown must be in (0, 1), got {self.max_drawdown}")


@dataclass(frozen=True, slots=True)
class AccountState:
    """What the risk check needs to know about the account placing the order."""

    key: str
    equity: Decimal
    position_qty: Decimal
    open_orders: int
    now: datetime


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer: accepted, or rejected with the limit that stopped it."""

    accepted: bool
    reason: str = ""
    rule: str = ""


ACCEPT = Decision(True)


@dataclass(slots=True)
class BreakerMarks:
    """The breakers' memory of one account: the day and the equity it opened with, the
    highest equity seen, and why a breaker tripped ("" while armed)."""

    day: date
    day_start: Decimal
    peak: Decimal
    tripped: str = ""


@dataclass
class RiskManager:
    """Checks orders against `limits`. `kill_switch` answers whether trading is halted (the
    composition root passes a cached reader of the shared control flag). `on_change` hears
    each account's marks when they change (None when `reset` forgets them), so they can be
    kept for a restart; it gets a copy and must not block (it runs in the risk check).
    `entry_pause` says why no new position may be opened on a symbol ("" when one may): the
    price feed's health (`sigma.risk.feed_health.FeedHealth.entry_pause`)."""

    limits: RiskLimits
    kill_switch: Callable[[], bool] = lambda: False
    on_change: Callable[[str, BreakerMarks | None], None] = lambda key, marks: None
    entry_pause: Callable[[str], str] = lambda symbol: ""
    _marks: dict[str, BreakerMarks] = field(default_factory=dict)

    def restore(self, marks: Mapping[str, BreakerMarks]) -> None:
        """Continue from marks kept by an earlier run (a tripped breaker stays tripped)."""
        self._marks.update({key: replace(m) for key, m in marks.items()})

    def check(self, order: Order, price: Decimal, account: AccountState) -> Decision:
        """Accept or reject `order` at `price` (the decision price) for `account`."""
        if self.kill_switch():
            return Decision(False, "kill switch is on: trading halted", "kill_switch")
        qty = order.qty if order.qty is not None else _ZERO
        signed = qty * order.side.sign
        reducing = account.position_qty != 0 and abs(account.position_qty + signed) < abs(
            account.position_qty
        )
        breaker = self._breaker(account)
        if breaker and not reducing:
            return Decision(False, breaker, "circuit_breaker")
        if not reducing and (paused := self.entry_pause(order.symbol)):
            return Decision(False, paused, "price_feed")
        lim = self.limits
        notional = qty * price
        if lim.max_order_notional is not None and notional > lim.max_order_notional:
            return Decision(
                False,
                f"order notional {notional:.2f} exceeds max_order_notional "
                f"{lim.max_order_notional}",
                "max_order_notional",
            )
        after = abs(account.position_qty + signed) * price
        if (
            lim.max_position_notional is not None
            and not reducing
            and after > lim.max_position_notional
        ):
            return Decision(
                False,
                f"position notional after fill {after:.2f} exceeds max_position_notional "
                f"{lim.max_position_notional}",
                "max_position_notional",
            )
        if lim.max_open_orders is not None and account.open_orders >= lim.max_open_orders:
            return Decision(
                False,
                f"{account.open_orders} open orders reach max_open_orders {lim.max_open_orders}",
                "max_open_orders",
            )
        return ACCEPT

    def reset(self, key: str) -> None:
        """Re-arm a tripped breaker (an operator's decision)."""
        if self._marks.pop(key, None) is not None:
            self.on_change(key, None)

    def _breaker(self, account: AccountState) -> str:
        """Update the day's and the peak's marks; a trip lasts until `reset` or the next day
        (daily loss) or `reset` (drawdown)."""
        marks = self._marks.get(account.key)
        before = replace(marks) if marks is not None else None
        tripped = self._update(account, marks)
        marks = self._marks[account.key]
        if marks != before:
            self.on_change(account.key, replace(marks))
        return tripped

    def _update(self, account: AccountState, marks: BreakerMarks | None) -> str:
        today = account.now.date()
        if marks is None:
            marks = self._marks[account.key] = BreakerMarks(today, account.equity, account.equity)
        if marks.day != today:
            marks.day, marks.day_start = today, account.equity
            if marks.tripped.startswith("daily"):
                marks.tripped = ""
        marks.peak = max(marks.peak, account.equity)
        if marks.tripped:
            return marks.tripped
        lim = self.limits
        loss = marks.day_start - account.equity
        if lim.max_daily_loss is not None and loss >= lim.max_daily_loss:
            marks.tripped = (
                f"daily loss {loss:.2f} reached max_daily_loss {lim.max_daily_loss}; "
                "only reducing orders until tomorrow"
            )
        elif lim.max_drawdown is not None and marks.peak > 0:
            drawdown = (marks.peak - account.equity) / marks.peak
            if drawdown >= lim.max_drawdown:
                marks.tripped = (
                    f"drawdown {drawdown:.2%} reached max_drawdown {lim.max_drawdown:.2%}; "
                    "only reducing orders until reset"
                )
        return marks.tripped

"""Protective orders (stop-loss, take-profit, trailing stop) and one-cancels-the-other groups.

The engine holds protective orders itself, in every mode: a backtest and a paper run fill them
against bars, the live engine sends an ordinary reduce-only order when one is triggered. The
rules below are the same everywhere; only what "the price reached the level" is read from
differs (a bar's range in a backtest or simulation, each trade price live).

Arming
    A protective order attached to an entry (``buy(sl=..., tp=..., trailing=...)``) waits for
    the entry and is armed by its fill, for the quantity filled (cumulated over partial
    fills); it is cancelled with the entry (cancelled, rejected, expired). One without a
    parent (``trade.sl = price``) is armed at once for the whole position. An armed order is
    cancelled as soon as the position it protects is gone: flat, or flipped the other way.
    Protective orders of one entry form an OCO group: when one fills, the others are
    cancelled.

Which bars can trigger it (backtest and simulation)
    An entry filled at a bar's open (a market order, or a limit or stop the open went
    through) arms its protection for that same bar: the whole range comes after the fill
    (backtesting.py arms that of a limit or stop entry from the next bar even then). An
    entry filled inside a bar (a limit or stop touched by the range) arms it from the next
    bar, because the part of the range after the fill is unknown (backtesting.py defers it
    too), with backtesting.py's one exception: a stop entry whose bar reaches a take-profit
    and none of its stops takes the take-profit on that bar (the take-profit lies beyond the
    entry's stop, so the price met the stop first). Protection placed by the strategy at a
    bar's close counts from the next bar.

Triggering and fill price, per bar, after the strategy's own orders of that bar
    1. The open: an order whose level the open already reached fills at the open (a gap is
       filled at the open, never at the level).
    2. Stops (stop-loss, trailing stop) whose level the range reached fill at the level,
       the level nearest the open first (the price meets it first).
    3. Take-profits whose level the range reached fill at the level, nearest first.
    So when one bar reaches both the stop-loss and the take-profit, the stop-loss is assumed
    first (conservative, as backtesting.py), unless the open already reached the
    take-profit. A stop fills as a market order (slippage applies), a take-profit as a limit
    (no slippage). Long: the stop triggers when low <= stop, the take-profit when
    high >= limit; short mirrors it.

Trailing stop
    The level trails the best price reached (the highest high of a long, the lowest low of a
    short) by `trail` (price units) or `trail_pct` (a fraction of that price), and only ever
    tightens. It starts from the entry's fill price (from the latest close when set on a
    position), and is moved at the end of each bar with that bar's extreme, after the bar was
    checked: a bar's own high never triggers a stop it raised (its order within the bar is
    unknown).

Live and paper through the live engine
    Each trade price is checked against the armed orders: a stop triggers at a price at or
    through its level, a take-profit at or beyond its level. The trigger sends one reduce-only
    market order (its own client order id) through the normal path (risk check, queue, venue);
    the protective order is not checked again while that order is out, so a trigger seen on
    the next tick or bar does not send it twice. If the order is refused, the protection is
    armed again from the next bar. A trailing stop moves at the end of each bar by the best
    price traded since it was armed. A take-profit is sent as a market order so it never rests
    unfilled on the venue: it fills at the venue's price (with slippage), where the backtest
    fills it as a limit.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from sigma.domain import Order, OrderStatus, OrderType, Side
from sigma.domain.orders import TRAILING_STOP

_SELL = Side.SELL
_STOP = OrderType.STOP
_NEW = OrderStatus.NEW
_ONE = Decimal(1)


@dataclass(slots=True)
class Guard:
    """The engine's state of one protective order."""

    order: Order
    armed: bool = False
    active_from: int = 0
    """First bar whose whole range counts (triggers in a backtest, the trailing extreme)."""
    extreme: Decimal | None = None
    """Best price reached since armed (trailing stops)."""
    seen: Decimal | None = None
    """Live: best trade price seen in the forming bar, folded into `extreme` at its end."""
    child: str = ""
    """Live: client order id of the order its trigger sent, while that order is out."""
    retry_from: int = -1
    """Live: after a refused trigger order, the first bar it may trigger again."""

    @property
    def is_stop(self) -> bool:
        """A stop-loss or trailing stop (else a take-profit)."""
        return self.order.type is _STOP

    @property
    def level(self) -> Decimal:
        """The price that triggers it."""
        order = self.order
        level = order.stop_price if order.type is _STOP else order.limit_price
        assert level is not None
        return level

    def reached(self, price: Decimal) -> bool:
        """True when a trade at `price` triggers it."""
        sells = self.order.side is _SELL
        if self.order.type is _STOP:
            return price <= self.level if sells else price >= self.level
        return price >= self.level if sells else price <= self.level

    def trail_to(self, best: Decimal) -> None:
        """Fold the best price `best` into a trailing stop's extreme and tighten its level."""
        order = self.order
        long = order.side is _SELL
        if self.extreme is None:
            self.extreme = best
        else:
            self.extreme = max(self.extreme, best) if long else min(self.extreme, best)
        extreme = self.extreme
        if order.trail is not None:
            level = extreme - order.trail if long else extreme + order.trail
        else:
            assert order.trail_pct is not None
            level = extreme * (_ONE - order.trail_pct if long else _ONE + order.trail_pct)
        stop = order.stop_price
        if stop is None or (level > stop if long else level < stop):
            order.stop_price = level


def protects(order: Order, held: Decimal) -> bool:
    """True when `order` (reduce-only) has something to reduce in the signed holding `held`."""
    return held * order.side.sign < 0


class ProtectiveBook:
    """The protective orders of one engine (one symbol) and its OCO groups."""

    def __init__(self) -> None:
        self.armed: list[Guard] = []
        """Armed protective orders, in the order they were armed. Mutated in place, never
        rebound: the engine's bar loop holds it."""
        self.waiting: dict[str, list[Guard]] = {}
        """Protective orders waiting for their entry to fill, by the entry's client order id."""
        self.groups: dict[str, list[Order]] = {}
        """OCO groups by name: their open orders (protective or not)."""
        self._guards: dict[str, Guard] = {}

    # --- registering --------------------------------------------------------------------------
    def add(self, order: Order) -> Guard:
        """Hold protective `order` (not armed yet)."""
        guard = Guard(order)
        self._guards[order.client_order_id] = guard
        if order.oco:
            self.join(order)
        return guard

    def join(self, order: Order) -> None:
        """Put `order` in its OCO group."""
        self.groups.setdefault(order.oco, []).append(order)

    def wait(self, guard: Guard) -> None:
        """`guard` waits for its parent entry to fill."""
        self.waiting.setdefault(guard.order.parent_id, []).append(guard)

    def arm(self, guard: Guard, active_from: int, price: Decimal, qty: Decimal | None) -> None:
        """Arm `guard` from bar `active_from`: `qty` more units to protect (None: the whole
        position), `price` the reference a trailing stop starts from."""
        order = guard.order
        if qty is not None:
            order.qty = qty if order.qty is None else order.qty + qty
        if guard.armed:
            return
        guard.armed = True
        guard.active_from = active_from
        if order.reason == TRAILING_STOP:
            order.stop_price = None
            guard.trail_to(price)
        self.armed.append(guard)

    def parent_filled(
        self, parent: str, qty: Decimal, price: Decimal, active_from: int, *, whole: bool = True
    ) -> list[Guard]:
        """Arm the protection waiting for entry `parent`, which filled `qty` at `price` (more
        fills may follow when not `whole`: the protection then keeps waiting for them, armed
        for what filled so far); the guards armed."""
        waiting = self.waiting.pop(parent, None) if whole else self.waiting.get(parent)
        if not waiting:
            return []
        for guard in waiting:
            if guard.order.status is _NEW:
                self.arm(guard, active_from, price, qty)
        return waiting

    # --- leaving ------------------------------------------------------------------------------
    def cancel(self, order: Order) -> bool:
        """Cancel protective `order`; False when it is not open here."""
        guard = self._guards.get(order.client_order_id)
        if guard is None or not order.is_open:
            return False
        order.status = OrderStatus.CANCELLED
        self._forget(guard)
        return True

    def drop(self, order: Order) -> None:
        """Forget protective `order`, which ended otherwise (rejected when it came to fill)."""
        guard = self._guards.get(order.client_order_id)
        if guard is not None:
            self._forget(guard)

    def filled(self, order: Order) -> list[Order]:
        """Protective `order` filled: forget it; returns the other open orders of its OCO
        group, which the caller cancels."""
        guard = self._guards.get(order.client_order_id)
        if guard is not None:
            self._forget(guard)
        return self.siblings(order)

    def siblings(self, order: Order) -> list[Order]:
        """The open orders of `order`'s OCO group but itself (the group is dissolved)."""
        if not order.oco:
            return []
        group = self.groups.pop(order.oco, [])
        return [o for o in group if o is not order and o.is_open]

    def leave_group(self, order: Order) -> None:
        """`order` ended without filling: it leaves its OCO group."""
        group = self.groups.get(order.oco)
        if group is None:
            return
        if order in group:
            group.remove(order)
        if not any(o.is_open for o in group):
            del self.groups[order.oco]

    def parent_dead(self, parent: str) -> list[Order]:
        """Entry `parent` ended without filling (more): cancel what still waits for it."""
        cancelled = []
        for guard in self.waiting.pop(parent, []):
            if guard.order.is_open and not guard.armed:
                guard.order.status = OrderStatus.CANCELLED
                self._forget(guard)
                cancelled.append(guard.order)
        return cancelled

    def stale(self, held: Decimal) -> list[Order]:
        """Cancel the armed protection that has nothing left to protect in the signed holding
        `held` (the position went flat, or flipped); the orders cancelled."""
        gone = [g for g in self.armed if not protects(g.order, held)]
        for guard in gone:
            guard.order.status = OrderStatus.CANCELLED
            self._forget(guard)
        return [g.order for g in gone]

    def _forget(self, guard: Guard) -> None:
        order = guard.order
        self._guards.pop(order.client_order_id, None)
        if guard.armed:
            self.armed.remove(guard)
        waiting = self.waiting.get(order.parent_id)
        if waiting is not None and guard in waiting:
            waiting.remove(guard)
            if not waiting:
                del self.waiting[order.parent_id]
        if order.oco and order.status is not OrderStatus.FILLED:
            self.leave_group(order)

    # --- reading ------------------------------------------------------------------------------
    def orders(self) -> list[Order]:
        """Every open protective order: armed first, then those waiting for their entry."""
        waiting = [g.order for gs in self.waiting.values() for g in gs if not g.armed]
        return [g.order for g in self.armed] + waiting

    def shift(self, count: int) -> None:
        """The engine forgot its first `count` bars: bar numbers move down by `count`."""
        for guard in self.guards():
            guard.active_from -= count
            if guard.retry_from >= 0:
                guard.retry_from -= count

    def guards(self) -> list[Guard]:
        """Every open protective order's state: armed first, then those waiting."""
        waiting = [g for gs in self.waiting.values() for g in gs if not g.armed]
        return self.armed + waiting

    def restore(self, guard: Guard) -> None:
        """Hold `guard` as stored (a restart): armed, or waiting for its entry."""
        self._guards[guard.order.client_order_id] = guard
        if guard.order.oco:
            self.join(guard.order)
        if guard.armed:
            self.armed.append(guard)
        else:
            self.wait(guard)

    # --- bars (backtest and simulation) -------------------------------------------------------
    def bar_triggers(
        self, i: int, open_: Decimal, high: Decimal, low: Decimal
    ) -> Iterator[tuple[Guard, Decimal]]:
        """The armed orders bar `i` triggers, each with its price before slippage, in the
        order they fill: the open first, then stops, then take-profits, each kind nearest
        level first (the price path meets it first). Lazy: an order cancelled by an earlier
        one's fill (OCO, or the position gone) is skipped."""
        active = [g for g in self.armed if g.active_from <= i]
        if not active:
            return
        for stops in (True, False):
            for guard in active:
                if guard.is_stop is stops and guard.order.is_open and guard.reached(open_):
                    yield guard, open_
        for stops in (True, False):
            kind = [g for g in active if g.is_stop is stops]
            kind.sort(key=lambda g: abs(g.level - open_))
            for guard in kind:
                if not guard.order.is_open:
                    continue
                if guard.reached(low if (guard.order.side is _SELL) is stops else high):
                    yield guard, guard.level

    def end_bar(self, i: int, high: Decimal, low: Decimal) -> None:
        """Bar `i` is over: trailing stops active on it move by its extreme."""
        for guard in self.armed:
            if guard.order.reason == TRAILING_STOP and guard.active_from <= i:
                guard.trail_to(high if guard.order.side is _SELL else low)

    # --- prices (live) ------------------------------------------------------------------------
    def price_triggers(self, price: Decimal, bar: int) -> list[Guard]:
        """The armed orders a trade at `price` triggers (stops first), skipping those whose
        trigger order is out or that were refused on bar `bar`; notes the price for trailing
        stops."""
        hit = []
        for guard in self.armed:
            order = guard.order
            if order.reason == TRAILING_STOP:
                seen = guard.seen
                if seen is None or (price > seen if order.side is _SELL else price < seen):
                    guard.seen = price
            if guard.child or guard.retry_from > bar or not guard.reached(price):
                continue
            hit.append(guard)
        hit.sort(key=lambda g: not g.is_stop)
        return hit

    def end_live_bar(self) -> None:
        """A live bar closed: trailing stops move by the best price traded since the last one."""
        for guard in self.armed:
            if guard.seen is not None:
                guard.trail_to(guard.seen)
                guard.seen = None

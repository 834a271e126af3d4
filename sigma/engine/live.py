"""DispatchEngine: the engine of the live services (live and paper-broker mode): orders are
dispatched, fills come back later.

The strategy, its data views and its account API are the ones the backtest uses. The
difference is execution: instead of matching orders against the next bar, the live engine
sizes each order at the decision price (`ref_price`, the first tick of the next bar, which is
the price a backtest fills at), hands it to `dispatch` (risk check, then the order queue), and
books fills when the worker reports them. Until then the order counts as "in flight": the
strategy sees the account as if in-flight orders had filled at the decision price, so a slow
worker can never make it send the same order twice.

Protective orders (stop-loss, take-profit, trailing stop) stay in this process: `on_price`
checks every trade price against them and a trigger sends one reduce-only market order (see
sigma/engine/protective.py for the rules, which are the backtest's).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

import numpy as np
import pandas as pd

from sigma.domain import (
    Bar,
    Fill,
    OpenLot,
    Order,
    OrderStatus,
    OrderType,
    Position,
    Side,
    TimeInForce,
    Trade,
)
from sigma.domain.orders import LIQUIDATION, SIGNAL, FillIdentity
from sigma.engine.engine import Engine, EngineConfig, empty_data
from sigma.engine.portfolio import Portfolio
from sigma.engine.protective import Guard, protects
from sigma.engine.venue_rules import VenueRules
from sigma.strategies.base import Strategy

log = logging.getLogger(__name__)

Dispatch = Callable[[Order, Decimal], None]
CancelRequest = Callable[[Order], None]

# A 24/7 process keeps a bounded window of bars, orders and trades; indicators are
# recomputed over the window, which is far longer than any built-in look-back.
MAX_BARS = 5_000
MAX_RECORDS = 1_000
_SEEN_FILLS = 256  # fill reports remembered for deduplication
_GTC = TimeInForce.GTC
_ENDED = {OrderStatus.CANCELLED.value, OrderStatus.REJECTED.value, "dead_lettered", "failed"}


class DispatchEngine(Engine):
    """Runs one strategy on one symbol with execution outside the process."""

    def __init__(
        self,
        strategy: Strategy,
        symbol: str,
        config: EngineConfig,
        dispatch: Dispatch,
        *,
        cancel: CancelRequest | None = None,
    ) -> None:
        self.dispatch = dispatch
        self.request_cancel = cancel
        """Sends a cancel request for a resting order (None: nothing is sent)."""
        self.resting: dict[str, Order] = {}
        """Limit and stop orders sent and not final: what `cancel_pending` cancels."""
        self._cancelling: set[str] = set()
        self.inflight: dict[str, Fill] = {}
        # The projection is asked for several times per bar; rebuilding it from the booked
        # account costs O(in-flight orders), so it is kept and updated as orders leave and
        # only rebuilt when a fill differs from what was projected or an order fails.
        self._projection: Portfolio | None = None
        self._ref_price: Decimal | None = None
        # Fills already booked, to ignore a repeated report: a set to ask, a queue to forget
        # the oldest. Orders by id: a fill finds its order without scanning the records,
        # which under a backlog of unfilled orders cost O(backlog) per fill.
        self._seen_fills: set[FillIdentity] = set()
        self._seen_order: deque[FillIdentity] = deque()
        self._by_id: dict[str, Order] = {}
        self._children: dict[str, Guard] = {}
        """Orders sent by a protective order's trigger, by client order id."""
        self._ioc: dict[str, int] = {}
        """IOC and FOK orders left resting, with the count of prices seen when sent."""
        self._price_count = 0
        super().__init__(strategy, symbol, empty_data(), config)
        instrument = config.instruments.get(symbol)
        if instrument is not None:
            # A venue sizes on its lot step (0.00001 BTC), not on the fill model's whole units.
            self.fill_model = replace(config.fill_model, lot_size=instrument.lot_step)
        self.rules = VenueRules(instrument, config.can_short, f"{strategy.name} {symbol}")
        self._margin_due = 0  # see _check_margin

    # --- account as the strategy sees it ---------------------------------------------------
    def projected(self) -> Portfolio:
        """Booked account plus in-flight orders assumed filled at their decision price."""
        if self._projection is None:
            view = self.portfolio.snapshot()
            for coid, fill in self.inflight.items():
                order = self._by_id.get(coid)
                view.apply(fill, self.data.cursor.i, order.tag if order is not None else "")
            view.trades.clear()  # a what-if: its round trips are not trades
            self._projection = view
        return self._projection

    def position_qty(self, symbol: str) -> Decimal:
        """Signed quantity, counting in-flight orders."""
        return self.projected().qty(symbol)

    def cash(self) -> Decimal:
        """Cash, counting in-flight orders."""
        return self.projected().cash

    def equity(self) -> Decimal:
        """Equity at the latest close, counting in-flight orders."""
        if self.data.cursor.i < 0:
            return self.projected().cash
        return self.projected().equity({self.symbol: self.last_price})

    def open_orders(self, symbol: str) -> list[Order]:
        """Orders of `symbol` that can still fill: resting ones, market ones in flight, then
        the protective ones held here."""
        mine = [o for o in self.resting.values() if o.symbol == symbol]
        for coid in self.inflight:
            order = self._by_id.get(coid)
            if order is not None and order.symbol == symbol:
                mine.append(order)
        return mine + [o for o in self.book.orders() if o.symbol == symbol]

    def open_trades(self, symbol: str) -> list[OpenLot]:
        """The position in `symbol` as a trade, counting in-flight orders."""
        lot = self.projected().open_lot(symbol)
        return [] if lot is None else [lot]

    def closed_trades(self, symbol: str) -> list[Trade]:
        """The round trips booked in `symbol` (the latest `MAX_RECORDS` at least)."""
        return [t for t in self.portfolio.trades if t.symbol == symbol]

    # --- a restart -------------------------------------------------------------------------
    def warm_up(self, history: pd.DataFrame) -> None:
        """Hold the latest `MAX_BARS` bars of `history` (a bar frame, oldest first) as if they
        had been seen live, without acting on them: the strategy's indicators start where an
        uninterrupted run's are, so its first decision is the same."""
        super().warm_up(history.iloc[-MAX_BARS:])

    def resume(self, cash: Decimal, fees_paid: Decimal, held: Position, since: datetime) -> None:
        """Continue from the account as booked (cash, fees, the position open since `since`)
        instead of a fresh one."""
        self.portfolio.restore(cash, fees_paid, held, since)
        self._projection = None

    def adopt(self, orders: Iterable[Order]) -> None:
        """Take over orders an earlier run sent that are not final: a resting one can be
        cancelled, a market one counts as in flight (at the latest close) until its fill or
        failure is reported."""
        for order in orders:
            self.orders.append(order)
            self._by_id[order.client_order_id] = order
            if order.type is not OrderType.MARKET:
                self.resting[order.client_order_id] = order
            elif order.qty is not None and self.data.cursor.i >= 0:
                qty, price = order.qty - order.filled_qty, self.last_price
                self.inflight[order.client_order_id] = Fill(
                    order.client_order_id,
                    order.symbol,
                    order.side,
                    qty,
                    price,
                    self.fill_model.fee(qty, price),
                    order.created_at or self._bar_time(self.data.cursor.i),
                    order.strategy,
                )
        self._projection = None

    def restore_guard(self, guard: Guard) -> None:
        """Take back a protective order an earlier run held (after `adopt`): the order its
        trigger sent stays its own while still out; one that ended while no run was there
        frees it (the booked position tells whether anything is left to protect)."""
        if guard.child and guard.child not in self.inflight and guard.child not in self.resting:
            guard.child = ""
        super().restore_guard(guard)
        self._by_id[guard.order.client_order_id] = guard.order
        if guard.child:
            self._children[guard.child] = guard

    def restore_managed(self, client_order_id: str, bars_left: int | None, oco: str) -> None:
        """Give an adopted resting order back the bars it may still rest and its OCO group."""
        order = self.resting.get(client_order_id)
        if order is None:
            return
        self._managed = True
        if bars_left is not None:
            self._expires[client_order_id] = self.data.cursor.i + bars_left
        if oco:
            order.oco = oco
            self.book.join(order)

    # --- the loop --------------------------------------------------------------------------
    def on_live_bar(self, bar: Bar, ref_price: Decimal) -> None:
        """A bar closed; `ref_price` is the price now (the next bar's first tick). A bar not
        after the latest one held (a feed replaying what the warm-up loaded) is ignored."""
        if len(self.data) and np.datetime64(bar.ts.replace(tzinfo=None), "ns") <= self.data.ts[-1]:
            log.warning("%s %s: ignored the bar of %s", self.strategy.name, self.symbol, bar.ts)
            return
        if len(self.data) >= 2 * MAX_BARS:
            self.drop_oldest(len(self.data) - MAX_BARS)
        self._ref_price = ref_price
        if self.book.armed:
            self.book.end_live_bar()
        try:
            self.on_bar(bar)
        finally:
            self._ref_price = None
        if self._expires:
            self._expire_resting()
        for records in (self.orders, self.fills, self.portfolio.trades):
            if len(records) > 2 * MAX_RECORDS:
                del records[:-MAX_RECORDS]
        if len(self._by_id) > len(self.orders):  # orders were trimmed: so is the index
            self._by_id = {order.client_order_id: order for order in self.orders}

    def place(self, order: Order, ref_price: Decimal) -> None:
        """An order from outside the strategy (an operator's), decided now at `ref_price`:
        sized and dispatched as the strategy's own orders are."""
        self._ref_price = ref_price
        try:
            self.submit(order)
        finally:
            self._ref_price = None

    def submit(self, order: Order) -> None:
        """Size the order at the decision price and hand it to `dispatch` (a protective order
        is held here instead)."""
        order.created_at = self._bar_time(self.data.cursor.i)
        self.orders.append(order)
        self._by_id[order.client_order_id] = order
        if order.reason != SIGNAL and order.is_protective:
            self._hold(order, self.data.cursor.i)
            return
        self._send(order)
        if order.status is OrderStatus.NEW and (
            order.tif is not _GTC or order.bars is not None or order.oco
        ):
            self._managed = True
            coid = order.client_order_id
            if order.oco:
                self.book.join(order)
            if order.type is not OrderType.MARKET:
                if order.bars is not None:
                    self._expires[coid] = self.data.cursor.i + order.bars
                if order.tif is not _GTC:
                    self._ioc[coid] = self._price_count

    def _send(self, order: Order) -> None:
        """Check, size and dispatch `order` (rejected, or cancelled when an IOC order is not
        marketable, without being sent)."""
        account = self.projected()
        if (veto := self._veto(order, account.qty(order.symbol))) is not None:
            log.info("%s %s: entry not sent: %s", self.strategy.name, self.symbol, veto)
            return
        price = self._ref_price if self._ref_price is not None else self.last_price
        if order.tif is not _GTC and order.type is OrderType.LIMIT:
            limit = order.limit_price
            assert limit is not None
            if price > limit if order.side.sign > 0 else price < limit:
                order.status = OrderStatus.CANCELLED  # its one chance, the price now, missed
                self._ended(order)
                return
        # Sized at the price the fill is expected at, as the backtest sizes at its fill price.
        expected = (
            price if order.type is OrderType.LIMIT else self.fill_model.slipped(order.side, price)
        )
        qty = self.rules.size(
            order,
            self._resolve_qty(order, expected, account),
            held=account.qty(order.symbol),
            cash=account.cash,
            price=expected,
            fill_model=self.fill_model,
        )
        if qty <= 0:
            order.status = OrderStatus.REJECTED
            log.info(
                "%s %s: order sized to zero at %s, not sent", self.strategy.name, self.symbol, price
            )
            return
        if (refusal := self.rules.refusal(order, qty, price)) is not None:
            order.status = OrderStatus.REJECTED
            log.warning("%s %s: order not sent: %s", self.strategy.name, self.symbol, refusal)
            return
        order.qty, order.equity_fraction = qty, None
        if order.type is OrderType.MARKET:
            projected = Fill(
                order.client_order_id,
                order.symbol,
                order.side,
                qty,
                expected,
                self.fill_model.fee(qty, expected),
                order.created_at or self._bar_time(self.data.cursor.i),
                order.strategy,
            )
            self.inflight[order.client_order_id] = projected
            if self._projection is not None:
                self._projection.apply(projected, self.data.cursor.i, order.tag)
                self._projection.trades.clear()
        if order.type is not OrderType.MARKET:
            self.resting[order.client_order_id] = order
        self.dispatch(order, price)

    def _hold(self, order: Order, i: int) -> None:
        """Keep protective `order` here: waiting for its entry, or armed on the position."""
        self._managed = True
        guard = self.book.add(order)
        if order.parent_id:
            parent = self._by_id.get(order.parent_id)
            if parent is None or parent.status in (OrderStatus.REJECTED, OrderStatus.CANCELLED):
                self.book.cancel(order)  # the entry was refused, or is no order of ours
                return
            self.book.wait(guard)
            return
        self._arm_on_position(guard, i + 1, self.projected().qty(order.symbol))

    # --- protective orders -----------------------------------------------------------------
    def _protect(self, i: int) -> None:
        """Live, prices trigger protective orders (`on_price`), not the bar's range."""

    def on_price(self, price: Decimal) -> None:
        """A trade price of the symbol (every tick, after the bar it may have closed): send
        the protective orders it triggers, and cancel IOC orders still resting."""
        self._price_count += 1
        if self._ioc:
            self._cancel_unfilled_ioc()
        if not self.book.armed:
            return
        bar = self.data.cursor.i
        for guard in self.book.price_triggers(price, bar):
            order = guard.order
            if order.is_open and protects(order, self.projected().qty(order.symbol)):
                self._trigger(guard, price, bar)

    def _trigger(self, guard: Guard, price: Decimal, bar: int) -> None:
        """Send the reduce-only market order of triggered protective order `guard`."""
        order = guard.order
        child = Order(
            symbol=order.symbol,
            side=order.side,
            qty=order.qty,
            reduce_only=True,
            strategy=order.strategy,
            tag=order.tag,
            reason=order.reason,
            parent_id=order.client_order_id,
        )
        child.created_at = self._bar_time(bar)
        self.orders.append(child)
        self._by_id[child.client_order_id] = child
        self._ref_price = price
        try:
            self._send(child)
        finally:
            self._ref_price = None
        if child.status is not OrderStatus.NEW:
            guard.retry_from = bar + 1
            return
        guard.child = child.client_order_id
        self._children[child.client_order_id] = guard
        log.info(
            "%s %s: %s at %s triggered by %s: %s %s sent",
            self.strategy.name,
            self.symbol,
            order.reason,
            guard.level,
            price,
            child.side.value,
            child.qty,
        )

    def _cancel_unfilled_ioc(self) -> None:
        """Ask to cancel the IOC and FOK orders still resting one price after they were sent:
        their one chance is the price now. A venue told their time in force ends them itself
        (see `sigma.venues.ccxt.profile`); this covers a broker that is not."""
        for coid, sent_at in list(self._ioc.items()):
            if coid not in self.resting:
                del self._ioc[coid]
            elif sent_at < self._price_count - 1:
                del self._ioc[coid]
                self.cancel(coid)

    def _expire_resting(self) -> None:
        """Ask to cancel the resting orders whose last bar has closed."""
        i = self.data.cursor.i
        for coid, last in list(self._expires.items()):
            if coid not in self.resting:
                del self._expires[coid]
            elif last <= i:
                del self._expires[coid]
                self.cancel(coid)

    def cancel_order(self, order: Order) -> bool:
        """Cancel one open order: a protective one here, a resting one at the venue (sent
        as a request); False for one in flight or final."""
        if order.is_protective:
            return self.book.cancel(order)
        return self.cancel(order.client_order_id)

    def cancel_pending(self, symbol: str) -> None:
        """Ask the broker to cancel the resting (limit and stop) orders on `symbol`, as the
        backtest cancels its pending ones; market orders cannot be recalled. An order is
        forgotten when the worker reports it final (fills made before the cancel count)."""
        for coid, order in list(self.resting.items()):
            if order.symbol == symbol:
                self.cancel(coid)

    def cancel(self, client_order_id: str) -> bool:
        """Ask the broker to cancel one resting order (once, however often asked), or cancel
        a protective order held here; False when the order does not rest here."""
        order = self.resting.get(client_order_id)
        if order is None:
            held = self._by_id.get(client_order_id)
            return held is not None and held.is_protective and self.book.cancel(held)
        if client_order_id not in self._cancelling:
            self._cancelling.add(client_order_id)
            if self.request_cancel is not None:
                self.request_cancel(order)
        return True

    def cancel_not_sent(self, client_order_id: str) -> None:
        """A cancel request could not be sent: the next `cancel_pending` sends it again."""
        self._cancelling.discard(client_order_id)

    def on_order_final(self, client_order_id: str, status: str) -> None:
        """The worker reports the order final (filled, cancelled, rejected): it rests no more."""
        order = self.resting.pop(client_order_id, None)
        self._cancelling.discard(client_order_id)
        if order is not None and status == OrderStatus.CANCELLED.value:
            order.status = OrderStatus.CANCELLED
        if self._managed and status in _ENDED:
            self._live_order_ended(client_order_id)

    # --- margin ----------------------------------------------------------------------------
    def _check_margin(self, i: int) -> None:
        super()._check_margin(i)
        # Fills arrive between bars, outside the engine's loop: look at the account each bar.
        self._margin_due = 0

    def _account_changed(self) -> None:
        self._projection = None

    def _liquidate(self, i: int, reason: str) -> None:
        """The account breached its margin at bar `i`'s close: cancel the resting orders,
        send a market order closing the position (through the same risk check and queue as
        every order), and pause the strategy; the error log line is the alert."""
        self.cancel_pending(self.symbol)
        held = self.position_qty(self.symbol)
        if held:  # an account left owing by a close holds nothing to close
            self.submit(
                Order(
                    symbol=self.symbol,
                    side=Side.SELL if held > 0 else Side.BUY,
                    reduce_only=True,
                    strategy=self.strategy.name,
                    tag="liquidation",
                    reason=LIQUIDATION,
                )
            )
        self.halted = True
        self.margin.liquidated(i, self._bar_time(i), reason, self.last_price, Decimal(0))

    # --- feedback from execution -----------------------------------------------------------
    def on_fill(self, fill: Fill) -> None:
        """Book a fill reported by the worker; a repeated report of the same fill is ignored."""
        key = fill.identity
        if key in self._seen_fills:
            return
        self._seen_fills.add(key)
        self._seen_order.append(key)
        if len(self._seen_order) > _SEEN_FILLS:
            self._seen_fills.discard(self._seen_order.popleft())
        projected = self.inflight.pop(fill.client_order_id, None)
        if projected is None or (projected.side, projected.qty, projected.price, projected.fee) != (
            fill.side,
            fill.qty,
            fill.price,
            fill.fee,
        ):
            self._projection = None  # reality differs from the projection: rebuild it
        order = self._by_id.get(fill.client_order_id)
        if order is None:
            self.portfolio.apply(fill, self.data.cursor.i)
        else:
            self.portfolio.apply(fill, self.data.cursor.i, order.tag, order.reason)
        self.fills.append(fill)
        if order is not None:
            order.filled_qty += fill.qty
            order.status = OrderStatus.FILLED
            if self._managed:
                self._after_live_fill(order, fill)
        if self.resting:
            self._cancel_idle_reduce_only(fill.symbol)

    def _cancel_idle_reduce_only(self, symbol: str) -> None:
        """Ask to cancel the resting reduce-only orders on `symbol` that have nothing left to
        reduce (a stop-loss closed the position). A spot venue takes no reduce-only flag
        (see `Capability.REDUCE_ONLY`): such an order left resting would open a position when
        it filled. Judged on the projected position, so the close still out counts."""
        held = self.projected().qty(symbol)
        for coid, order in list(self.resting.items()):
            if (
                order.reduce_only
                and order.symbol == symbol
                and coid not in self._cancelling
                and not protects(order, held)
            ):
                log.info(
                    "%s %s: reduce-only order %s cancelled: nothing left to reduce",
                    self.strategy.name,
                    self.symbol,
                    coid,
                )
                self.cancel(coid)

    def _after_live_fill(self, order: Order, fill: Fill) -> None:
        """After a fill of `order`: the protective order that sent it, its OCO group, the
        protection waiting for it, and protection left with nothing to protect."""
        book = self.book
        coid = order.client_order_id
        whole = order.qty is None or order.filled_qty >= order.qty
        guard = self._children.get(coid)
        if guard is not None:
            parent = guard.order
            parent.filled_qty += fill.qty
            if whole:
                del self._children[coid]
                guard.child = ""
                parent.status = OrderStatus.FILLED
                for sibling in book.filled(parent):
                    self._cancel_sibling(sibling)
        elif order.oco:
            for sibling in book.siblings(order):
                self._cancel_sibling(sibling)
        if coid in book.waiting:
            book.parent_filled(coid, fill.qty, fill.price, self.data.cursor.i + 2, whole=whole)
        if book.armed:
            for stale in book.stale(self.projected().qty(order.symbol)):
                log.info(
                    "%s %s: %s at %s cancelled: no position left to protect",
                    self.strategy.name,
                    self.symbol,
                    stale.reason,
                    stale.stop_price or stale.limit_price,
                )

    def _cancel_sibling(self, order: Order) -> None:
        """Cancel `order` because another order of its OCO group filled."""
        if order.is_protective:
            self.book.cancel(order)
        else:
            self.cancel(order.client_order_id)

    def _live_order_ended(self, client_order_id: str) -> None:
        """An order ended without filling (more): a trigger's order frees its protective
        order to trigger again from the next bar; an entry takes the protection still
        waiting for it along."""
        guard = self._children.pop(client_order_id, None)
        if guard is not None:
            guard.child = ""
            guard.retry_from = self.data.cursor.i + 1
            log.warning(
                "%s %s: the %s order %s did not fill; it is armed again from the next bar",
                self.strategy.name,
                self.symbol,
                guard.order.reason,
                client_order_id,
            )
            return
        order = self._by_id.get(client_order_id)
        if order is not None:
            self._ended(order)

    def on_rejected(self, client_order_id: str, reason: str) -> None:
        """The order will never fill (risk, broker or dead letter): forget its projection."""
        if self.inflight.pop(client_order_id, None) is not None:
            self._projection = None
        self.resting.pop(client_order_id, None)
        if self._managed:
            self._live_order_ended(client_order_id)
        order = self._by_id.get(client_order_id)
        if order is not None:
            order.status = OrderStatus.REJECTED
            log.warning(
                "%s %s: order %s rejected: %s",
                self.strategy.name,
                self.symbol,
                client_order_id,
                reason,
            )

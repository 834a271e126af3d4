"""DispatchEngine: the engine of the live services (live and paper-broker mode): orders are
dispatched, fills come back later.

The strategy, its data views and its account API are the ones the backtest uses. The
difference is execution: instead of matching orders against the next bar, the live engine
sizes each order at the decision price (`ref_price`, the first tick of the next bar, which is
the price a backtest fills at), hands it to `dispatch` (risk check, then the order queue), and
books fills when the worker reports them. Until then the order counts as "in flight": the
strategy sees the account as if in-flight orders had filled at the decision price, so a slow
worker can never make it send the same order twice.
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

from sigma.domain import Bar, Fill, Order, OrderStatus, OrderType, Position
from sigma.engine.engine import Engine, EngineConfig, empty_data
from sigma.engine.portfolio import Portfolio
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
        self._seen_fills: set[tuple[str, Decimal, Decimal, object]] = set()
        self._seen_order: deque[tuple[str, Decimal, Decimal, object]] = deque()
        self._by_id: dict[str, Order] = {}
        super().__init__(strategy, symbol, empty_data(), config)
        instrument = config.instruments.get(symbol)
        if instrument is not None:
            # A venue sizes on its lot step (0.00001 BTC), not on the fill model's whole units.
            self.fill_model = replace(config.fill_model, lot_size=instrument.lot_step)
        self.rules = VenueRules(instrument, config.can_short, f"{strategy.name} {symbol}")

    # --- account as the strategy sees it ---------------------------------------------------
    def projected(self) -> Portfolio:
        """Booked account plus in-flight orders assumed filled at their decision price."""
        if self._projection is None:
            view = self.portfolio.snapshot()
            for fill in self.inflight.values():
                view.apply(fill)
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

    # --- the loop --------------------------------------------------------------------------
    def on_live_bar(self, bar: Bar, ref_price: Decimal) -> None:
        """A bar closed; `ref_price` is the price now (the next bar's first tick). A bar not
        after the latest one held (a feed replaying what the warm-up loaded) is ignored."""
        if len(self.data) and np.datetime64(bar.ts.replace(tzinfo=None), "ns") <= self.data.ts[-1]:
            log.warning("%s %s: ignored the bar of %s", self.strategy.name, self.symbol, bar.ts)
            return
        if len(self.data) >= 2 * MAX_BARS:
            self.data.drop_oldest(len(self.data) - MAX_BARS)
        self._ref_price = ref_price
        try:
            self.on_bar(bar)
        finally:
            self._ref_price = None
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
        """Size the order at the decision price and hand it to `dispatch`."""
        order.created_at = self._bar_time(self.data.cursor.i)
        self.orders.append(order)
        self._by_id[order.client_order_id] = order
        account = self.projected()
        if (veto := self._veto(order, account.qty(order.symbol))) is not None:
            log.info("%s %s: entry not sent: %s", self.strategy.name, self.symbol, veto)
            return
        price = self._ref_price if self._ref_price is not None else self.last_price
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
                order.created_at,
                order.strategy,
            )
            self.inflight[order.client_order_id] = projected
            if self._projection is not None:
                self._projection.apply(projected)
                self._projection.trades.clear()
        if order.type is not OrderType.MARKET:
            self.resting[order.client_order_id] = order
        self.dispatch(order, price)

    def cancel_pending(self, symbol: str) -> None:
        """Ask the broker to cancel the resting (limit and stop) orders on `symbol`, as the
        backtest cancels its pending ones; market orders cannot be recalled. An order is
        forgotten when the worker reports it final (fills made before the cancel count)."""
        for coid, order in list(self.resting.items()):
            if order.symbol == symbol:
                self.cancel(coid)

    def cancel(self, client_order_id: str) -> bool:
        """Ask the broker to cancel one resting order (once, however often asked); False when
        the order does not rest here."""
        order = self.resting.get(client_order_id)
        if order is None:
            return False
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

    # --- feedback from execution -----------------------------------------------------------
    def on_fill(self, fill: Fill) -> None:
        """Book a fill reported by the worker; a repeated report of the same fill is ignored."""
        key = (fill.client_order_id, fill.qty, fill.price, fill.ts)
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
        self.portfolio.apply(fill, bar=self.data.cursor.i)
        self.fills.append(fill)
        order = self._by_id.get(fill.client_order_id)
        if order is not None:
            order.filled_qty += fill.qty
            order.status = OrderStatus.FILLED

    def on_rejected(self, client_order_id: str, reason: str) -> None:
        """The order will never fill (risk, broker or dead letter): forget its projection."""
        if self.inflight.pop(client_order_id, None) is not None:
            self._projection = None
        self.resting.pop(client_order_id, None)
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

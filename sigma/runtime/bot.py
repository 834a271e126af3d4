"""TradingBot: the seed's real-time loop from `price_update` to the order queue.

Per tick: drop malformed or anomalous ticks, build bars, and when a bar closes let each active
strategy on that symbol act through its `DispatchEngine`. Every order it wants passes the
RiskManager, then the OrderExecutor publishes it with its client order id. Fills and status
changes reported by the worker come back over the bus and are booked in the engine, so the
strategy's view of its account follows what really executed; what the bus did not deliver is
read back from the store whenever the subscriptions are back (`sigma.runtime.catch_up`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from sigma.bus.base import CHANNEL_FILLS, CHANNEL_ORDER_STATUS, CHANNEL_PRICE_UPDATE, PubSub
from sigma.domain import Order, Tick
from sigma.engine.bar_builder import BarBuilder
from sigma.engine.engine import EngineConfig
from sigma.engine.live import DispatchEngine
from sigma.execution.events import FillEvent, OrderStatusEvent
from sigma.regime.hook import AdaptiveHook
from sigma.risk.limits import AccountState, Decision
from sigma.runtime.catch_up import Unsettled
from sigma.runtime.protection import ProtectionKeeper
from sigma.runtime.tasks import MessageHandler, consume_until
from sigma.strategies.base import Strategy

log = logging.getLogger(__name__)

_FAILED_STATUSES = {"rejected", "dead_lettered", "failed", "cancelled"}
_FINAL_STATUSES = {"filled", "rejected", "cancelled", "dead_lettered"}
_FEEDBACK = frozenset({CHANNEL_FILLS, CHANNEL_ORDER_STATUS})
_MAX_TRACKED = 10_000


class RiskGate(Protocol):
    """Pre-trade check (the RiskManager)."""

    def check(self, order: Order, price: Decimal, account: AccountState) -> Decision:
        """Accept or reject `order` at `price` given the account state."""
        ...


class Submitter(Protocol):
    """Publishes accepted orders (the OrderExecutor)."""

    async def submit_all(self, orders: Sequence[tuple[Order, Decimal]]) -> Any:
        """Send orders decided together, each with the price it was decided at, on their way
        as one message; raises when they could not be published."""

    async def submit_cancels(self, orders: Sequence[Order]) -> Any:
        """Send a cancel request for each resting order; raises when they could not be
        published."""


@dataclass(slots=True)
class BotCounters:
    """Plain counters for logs, health and tests (Prometheus metrics are separate)."""

    ticks: int = 0
    bars: int = 0
    orders_sent: int = 0
    orders_rejected: int = 0
    fills: int = 0

    def totals(self) -> dict[str, int]:
        """The counts (for `Metrics.count_from`)."""
        return {
            "ticks": self.ticks,
            "bars": self.bars,
            "orders_sent": self.orders_sent,
            "orders_rejected": self.orders_rejected,
            "fills": self.fills,
        }


@dataclass(frozen=True, slots=True)
class _Accepted:
    """An order the risk check let through, on its way to the queue."""

    engine: DispatchEngine
    order: Order
    ref_price: Decimal
    info: dict[str, str]


class TradingBot:
    """Runs strategies live on the ticks of `price_update`."""

    def __init__(
        self,
        strategies: list[tuple[Strategy, str]],
        *,
        timeframe: timedelta,
        config: EngineConfig,
        risk: RiskGate,
        executor: Submitter,
        decode: Callable[[bytes], Tick | None],
        on_decision: Callable[[str, dict[str, Any]], None] | None = None,
        on_latency: Callable[[float], None] | None = None,
        on_fill_latency: Callable[[float], None] | None = None,
        adaptive: AdaptiveHook | None = None,
        protection: ProtectionKeeper | None = None,
    ) -> None:
        self.risk = risk
        self.protection = protection
        """Keeps each engine's protective orders in the store as they change (None: not kept)."""
        self.executor = executor
        self.decode = decode
        self.on_decision = on_decision or (lambda kind, data: None)
        self.on_latency = on_latency or (lambda seconds: None)
        self.on_fill_latency = on_fill_latency or (lambda seconds: None)
        # When each order was sent, until its first fill or failure (order-to-fill latency).
        self._sent_at: dict[str, float] = {}
        self.subscribed = asyncio.Event()
        """Set once the bot listens: ticks published from then on reach it."""
        self.counters = BotCounters()
        self.engines: dict[tuple[str, str], DispatchEngine] = {}
        self._by_symbol: dict[str, list[DispatchEngine]] = {}
        self._builders: dict[str, BarBuilder] = {}
        self._outbox: list[tuple[DispatchEngine, Order, Decimal]] = []
        self._cancels: list[tuple[DispatchEngine, Order]] = []
        self._sending: set[asyncio.Task[str]] = set()
        self.stopped: dict[tuple[str, str], str] = {}
        """(strategy, symbol) an operator stopped, with why: they open no new position."""
        self.liquidated: dict[tuple[str, str], str] = {}
        """(strategy, symbol) whose account was liquidated, with why: they trade no more."""
        self.unsettled = Unsettled()
        """The orders sent or adopted that the store may still change."""
        self.catch_up: Callable[[], Awaitable[None]] | None = None
        """Books what the bus did not deliver, read back from the store (None: nothing is
        read back); awaited each time the feedback subscriptions are established."""
        for strategy, symbol in strategies:
            engine = DispatchEngine(
                strategy,
                symbol,
                config,
                self._collector(symbol, strategy),
                cancel=self._cancel_collector(symbol, strategy),
            )
            self.engines[(strategy.name, symbol)] = engine
            self._by_symbol.setdefault(symbol, []).append(engine)
            self._builders.setdefault(symbol, BarBuilder(symbol, timeframe))
        # The regime loop re-tunes the strategies after each bar and may pause new entries.
        self.adaptive = adaptive
        if adaptive is not None:
            for engine in self.engines.values():
                adaptive.attach(engine)

    def _collector(self, symbol: str, strategy: Strategy) -> Callable[[Order, Decimal], None]:
        def collect(order: Order, ref_price: Decimal) -> None:
            self._outbox.append((self.engines[(strategy.name, symbol)], order, ref_price))

        return collect

    def _cancel_collector(self, symbol: str, strategy: Strategy) -> Callable[[Order], None]:
        def collect(order: Order) -> None:
            self._cancels.append((self.engines[(strategy.name, symbol)], order))

        return collect

    # --- ticks ------------------------------------------------------------------------------
    async def on_raw_tick(self, raw: bytes) -> None:
        """Decode one bus message (None from `decode` means it was rejected) and process it."""
        received = time.perf_counter()
        tick = self.decode(raw)
        if tick is not None:
            await self.on_tick(tick, received)

    async def on_tick(self, tick: Tick, received: float | None = None) -> None:
        """Advance the symbol's bar; on a closed bar run its strategies and send their orders."""
        started = received if received is not None else time.perf_counter()
        self.counters.ticks += 1
        builder = self._builders.get(tick.symbol)
        if builder is None:
            return
        bar = builder.on_tick(tick)
        engines = self._by_symbol[tick.symbol]
        if bar is not None:
            self.counters.bars += 1
            for engine in engines:
                engine.on_live_bar(bar, ref_price=tick.price)
                if engine.halted and engine.margin.liquidation is not None:
                    self._liquidated(engine)
        # Every price, after the bar it closed was decided: protective orders it triggers
        # (and IOC orders left resting) leave with the bar's orders or on their own.
        for engine in engines:
            engine.on_price(tick.price)
        self._keep_protection(engines)
        if bar is None and not self._outbox and not self._cancels:
            return
        outbox, self._outbox = self._outbox, []
        cancels, self._cancels = self._cancels, []
        accepted = [a for e, o, p in outbox if isinstance(a := self._check(e, o, p), _Accepted)]
        if accepted or cancels:
            task = asyncio.create_task(self._submit(accepted, started, cancels))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
            # Let the message leave now: the regime loop's work on this bar (about 1 ms,
            # over 10 ms at p99 in the soak) and the ticks read along with this one (half a
            # millisecond for a batch of 25) would otherwise all be done first. Two turns of
            # the loop: one for the send to hand its frame to the connection, one for the
            # connection's writer (aio-pika's) to put it on the socket.
            for _ in range(2):
                await asyncio.sleep(0)
        if self.adaptive is not None and bar is not None:
            for update in self.adaptive.on_bar(tick.symbol, bar):
                self.on_decision(
                    "param_change",
                    {"strategy": update.strategy, "symbol": update.symbol, "new": update.new},
                )

    def _liquidated(self, engine: DispatchEngine) -> None:
        """Report a strategy account's liquidation once (its engine closed the position and
        stopped the strategy)."""
        key = (engine.strategy.name, engine.symbol)
        if key in self.liquidated:
            return
        liquidation = engine.margin.liquidation
        assert liquidation is not None
        self.liquidated[key] = liquidation.reason
        self.on_decision(
            "liquidated",
            {
                "strategy": key[0],
                "symbol": key[1],
                **{name: str(value) for name, value in liquidation.summary().items()},
            },
        )

    def _check(
        self, engine: DispatchEngine, order: Order, ref_price: Decimal, *, forced: bool = False
    ) -> _Accepted | str:
        """Risk-check an order now (against the account as it stands, with every earlier
        order in flight): the accepted order, or why it is rejected. An operator's order
        (`forced`) passes the entry pauses, never the risk limits.

        The orders of one bar are sent together, as one message, beside the price loop:
        waiting for the queue to confirm them never holds up the next tick. Each send hands
        its message to the connection before its first wait, so the queue receives the
        bars' orders in the order they were decided."""
        account = account_state(engine, order)
        decision = self.risk.check(order, ref_price, account)
        if decision.accepted and not forced and (paused := self._entry_pause(order, account)):
            decision = Decision(False, paused, "paused")
        info = {
            "strategy": order.strategy,
            "symbol": order.symbol,
            "side": order.side.value,
            "qty": str(order.qty),
            "ref_price": str(ref_price),
            "client_order_id": order.client_order_id,
        }
        if decision.accepted:
            return _Accepted(engine, order, ref_price, info)
        self.counters.orders_rejected += 1
        engine.on_rejected(order.client_order_id, decision.reason)
        self.on_decision("order_rejected", {**info, "reason": decision.reason})
        return decision.reason

    async def _submit(
        self,
        accepted: list[_Accepted],
        started: float,
        cancels: Sequence[tuple[DispatchEngine, Order]] = (),
    ) -> str:
        """Send the cancels, then the orders; "" when the orders went, else why not."""
        if cancels:
            # Before the bar's new orders: the venue frees what a resting order holds first.
            await self._send_cancels(cancels)
        if not accepted:
            return ""
        for a in accepted:  # before the send: its fill may be reported before the send returns
            self.unsettled.track(a.order.client_order_id)
        try:
            await self.executor.submit_all([(a.order, a.ref_price) for a in accepted])
        except Exception as exc:  # the bus is gone past the executor's retries
            for a in accepted:
                self.unsettled.forget(a.order.client_order_id)
                self.counters.orders_rejected += 1
                a.engine.on_rejected(a.order.client_order_id, f"not sent: {exc}")
                self.on_decision("order_failed", {**a.info, "reason": str(exc)})
            return f"not sent: {exc}"
        now = time.perf_counter()
        for a in accepted:
            self.counters.orders_sent += 1
            self.on_latency(now - started)
            self._sent_at[a.order.client_order_id] = now
            if len(self._sent_at) > _MAX_TRACKED:  # orders that never hear back are forgotten
                del self._sent_at[next(iter(self._sent_at))]
            self.on_decision("order_sent", a.info)
        return ""

    async def _send_cancels(self, cancels: Sequence[tuple[DispatchEngine, Order]]) -> None:
        try:
            await self.executor.submit_cancels([order for _, order in cancels])
        except Exception as exc:  # the bus is gone past the executor's retries
            log.warning("bot: cancel requests not sent: %r", exc)
            for engine, order in cancels:
                engine.cancel_not_sent(order.client_order_id)
            return
        for _, order in cancels:
            self.on_decision(
                "cancel_sent",
                {
                    "strategy": order.strategy,
                    "symbol": order.symbol,
                    "client_order_id": order.client_order_id,
                },
            )

    async def place(self, engine: DispatchEngine, order: Order | None) -> str:
        """Send an operator's `order` for `engine`'s strategy now, at the latest price, with
        the cancels the engine was just asked for: through the risk check, past the entry
        pauses. "" when sent (None: only the cancels), else why not."""
        cancels, self._cancels = self._cancels, []
        if order is None:
            await self._submit([], time.perf_counter(), cancels)
            return ""
        price = self._builders[engine.symbol].last_price
        if price is None or engine.data.cursor.i < 0:
            self._cancels.extend(cancels)  # they go with the next bar's orders
            return f"no bar of {engine.symbol} yet: nothing to price the order at"
        engine.place(order, price)
        outbox, self._outbox = self._outbox, []
        if not outbox:
            await self._submit([], time.perf_counter(), cancels)
            return f"not sent: sized to zero at {price} (below the lot size, or no cash for it)"
        checked = self._check(engine, order, price, forced=True)
        if isinstance(checked, str):
            await self._submit([], time.perf_counter(), cancels)
            return f"refused by risk: {checked}"
        return await self._submit([checked], time.perf_counter(), cancels)

    async def drain(self) -> None:
        """Wait until every accepted order has been sent (or has failed)."""
        while self._sending:
            await asyncio.gather(*self._sending)

    def _entry_pause(self, order: Order, account: AccountState) -> str:
        """Why an operator's stop or the regime loop holds back this order ("" when neither
        does): new exposure waits for a stopped, disabled or throttled strategy and during a
        news halt; reducing stays allowed."""
        if order.qty is None:
            return ""
        after = account.position_qty + order.qty * order.side.sign
        if abs(after) <= abs(account.position_qty):
            return ""
        stopped = self.stopped.get((order.strategy, order.symbol))
        if stopped is not None:
            return f"stopped by an operator: {stopped}"
        if self.adaptive is None:
            return ""
        return self.adaptive.entry_pause(order.strategy, order.symbol, account.now)

    def equity(self) -> Decimal:
        """Booked equity of every strategy account, at each symbol's latest price."""
        return sum(
            (
                e.portfolio.equity({e.symbol: e.last_price})
                if e.data.cursor.i >= 0
                else e.portfolio.cash
                for e in self.engines.values()
            ),
            start=Decimal(0),
        )

    # --- feedback ---------------------------------------------------------------------------
    def on_fill_message(self, raw: bytes) -> None:
        """Book a fill reported by the worker in the engine that ordered it."""
        self.on_fill(FillEvent.model_validate_json(raw))

    def on_fill(self, event: FillEvent) -> bool:
        """Book a fill (reported, or read back from the store) in the engine that ordered
        it; False when it was booked before."""
        if not self.unsettled.new_fill(event):
            return False
        sent = self._sent_at.pop(event.client_order_id, None)
        if sent is not None:
            self.on_fill_latency(time.perf_counter() - sent)
        engine = self.engines.get((event.strategy, event.symbol))
        if engine is not None:
            self.counters.fills += 1
            engine.on_fill(event.to_fill())
            self._keep_protection((engine,))
            self.on_decision(
                "fill",
                {
                    "strategy": event.strategy,
                    "symbol": event.symbol,
                    "side": event.side.value,
                    "qty": str(event.qty),
                    "price": str(event.price),
                    "client_order_id": event.client_order_id,
                },
            )
        return True

    def on_status_message(self, raw: bytes) -> None:
        """Take an order status reported by the worker (see `on_status`)."""
        self.on_status(OrderStatusEvent.model_validate_json(raw))

    def on_status(self, event: OrderStatusEvent) -> None:
        """Forget a final order's resting state, and the projection of one that failed
        downstream."""
        self.unsettled.settle(event.client_order_id, event.status)
        engines = self._by_symbol.get(event.symbol, [])
        if event.status in _FINAL_STATUSES:
            for engine in engines:
                engine.on_order_final(event.client_order_id, event.status)
        if event.status in _FAILED_STATUSES:
            self._sent_at.pop(event.client_order_id, None)
            for engine in engines:
                if event.client_order_id in engine.inflight:
                    engine.on_rejected(event.client_order_id, event.reason or event.status)
        self._keep_protection(engines)

    def _keep_protection(self, engines: Sequence[DispatchEngine]) -> None:
        """Queue writing the protection of `engines` that changed (see runtime/protection)."""
        if self.protection is not None:
            for engine in engines:
                self.protection.check(engine)

    # --- the loop ---------------------------------------------------------------------------
    async def run(self, pubsub: PubSub, stop: asyncio.Event) -> None:
        """Consume prices, fills and order status until `stop` is set."""

        def feedback(handle: Callable[[bytes], None]) -> MessageHandler:
            async def checked(raw: bytes) -> None:
                try:
                    handle(raw)
                except ValueError as exc:
                    log.warning("bot: ignored a malformed feedback message: %s", exc)

            return checked

        handlers = {
            CHANNEL_PRICE_UPDATE: self.on_raw_tick,
            CHANNEL_FILLS: feedback(self.on_fill_message),
            CHANNEL_ORDER_STATUS: feedback(self.on_status_message),
        }
        try:
            await consume_until(
                pubsub, handlers, stop, subscribed=self.subscribed, resubscribed=self._resubscribed
            )
        finally:
            await self.drain()

    async def _resubscribed(self, channels: Collection[str]) -> None:
        """Subscribed anew to `channels`: what was published on them meanwhile is lost, so
        fills and statuses are read back from the store."""
        if self.catch_up is not None and _FEEDBACK.intersection(channels):
            await self.catch_up()


def account_state(engine: DispatchEngine, order: Order) -> AccountState:
    """The risk view of one strategy's account before `order` (already counted as in flight
    by the engine, so it is taken out again here)."""
    projected = engine.projected()
    own = engine.inflight.get(order.client_order_id)
    qty = projected.qty(engine.symbol) - (own.signed_qty if own is not None else 0)
    return AccountState(
        key=f"{engine.strategy.name}:{engine.symbol}",
        equity=engine.portfolio.equity({engine.symbol: engine.last_price})
        if engine.data.cursor.i >= 0
        else engine.portfolio.cash,
        position_qty=qty,
        open_orders=len(engine.inflight) - (own is not None),
        now=order.created_at or datetime.now(UTC),
    )

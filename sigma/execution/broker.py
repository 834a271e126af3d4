"""What the order worker needs from a broker, and the paper broker.

A broker must treat the client order id as an idempotency key: placing the same id twice
returns the first outcome instead of trading again. The paper broker fills with the engine's
`FillModel`, so paper fills equal what a backtest books at the same decision price.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Protocol, cast

from sigma.domain import OrderStatus, OrderType, Side, TimeInForce
from sigma.engine.fill_model import FillModel
from sigma.execution.events import OrderEvent


@dataclass(frozen=True, slots=True)
class BrokerFill:
    """One execution as the broker reports it; `fill_id` is unique per broker. `fee_asset` is
    the currency the fee was paid in (a Binance buy pays in the base asset), "" when the
    broker does not say (the paper broker charges the quote currency)."""

    fill_id: str
    qty: Decimal
    price: Decimal
    fee: Decimal
    ts: datetime
    fee_asset: str = ""


@dataclass(frozen=True, slots=True)
class BrokerReport:
    """The broker's view of an order: status and every fill so far."""

    client_order_id: str
    status: OrderStatus
    fills: tuple[BrokerFill, ...] = ()
    exchange_order_id: str | None = None
    reason: str = ""
    #: the order's base and quote currencies, when the broker names its fills' fee assets:
    #: booking tells a fee paid out of the asset bought from one paid in cash by these
    base_asset: str = ""
    quote_asset: str = ""


class Capability(StrEnum):
    """What a broker can do beyond placing and looking up orders; callers test membership in
    `Broker.capabilities` instead of the broker's class."""

    #: cancels one order, and every open order (`cancel`, `cancel_all`)
    CANCEL = "cancel"
    #: takes stop orders (a stop the venue cannot take is refused before sending)
    STOP_ORDERS = "stop_orders"
    #: a market buy spends an amount of the quote currency (Upbit), so the quantity bought
    #: follows the price actually paid
    MARKET_BUY_BY_COST = "market_buy_by_cost"
    #: sells what it does not hold (margin, or paper); a spot venue cannot
    SHORT = "short"
    #: takes reduce-only orders (derivatives and margin markets), refusing or trimming one
    #: that would open or grow a position; spot has no such flag, so the engine cancels a
    #: resting reduce-only order itself once its strategy has nothing left to reduce
    REDUCE_ONLY = "reduce_only"
    #: reports the account's balances, open orders and trades for reconciliation
    #: (:class:`sigma.execution.reconcile.Reconcilable`); the paper broker has no account
    RECONCILE = "reconcile"
    #: tells of its orders' changes as they happen (`watch_reports`, the venue's user-data
    #: stream), so the order follower polls only as a safety net while the stream is up
    USER_STREAM = "user_stream"
    #: settles its orders in this process and hands the reports to the worker itself (the
    #: paper broker's `on_price`): the order follower has nothing to poll
    IN_PROCESS = "in_process"


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """The venue says an order changed (an event of its user-data stream). Only which order:
    the follower then asks for the authoritative state (`lookup`), so a lost or reordered
    event can never book a wrong state."""

    client_order_id: str
    exchange_order_id: str = ""


class Broker(Protocol):
    """An execution venue (paper or exchange)."""

    name: str
    capabilities: frozenset[str]

    async def place(self, order: OrderEvent) -> BrokerReport:
        """Send the order, or return the outcome of an earlier send of the same id."""
        ...

    async def lookup(self, client_order_id: str, symbol: str) -> BrokerReport | None:
        """The broker's state of an order it knows, else None (for reconciliation)."""
        ...

    async def cancel(self, client_order_id: str, symbol: str) -> BrokerReport | None:
        """Cancel an open order; its state afterwards, or None when the broker does not know
        it. An order that finished before the cancel comes back as it finished."""
        ...

    async def cancel_all(self, symbols: Iterable[str] | None = None) -> int:
        """Cancel every open order (on `symbols`, else on every symbol the broker trades);
        returns how many were cancelled."""
        ...

    async def close(self) -> None:
        """Release connections."""


def address(broker: Broker) -> str:
    """Where `broker` is, for messages: its name, and the URL it sends to when it has one
    (a venue's execution client)."""
    url = getattr(broker, "url", "")
    return f"{broker.name} at {url}" if url else broker.name


class SettlingBroker(Broker, Protocol):
    """A broker with `Capability.IN_PROCESS`: it keeps resting orders in this process and
    fills them on the prices it is shown (the paper broker)."""

    @property
    def resting(self) -> int:
        """How many orders wait for a price to reach them."""
        ...

    def on_price(self, symbol: str, price: Decimal) -> list[BrokerReport]:
        """Fill resting orders on `symbol` that `price` reaches; their reports."""
        ...

    def restore(self, order: OrderEvent) -> None:
        """Rest an order again after a restart."""
        ...

    def forget(self, client_order_id: str) -> None:
        """Drop every trace of an order the worker refused after placing it (a reused client
        order id with another payload), so it can neither fill nor be reconciled."""
        ...


def settling(broker: Broker) -> SettlingBroker | None:
    """``broker`` as a :class:`SettlingBroker` when it declares `Capability.IN_PROCESS`, else
    None: callers ask what a broker can do, never which class it is."""
    if Capability.IN_PROCESS in broker.capabilities:
        return cast(SettlingBroker, broker)
    return None


class StreamingBroker(Broker, Protocol):
    """A broker with `Capability.USER_STREAM`."""

    async def watch_updates(self) -> list[OrderUpdate]:
        """Wait for the next order changes on the venue's user-data stream. Raises when the
        stream drops; the next call connects again (changes meanwhile are not replayed)."""
        ...


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class PaperBroker:
    """Fills against the decision price with the engine's fill model.

    Market orders fill at once at `ref_price` moved by slippage. A limit order that is
    marketable at `ref_price` fills there; otherwise it rests, as does an untriggered stop,
    until `on_price` reaches it (an IOC or FOK one is cancelled instead). State lives in the
    process: after a restart the worker's reconciliation places orders that were accepted but
    never filled again.
    """

    fill_model: FillModel = field(default_factory=FillModel)
    clock: Callable[[], datetime] = _now
    name: str = "paper"
    capabilities: frozenset[str] = frozenset(
        {Capability.CANCEL, Capability.STOP_ORDERS, Capability.SHORT, Capability.IN_PROCESS}
    )
    _orders: dict[str, BrokerReport] = field(default_factory=dict)
    _resting: dict[str, OrderEvent] = field(default_factory=dict)

    async def place(self, order: OrderEvent) -> BrokerReport:
        """Fill or rest `order`; a repeated id returns the stored outcome."""
        known = self._orders.get(order.client_order_id)
        if known is not None:
            return known
        price = self._execution_price(order, order.ref_price)
        if price is None and order.tif is not TimeInForce.GTC:
            # IOC and FOK get the price now only, as a venue ends them (Binance: expired).
            report = BrokerReport(order.client_order_id, OrderStatus.CANCELLED)
        elif price is None:
            report = BrokerReport(order.client_order_id, OrderStatus.NEW)
            self._resting[order.client_order_id] = order
        else:
            report = self._filled(order, price)
        self._orders[order.client_order_id] = report
        return report

    def restore(self, order: OrderEvent) -> None:
        """Rest a limit or stop order again after a restart, without filling it now: the
        price that made it rest is gone, the next `on_price` decides."""
        self._resting[order.client_order_id] = order
        self._orders[order.client_order_id] = BrokerReport(order.client_order_id, OrderStatus.NEW)

    def forget(self, client_order_id: str) -> None:
        """Drop an order the worker refused after placing it (see `SettlingBroker.forget`)."""
        self._resting.pop(client_order_id, None)
        self._orders.pop(client_order_id, None)

    async def lookup(self, client_order_id: str, symbol: str) -> BrokerReport | None:
        """The stored outcome of an order placed in this process."""
        return self._orders.get(client_order_id)

    async def cancel(self, client_order_id: str, symbol: str) -> BrokerReport | None:
        """Take a resting order off; a finished one is returned as it is."""
        if self._resting.pop(client_order_id, None) is not None:
            self._orders[client_order_id] = BrokerReport(client_order_id, OrderStatus.CANCELLED)
        return self._orders.get(client_order_id)

    async def cancel_all(self, symbols: Iterable[str] | None = None) -> int:
        """Cancel every resting order (on `symbols`); how many."""
        wanted = None if symbols is None else set(symbols)
        chosen = [
            coid
            for coid, order in self._resting.items()
            if wanted is None or order.symbol in wanted
        ]
        for coid in chosen:
            await self.cancel(coid, self._resting[coid].symbol)
        return len(chosen)

    @property
    def resting(self) -> int:
        """How many orders wait for a price to reach them."""
        return len(self._resting)

    def on_price(self, symbol: str, price: Decimal) -> list[BrokerReport]:
        """Fill resting orders on `symbol` that `price` reaches; returns their reports."""
        done = []
        for coid, order in list(self._resting.items()):
            if order.symbol != symbol:
                continue
            fill_price = self._execution_price(order, price)
            if fill_price is not None:
                del self._resting[coid]
                report = self._orders[coid] = self._filled(order, fill_price)
                done.append(report)
        return done

    async def close(self) -> None:
        """Nothing to release."""

    def _execution_price(self, order: OrderEvent, price: Decimal) -> Decimal | None:
        buy = order.side is Side.BUY
        if order.type is OrderType.LIMIT:
            limit = order.limit_price
            assert limit is not None  # validated by OrderEvent's producer
            # Marketable at `price` means filling there is at least as good as the limit.
            marketable = price <= limit if buy else price >= limit
            return price if marketable else None
        if order.type is OrderType.STOP:
            stop = order.stop_price
            assert stop is not None
            triggered = price >= stop if buy else price <= stop
            if not triggered:
                return None
        return self.fill_model.slipped(order.side, price)

    def _filled(self, order: OrderEvent, price: Decimal) -> BrokerReport:
        fill = BrokerFill(
            f"paper-{order.client_order_id}-1",
            order.qty,
            price,
            self.fill_model.fee(order.qty, price),
            self.clock(),
        )
        return BrokerReport(order.client_order_id, OrderStatus.FILLED, (fill,))

"""The local exchange's core: markets with a synthetic order book, accounts, matching, fees.

One :class:`Venue` per protocol (Binance's, Upbit's): its front end parses requests into
:class:`~sigma.venues.emulator.model.OrderRequest` and renders orders, trades and events back.
All state changes happen in plain synchronous methods, so one request is atomic on the event
loop, and each ends with :meth:`Venue._commit`: the order events of the change in the order they
happened, then one balance event per account changed, then the journal (when the venue keeps
its state across restarts).

The market: every tick of the price path (:meth:`Venue.tick`) sets the last price. Around it
the book is synthetic: ``levels`` levels a side, ``spread_bps`` apart at the top and
``level_bps`` apart below, ``level_qty`` each. A taker walks those levels (what it takes stays
taken until the next tick, or for a second when no tick comes). Each tick that trades at or
through resting limit orders fills them at their own prices, best price then oldest first, up
to ``level_qty`` a side in all, so a large order fills over several price moves. Stop
orders trigger on the last price. Participants' orders trade with the synthetic market, not
with each other.
"""

from __future__ import annotations

import secrets
import string
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, ROUND_UP, Decimal
from typing import Protocol

from sigma.venues.emulator.accounts import Account
from sigma.venues.emulator.klines import MINUTE_MS, CandleSeries
from sigma.venues.emulator.model import (
    BalanceEvent,
    FeeRule,
    MarketSpec,
    MarketTrade,
    OrderEvent,
    OrderRequest,
    OrderStatus,
    OrderType,
    Reason,
    Rejection,
    Side,
    TimeInForce,
    VenueEvent,
    VenueOrder,
    VenueTrade,
    ceil_to,
    floor_to,
)

__all__ = ["TAPE_LENGTH", "Journal", "Venue", "wall_clock_ms"]

_ZERO = Decimal(0)
#: public trades a market keeps (its tape)
TAPE_LENGTH = 1000
# The synthetic book refills what takers took at the next tick, or after this long without one
# (a market whose price stands still still has depth).
_REFILL_MS = 1000
_ID_CHARS = string.ascii_letters + string.digits


def wall_clock_ms() -> int:
    """Milliseconds since the epoch, from the wall clock."""
    return time.time_ns() // 1_000_000


class Journal(Protocol):
    """Where a venue that survives its restart writes each change."""

    def write(
        self,
        venue: str,
        orders: Sequence[VenueOrder],
        trades: Sequence[VenueTrade],
        balances: dict[str, dict[str, tuple[Decimal, Decimal]]],
    ) -> None:
        """Record the orders as they are now, the new trades and the changed balances."""
        ...


@dataclass
class _Market:
    spec: MarketSpec
    last: Decimal
    last_ms: int = 0
    taken: dict[tuple[Side, int], Decimal] = field(default_factory=dict)
    taken_ms: int = 0
    # By order id: orders compare by value, and a book is searched by identity.
    resting: dict[int, VenueOrder] = field(default_factory=dict)
    stops: dict[int, VenueOrder] = field(default_factory=dict)
    candles: CandleSeries = field(default_factory=CandleSeries)
    tape: deque[MarketTrade] = field(default_factory=lambda: deque(maxlen=TAPE_LENGTH))
    next_trade_id: int = 1


@dataclass
class _Change:
    events: list[OrderEvent] = field(default_factory=list)
    orders: dict[int, VenueOrder] = field(default_factory=dict)
    trades: list[VenueTrade] = field(default_factory=list)
    tape: list[MarketTrade] = field(default_factory=list)
    accounts: set[str] = field(default_factory=set)


class Venue:
    """One exchange: markets, accounts, orders and trades (see the module docstring)."""

    def __init__(
        self,
        name: str,
        markets: Sequence[MarketSpec],
        accounts: Sequence[Account],
        *,
        maker_fee: Decimal = Decimal("0.001"),
        taker_fee: Decimal = Decimal("0.001"),
        fee_rule: FeeRule = FeeRule.RECEIVED,
        unique_client_ids: bool = False,
        clock: Callable[[], int] = wall_clock_ms,
        journal: Journal | None = None,
    ) -> None:
        self.name = name
        self.maker_fee = maker_fee
        self.taker_fee = taker_fee
        self.fee_rule = fee_rule
        #: Upbit refuses an identifier used before; Binance only one used by an open order.
        self.unique_client_ids = unique_client_ids
        self.clock = clock
        self.journal = journal
        self.listeners: list[Callable[[VenueEvent], None]] = []
        self._markets = {m.symbol: _Market(m, m.start_price) for m in markets}
        self.accounts = {a.api_key: a for a in accounts}
        self._orders: dict[int, VenueOrder] = {}
        self._by_uuid: dict[str, int] = {}
        self._by_client: dict[tuple[str, str], int] = {}
        self._trades: list[VenueTrade] = []
        self._fills: dict[int, list[VenueTrade]] = {}
        # Per account, so a request's cost does not grow with everyone's history.
        self._account_orders: dict[str, dict[int, VenueOrder]] = {}
        self._open: dict[str, dict[int, VenueOrder]] = {}
        self._account_trades: dict[str, list[VenueTrade]] = {}
        self._next_order_id = 1
        self._next_fill_id = 1
        self._change: _Change | None = None

    # ----------------------------------------------------------------- reading
    @property
    def markets(self) -> dict[str, MarketSpec]:
        """Market rules by the venue's symbol."""
        return {symbol: m.spec for symbol, m in self._markets.items()}

    def now_ms(self) -> int:
        """The venue's clock (the wall clock, plus any skew a fault sets)."""
        return self.clock()

    def account(self, api_key: str) -> Account | None:
        return self.accounts.get(api_key)

    def market(self, symbol: str) -> MarketSpec:
        """The rules of ``symbol``; UNKNOWN_SYMBOL when the venue has no such market."""
        return self._market(symbol).spec

    def last_price(self, symbol: str) -> Decimal:
        return self._market(symbol).last

    def candles(self, symbol: str) -> CandleSeries:
        return self._market(symbol).candles

    def average_price(self, symbol: str, minutes: int) -> Decimal:
        """The volume-weighted price of the trades of the last ``minutes`` whole minutes and
        the current one; the last price when none traded (Binance's ``avgPrice``)."""
        m = self._market(symbol)
        since = self.clock() - minutes * MINUTE_MS
        candles = list(m.candles.folded(MINUTE_MS, start_ms=since - since % MINUTE_MS))
        volume = sum((c.volume for c in candles), _ZERO)
        quote = sum((c.quote_volume for c in candles), _ZERO)
        return quote / volume if volume else m.last

    def tape(self, symbol: str, limit: int = 500) -> list[MarketTrade]:
        """The latest public trades of ``symbol``, oldest first."""
        tape = self._market(symbol).tape
        return list(tape)[-limit:] if limit > 0 else []

    def book(
        self, symbol: str, depth: int = 20
    ) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        """(bids best first, asks best first): the synthetic levels less what was taken since
        the last tick, with the participants' resting limit orders added at their prices."""
        m = self._market(symbol)
        sides = []
        for book_side, taker in ((Side.BUY, Side.SELL), (Side.SELL, Side.BUY)):
            levels: dict[Decimal, Decimal] = {}
            for price, available in self._levels(m, taker):
                if available > 0:
                    levels[price] = levels.get(price, _ZERO) + available
            for order in m.resting.values():
                if order.side is book_side and order.price is not None:
                    levels[order.price] = levels.get(order.price, _ZERO) + order.remaining
            ordered = sorted(levels.items(), reverse=book_side is Side.BUY)
            sides.append(ordered[:depth])
        return sides[0], sides[1]

    def order(
        self,
        api_key: str,
        *,
        symbol: str | None = None,
        order_id: int | None = None,
        client_id: str | None = None,
        uid: str | None = None,
    ) -> VenueOrder:
        """One order of the account by venue id, client id or uuid; UNKNOWN_ORDER otherwise.
        A client id used more than once finds the latest order."""
        found: int | None = order_id
        if uid is not None:
            found = self._by_uuid.get(uid)
        elif client_id is not None:
            found = self._by_client.get((api_key, client_id))
        order = self._orders.get(found) if found is not None else None
        if order is None or order.account != api_key or (symbol and order.symbol != symbol):
            raise Rejection(Reason.UNKNOWN_ORDER, "order does not exist")
        return order

    def uuid_of(self, order: VenueOrder) -> str:
        """The order's uuid (Upbit's order id)."""
        return str(uuid.uuid5(uuid.NAMESPACE_OID, f"sigma-venue/{self.name}/{order.order_id}"))

    def open_orders(self, api_key: str, symbol: str | None = None) -> list[VenueOrder]:
        """The account's open orders (on ``symbol``), oldest first."""
        held = self._open.get(api_key, {}).values()
        return [o for o in held if symbol is None or o.symbol == symbol]

    def orders(self, api_key: str, symbol: str | None = None) -> list[VenueOrder]:
        """Every order of the account (on ``symbol``), oldest first."""
        held = self._account_orders.get(api_key, {}).values()
        return [o for o in held if symbol is None or o.symbol == symbol]

    def trades(self, api_key: str, symbol: str | None = None) -> list[VenueTrade]:
        """Every fill of the account (on ``symbol``), oldest first."""
        held = self._account_trades.get(api_key, [])
        return [t for t in held if symbol is None or t.symbol == symbol]

    def order_trades(self, order_id: int) -> list[VenueTrade]:
        """The fills of one order, oldest first."""
        return list(self._fills.get(order_id, ()))

    # ----------------------------------------------------------------- writing
    def place(self, api_key: str, request: OrderRequest) -> VenueOrder:
        """Accept ``request`` for the account, take what it can take now, rest the rest.

        Raises :class:`Rejection` (nothing changed) when a filter, the balance or the client
        id refuses it."""
        account = self._account(api_key)
        m = self._market(request.symbol)
        self._check(account, m, request)
        now = self.clock()
        order = VenueOrder(
            order_id=self._next_order_id,
            client_id=request.client_id or _random_id(),
            account=api_key,
            symbol=request.symbol,
            side=request.side,
            type=request.type,
            tif=request.tif,
            qty=request.qty,
            quote_qty=request.quote_qty,
            price=request.price if request.type.has_limit else None,
            stop_price=request.stop_price if request.type.is_stop else None,
            status=OrderStatus.NEW,
            created_ms=now,
            updated_ms=now,
            working=not request.type.is_stop,
            client_id_given=bool(request.client_id),
        )
        with self._changing() as change:
            if request.type is OrderType.MARKET:
                self._fill_market(account, m, order, change, new=True)
            else:
                self._lock(account, m, order)
                self._register(order, change)
                change.events.append(OrderEvent("NEW", order.snapshot()))
                if request.type.is_stop:
                    m.stops[order.order_id] = order
                else:
                    self._work_limit(account, m, order, change)
        return order

    def check_filters(self, api_key: str, request: OrderRequest) -> None:
        """Refuse ``request`` as the market's rules would (price, lot size, price band,
        notional, open-order count) and change nothing: what an order test checks before the
        matching engine, which alone sees balances, client ids and the book."""
        self._filters(self._account(api_key), self._market(request.symbol), request)

    def cancel(
        self,
        api_key: str,
        symbol: str | None,
        *,
        order_id: int | None = None,
        client_id: str | None = None,
        uid: str | None = None,
        cancel_id: str | None = None,
    ) -> VenueOrder:
        """Cancel one open order, the request naming itself ``cancel_id`` (one is made up
        without); UNKNOWN_ORDER when the order does not exist or is final."""
        order = self.order(api_key, symbol=symbol, order_id=order_id, client_id=client_id, uid=uid)
        if order.status.is_final:
            raise Rejection(Reason.UNKNOWN_ORDER, "order is not open")
        with self._changing() as change:
            order.cancel_id = cancel_id or _random_id()
            self._end(order, OrderStatus.CANCELED, change)
        return order

    def cancel_all(self, api_key: str, symbol: str | None = None) -> list[VenueOrder]:
        """Cancel every open order of the account (on ``symbol``), each with a made-up
        cancel id."""
        self._account(api_key)
        open_orders = self.open_orders(api_key, symbol)
        with self._changing() as change:
            for order in open_orders:
                order.cancel_id = _random_id()
                self._end(order, OrderStatus.CANCELED, change)
        return open_orders

    def tick(self, symbol: str, price: Decimal, qty: Decimal, time_ms: int | None = None) -> None:
        """A trade of the price path: the market moves to ``price`` (rounded to its tick);
        resting orders it reaches fill, stops it reaches trigger."""
        m = self._market(symbol)
        if not price.is_finite() or price <= 0:
            raise ValueError(f"{symbol}: price must be positive, got {price}")
        step = m.spec.tick_at(price)
        price = max(m.spec.min_price, (price / step).quantize(1, ROUND_HALF_EVEN) * step)
        now = self.clock() if time_ms is None else time_ms
        m.last, m.last_ms = price, now
        m.taken.clear()
        with self._changing() as change:
            self._print(m, price, qty, now, buyer_is_maker=False, change=change)
            self._fill_resting(m, price, change)
            self._trigger_stops(m, price, change)

    def load_candles(self, symbol: str, candles: Iterable[object]) -> None:
        """Preload one-minute candle history (``Candle`` objects) for ``symbol``."""
        from sigma.venues.emulator.klines import Candle

        m = self._market(symbol)
        m.candles.extend(c for c in candles if isinstance(c, Candle))
        last = m.candles.last
        if last is not None:
            m.last = last.close

    def restore(
        self,
        orders: Iterable[VenueOrder],
        trades: Iterable[VenueTrade],
        balances: dict[str, list[tuple[str, Decimal, Decimal]]],
    ) -> None:
        """Rebuild the state a journal recorded (orders, fills and balances)."""
        for order in orders:
            self._orders[order.order_id] = order
            self._index(order)
            self._next_order_id = max(self._next_order_id, order.order_id + 1)
            m = self._markets.get(order.symbol)
            # An account dropped from the settings since keeps its orders off the book: a fill
            # would have no wallet to go to.
            known = order.account in self.accounts
            if m is not None and known and not order.status.is_final:
                (m.resting if order.working else m.stops)[order.order_id] = order
        for trade in trades:
            self._trades.append(trade)
            self._fills.setdefault(trade.order_id, []).append(trade)
            self._account_trades.setdefault(trade.account, []).append(trade)
            self._next_fill_id = max(self._next_fill_id, trade.trade_id + 1)
        for api_key, rows in balances.items():
            account = self.accounts.get(api_key)
            if account is not None:
                account.restore(rows)

    # ----------------------------------------------------------------- internals
    def _account(self, api_key: str) -> Account:
        account = self.accounts.get(api_key)
        if account is None:
            raise Rejection(Reason.BAD_REQUEST, "unknown API key")
        return account

    def _market(self, symbol: str) -> _Market:
        m = self._markets.get(symbol)
        if m is None:
            raise Rejection(Reason.UNKNOWN_SYMBOL, f"invalid symbol {symbol!r}")
        return m

    def _check(self, account: Account, m: _Market, req: OrderRequest) -> None:
        self._filters(account, m, req)
        if req.client_id:
            previous = self._by_client.get((account.api_key, req.client_id))
            if previous is not None and (
                self.unique_client_ids or not self._orders[previous].status.is_final
            ):
                raise Rejection(Reason.DUPLICATE_ORDER, req.client_id)
        if req.type.is_stop and _triggered(req.type, req.side, req.stop_price, m.last):
            raise Rejection(Reason.WOULD_TRIGGER, "stop price would trigger immediately")
        if (
            req.type is OrderType.LIMIT_MAKER
            and req.price is not None
            and self._marketable(m, req.side, req.price)
        ):
            raise Rejection(Reason.WOULD_TAKE, "order would immediately match and take")

    def _filters(self, account: Account, m: _Market, req: OrderRequest) -> None:
        spec = m.spec
        if req.type.has_limit and req.price is None:
            raise Rejection(Reason.BAD_REQUEST, "price is required")
        if req.type.is_stop and req.stop_price is None:
            raise Rejection(Reason.BAD_REQUEST, "stopPrice is required")
        if req.qty is None and not (req.type is OrderType.MARKET and req.quote_qty is not None):
            raise Rejection(Reason.BAD_REQUEST, "quantity is required")
        for price in (req.price if req.type.has_limit else None, req.stop_price):
            if price is None:
                continue
            if price < spec.min_price or price > spec.max_price:
                raise Rejection(Reason.PRICE_FILTER, f"price {price} out of range")
            if price % spec.tick_at(price) != 0:
                raise Rejection(Reason.PRICE_FILTER, f"price {price} not a multiple of the tick")
        if req.qty is not None and (
            req.qty < spec.min_qty or req.qty > spec.max_qty or req.qty % spec.step_size != 0
        ):
            raise Rejection(Reason.LOT_SIZE, f"quantity {req.qty}")
        if spec.price_band is not None and req.type.has_limit and req.price is not None:
            average = self.average_price(spec.symbol, spec.avg_price_mins)
            down, up = spec.price_band
            if not average * down <= req.price <= average * up:
                raise Rejection(Reason.PERCENT_PRICE, f"price {req.price} vs average {average}")
        reference = req.price if req.type.has_limit else req.stop_price
        if reference is None:
            # A market order has no price: the last one, or the recent average where the
            # market says so (Binance's NOTIONAL, filters.md).
            reference = (
                self.average_price(spec.symbol, spec.avg_price_mins)
                if spec.market_notional_at_average
                else m.last
            )
        notional = (
            req.quote_qty
            if req.qty is None and req.quote_qty is not None
            else (req.qty or _ZERO) * reference
        )
        if notional < spec.min_notional:
            raise Rejection(Reason.MIN_NOTIONAL, f"notional {notional} < {spec.min_notional}")
        if spec.max_notional is not None and notional > spec.max_notional:
            raise Rejection(Reason.MAX_NOTIONAL, f"notional {notional} > {spec.max_notional}")
        if (
            req.type is not OrderType.MARKET
            and len(self.open_orders(account.api_key, req.symbol)) >= spec.max_open_orders
        ):
            raise Rejection(Reason.MAX_NUM_ORDERS, f"{spec.max_open_orders} open orders")
        if req.type.is_stop and spec.max_stop_orders is not None:
            held = self.open_orders(account.api_key, req.symbol)
            if sum(o.type.is_stop for o in held) >= spec.max_stop_orders:
                raise Rejection(Reason.MAX_NUM_STOPS, f"{spec.max_stop_orders} open stops")

    def _lock_rate(self) -> Decimal:
        # Upbit holds the fee with a buy's funds; Binance takes it from what the buy brings in.
        return self.taker_fee if self.fee_rule is FeeRule.QUOTE else _ZERO

    def _lock(self, account: Account, m: _Market, order: VenueOrder) -> None:
        assert order.qty is not None
        if order.side is Side.SELL:
            amount, asset = order.qty, m.spec.base
        else:
            price = order.price if order.price is not None else order.stop_price
            assert price is not None
            amount, asset = price * order.qty * (1 + self._lock_rate()), m.spec.quote
        account.lock(asset, amount)
        order.locked = amount

    def _register(self, order: VenueOrder, change: _Change) -> None:
        self._orders[order.order_id] = order
        self._next_order_id = order.order_id + 1
        self._index(order)
        change.orders[order.order_id] = order
        change.accounts.add(order.account)

    def _index(self, order: VenueOrder) -> None:
        self._by_uuid[self.uuid_of(order)] = order.order_id
        self._account_orders.setdefault(order.account, {})[order.order_id] = order
        if not order.status.is_final:
            self._open.setdefault(order.account, {})[order.order_id] = order
        if order.client_id:
            self._by_client[(order.account, order.client_id)] = order.order_id

    def _levels(self, m: _Market, taker: Side) -> list[tuple[Decimal, Decimal]]:
        """(price, available) of the synthetic side a ``taker`` order takes from, best first."""
        if m.taken and self.clock() - m.taken_ms >= _REFILL_MS:
            m.taken.clear()
        spec, last = m.spec, m.last
        tick = spec.tick_at(last)
        half = max(tick, last * spec.spread_bps / 20_000)
        gap = ceil_to(max(tick, last * spec.level_bps / 10_000), tick)
        levels = []
        for i in range(spec.levels):
            if taker is Side.BUY:
                price = ceil_to(last + half, tick) + gap * i
            else:
                price = floor_to(last - half, tick) - gap * i
                if price < spec.min_price:
                    break
            levels.append((price, spec.level_qty - m.taken.get((taker, i), _ZERO)))
        return levels

    def _marketable(self, m: _Market, side: Side, limit: Decimal) -> bool:
        best = self._levels(m, side)[0][0]
        return limit >= best if side is Side.BUY else limit <= best

    def _sweep(
        self,
        m: _Market,
        side: Side,
        *,
        qty: Decimal | None,
        quote: Decimal | None = None,
        limit: Decimal | None = None,
        take: bool = True,
    ) -> list[tuple[Decimal, Decimal]]:
        """Walk the synthetic side for a taker: (price, qty) per level it takes, up to
        ``qty`` (base) or ``quote`` (amount to spend) and not beyond ``limit``."""
        step = m.spec.step_size
        fills: list[tuple[Decimal, Decimal]] = []
        left_qty, left_quote = qty, quote
        for i, (price, available) in enumerate(self._levels(m, side)):
            if limit is not None and (price > limit if side is Side.BUY else price < limit):
                break
            if available <= 0:
                continue
            if left_qty is not None:
                q = min(left_qty, available)
            else:
                assert left_quote is not None
                q = floor_to(min(available * price, left_quote) / price, step)
            if q <= 0:
                break
            fills.append((price, q))
            if take:
                if not m.taken:
                    m.taken_ms = self.clock()
                m.taken[(side, i)] = m.taken.get((side, i), _ZERO) + q
            if left_qty is not None:
                left_qty -= q
                if left_qty <= 0:
                    break
            else:
                assert left_quote is not None
                left_quote -= price * q
        return fills

    def _fill_market(
        self, account: Account, m: _Market, order: VenueOrder, change: _Change, *, new: bool
    ) -> None:
        """Execute ``order`` against the synthetic book now, all or what the book holds."""
        fills = self._sweep(m, order.side, qty=order.qty, quote=order.quote_qty, take=False)
        cost = sum((p * q for p, q in fills), _ZERO)
        qty = sum((q for _, q in fills), _ZERO)
        if order.side is Side.BUY:
            need = cost
            if self.fee_rule is FeeRule.QUOTE:
                # Each fill's fee rounded up as _trade charges it, not the rate on the total.
                rate, places = self.taker_fee, m.spec.quote_precision
                need += sum((_fee(p * q * rate, places) for p, q in fills), _ZERO)
            asset, have = m.spec.quote, account.balance(m.spec.quote)[0]
        else:
            need, asset, have = qty, m.spec.base, account.balance(m.spec.base)[0]
        if need > have or not fills:
            if new:
                raise Rejection(
                    Reason.INSUFFICIENT_BALANCE if fills else Reason.NO_LIQUIDITY,
                    f"{asset} free {have}, {need} needed",
                )
            self._end(order, OrderStatus.EXPIRED, change)
            return
        if new:
            self._register(order, change)
            change.events.append(OrderEvent("NEW", order.snapshot()))
        # An amount to spend is done when it is spent down to less than a lot (FILLED, as
        # Binance reports it); it expires only when the book ran out first.
        depth = sum((a for _, a in self._levels(m, order.side) if a > 0), _ZERO)
        spent = order.qty is None and qty < depth
        self._sweep(m, order.side, qty=order.qty, quote=order.quote_qty, take=True)
        for n, (price, q) in enumerate(fills, 1):
            last = spent and n == len(fills)
            self._trade(account, m, order, price, q, maker=False, change=change, completes=last)
        if not order.status.is_final:
            self._end(order, OrderStatus.EXPIRED, change)

    def _work_limit(self, account: Account, m: _Market, order: VenueOrder, change: _Change) -> None:
        """A limit order going to the book: take what crosses, then rest or expire."""
        assert order.price is not None
        if order.tif is TimeInForce.FOK:
            fills = self._sweep(m, order.side, qty=order.remaining, limit=order.price, take=False)
            if sum((q for _, q in fills), _ZERO) < order.remaining:
                self._end(order, OrderStatus.EXPIRED, change)
                return
        for price, q in self._sweep(m, order.side, qty=order.remaining, limit=order.price):
            self._trade(account, m, order, price, q, maker=False, change=change)
        if order.status.is_final:
            return
        if order.tif is not TimeInForce.GTC:
            self._end(order, OrderStatus.EXPIRED, change)
            return
        m.resting[order.order_id] = order

    def _fill_resting(self, m: _Market, price: Decimal, change: _Change) -> None:
        # Best price first, then time: the queue a real book would keep.
        buys = sorted(
            (o for o in m.resting.values() if o.side is Side.BUY and price <= (o.price or _ZERO)),
            key=lambda o: (-(o.price or _ZERO), o.order_id),
        )
        sells = sorted(
            (o for o in m.resting.values() if o.side is Side.SELL and price >= (o.price or price)),
            key=lambda o: (o.price or _ZERO, o.order_id),
        )
        # One tick brings one level's worth of counterparties per side, shared down the
        # queue: two orders at one price do not both fill in full from the same tick.
        for queue in (buys, sells):
            budget = m.spec.level_qty
            for order in queue:
                q = floor_to(min(order.remaining, budget), m.spec.step_size)
                if q <= 0 or order.price is None:
                    break
                budget -= q
                account = self.accounts[order.account]
                self._trade(account, m, order, order.price, q, maker=True, change=change)

    def _trigger_stops(self, m: _Market, price: Decimal, change: _Change) -> None:
        for order in [
            o for o in m.stops.values() if _triggered(o.type, o.side, o.stop_price, price)
        ]:
            del m.stops[order.order_id]
            account = self.accounts[order.account]
            order.working = True
            order.updated_ms = self.clock()
            change.orders[order.order_id] = order
            change.events.append(OrderEvent("TRIGGERED", order.snapshot()))
            if order.type.has_limit:
                self._work_limit(account, m, order, change)
            else:
                # The held funds go back; the market order takes what it needs now.
                self._release(account, m, order)
                self._fill_market(account, m, order, change, new=False)

    def _trade(
        self,
        account: Account,
        m: _Market,
        order: VenueOrder,
        price: Decimal,
        qty: Decimal,
        *,
        maker: bool,
        change: _Change,
        completes: bool = False,
    ) -> None:
        spec = m.spec
        rate = self.maker_fee if maker else self.taker_fee
        notional = price * qty
        if self.fee_rule is FeeRule.RECEIVED and order.side is Side.BUY:
            fee_asset, fee = spec.base, _fee(qty * rate, spec.base_precision)
        else:
            fee_asset, fee = spec.quote, _fee(notional * rate, spec.quote_precision)
        if order.side is Side.BUY:
            if order.locked > 0 and fee_asset == spec.quote:
                assert order.price is not None
                # The fee held with the order caps the fee: rounding up must not take more.
                fee = min(fee, order.price * qty * (1 + self._lock_rate()) - notional)
            paid = notional + (fee if fee_asset == spec.quote else _ZERO)
            if order.locked > 0:
                assert order.price is not None and order.qty is not None
                share = order.price * qty * (1 + self._lock_rate())
                account.spend_locked(spec.quote, share)
                order.locked -= share
                account.credit(spec.quote, share - paid)
            else:
                account.debit(spec.quote, paid)
            account.credit(spec.base, qty - (fee if fee_asset == spec.base else _ZERO))
        else:
            if order.locked > 0:
                account.spend_locked(spec.base, qty)
                order.locked -= qty
            else:
                account.debit(spec.base, qty)
            account.credit(spec.quote, notional - fee)
        now = self.clock()
        trade = VenueTrade(
            trade_id=self._next_fill_id,
            order_id=order.order_id,
            client_id=order.client_id,
            account=order.account,
            symbol=order.symbol,
            side=order.side,
            price=price,
            qty=qty,
            quote_qty=notional,
            fee=fee,
            fee_asset=fee_asset,
            maker=maker,
            time_ms=now,
        )
        self._next_fill_id += 1
        self._trades.append(trade)
        self._fills.setdefault(order.order_id, []).append(trade)
        self._account_trades.setdefault(order.account, []).append(trade)
        order.filled += qty
        order.cum_quote += notional
        order.fees[fee_asset] = order.fees.get(fee_asset, _ZERO) + fee
        order.trade_count += 1
        order.updated_ms = now
        done = completes or (order.qty is not None and order.filled >= order.qty)
        order.status = OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED
        if done:
            self._unrest(m, order)
            self._release(account, m, order)
        change.trades.append(trade)
        change.orders[order.order_id] = order
        change.accounts.add(order.account)
        change.events.append(OrderEvent("TRADE", order.snapshot(), trade))
        # The maker of the print is our order when it rested, the synthetic book when it took.
        buyer_is_maker = (order.side is Side.BUY) == maker
        self._print(m, price, qty, now, buyer_is_maker=buyer_is_maker, change=change)

    def _print(
        self,
        m: _Market,
        price: Decimal,
        qty: Decimal,
        now: int,
        *,
        buyer_is_maker: bool,
        change: _Change,
    ) -> None:
        trade = MarketTrade(m.spec.symbol, m.next_trade_id, price, qty, now, buyer_is_maker)
        m.next_trade_id += 1
        m.tape.append(trade)
        m.candles.add(now, price, qty)
        change.tape.append(trade)

    def _release(self, account: Account, m: _Market, order: VenueOrder) -> None:
        if order.locked > 0:
            asset = m.spec.base if order.side is Side.SELL else m.spec.quote
            account.unlock(asset, order.locked)
            order.locked = _ZERO

    def _unrest(self, m: _Market, order: VenueOrder) -> None:
        """Take a finished order off the book and out of the open orders."""
        m.resting.pop(order.order_id, None)
        m.stops.pop(order.order_id, None)
        self._open.get(order.account, {}).pop(order.order_id, None)

    def _end(self, order: VenueOrder, status: OrderStatus, change: _Change) -> None:
        m = self._markets[order.symbol]
        self._unrest(m, order)
        self._release(self.accounts[order.account], m, order)
        order.status = status
        order.updated_ms = self.clock()
        if order.order_id in self._orders:
            change.orders[order.order_id] = order
        change.accounts.add(order.account)
        change.events.append(OrderEvent(status.value, order.snapshot()))

    class _Changing:
        def __init__(self, venue: Venue) -> None:
            self.venue = venue

        def __enter__(self) -> _Change:
            outer = self.venue._change
            self.nested = outer is not None
            if outer is None:
                self.venue._change = _Change()
            assert self.venue._change is not None
            return self.venue._change

        def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
            if self.nested:
                return
            change, self.venue._change = self.venue._change, None
            if exc_type is None and change is not None:
                self.venue._commit(change)

    def _changing(self) -> Venue._Changing:
        return Venue._Changing(self)

    def _commit(self, change: _Change) -> None:
        balances = {
            key: changed
            for key in sorted(change.accounts)
            if (changed := self.accounts[key].take_changed())
        }
        if self.journal is not None and (change.orders or change.trades or balances):
            self.journal.write(self.name, list(change.orders.values()), change.trades, balances)
        now = self.clock()
        events: list[VenueEvent] = [*change.tape, *change.events]
        events.extend(BalanceEvent(key, rows, now) for key, rows in balances.items())
        for event in events:
            for listener in list(self.listeners):
                listener(event)


def _triggered(kind: OrderType, side: Side, stop: Decimal | None, last: Decimal) -> bool:
    if stop is None:
        return False
    rising = (kind in (OrderType.STOP_LOSS, OrderType.STOP_LOSS_LIMIT)) == (side is Side.BUY)
    return last >= stop if rising else last <= stop


def _fee(amount: Decimal, places: int) -> Decimal:
    # The venue rounds a fee up to the asset's precision: it never charges less than the rate.
    return amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_UP)


def _random_id() -> str:
    return "".join(secrets.choice(_ID_CHARS) for _ in range(22))

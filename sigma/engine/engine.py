"""The one event loop for backtest, paper and live.

Per bar: fill the pending orders that the bar reaches (at its open, or through its range for
limit/stop orders), then the protective orders it triggers (stop-loss, take-profit, trailing
stop: sigma/engine/protective.py), mark the account at the close (liquidating it when its
margin is breached, see `sigma.engine.margin`), then let the strategy act. A backtest calls
`step` for each bar of a history; paper and live call `on_bar` as bars complete. The strategy
sees the same data views and the same account API in every mode.

The strategy acts from backtesting.py's first bar on (`Strategy.decision_start`): the bar
after the last one at which one of its indicators is still NaN-led (bar 1 without
indicators). Before it, the account works as on any bar (fills, protection, margin) but
`on_bar` is not called. A history given whole counts an indicator with no value at all as
ready, as backtesting.py does; bars arriving one by one (paper, live, after a warm-up on
stored bars) wait until every indicator has a value, and the first bars held are the only
ones ever skipped.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd

from sigma.domain import (
    Bar,
    Fill,
    Instrument,
    OpenLot,
    Order,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    Trade,
)
from sigma.domain.orders import LIQUIDATION, SIGNAL
from sigma.domain.text import clip
from sigma.engine.collector import collector_relaxed, promote_kept
from sigma.engine.fill_model import FillModel, FillTiming
from sigma.engine.history_check import check_history
from sigma.engine.margin import NEVER, MarginGuard, MarginModel
from sigma.engine.portfolio import Portfolio
from sigma.engine.protective import Guard, ProtectiveBook, protects
from sigma.strategies.base import Strategy
from sigma.strategies.series import Cursor, Data

ProgressFn = Callable[[int, int], None]
BarFn = Callable[[int], None]
StepFn = Callable[[], None]

# A Decimal compares with a Decimal in half the time it takes with an int.
_ZERO = Decimal(0)
_ONE = Decimal(1)
# Enum members read per order and fill, bound once: `OrderType.MARKET` goes through the
# enum machinery (several times the cost of a plain global in Python 3.11).
_MARKET = OrderType.MARKET
_LIMIT = OrderType.LIMIT
_STOP = OrderType.STOP
_FILLED = OrderStatus.FILLED
_NEW = OrderStatus.NEW
_CANCELLED = OrderStatus.CANCELLED
_GTC = TimeInForce.GTC
_BUY = Side.BUY


class Cancelled(Exception):
    """The run was cancelled through its cancel event."""


class EntryGate(Protocol):
    """Says whether an order that opens or adds to a position may go ahead (an ML model's
    veto, for example). Consulted with the bars up to the deciding one only; never asked
    about an order that reduces or closes a position."""

    reason: str
    """Why a vetoed order was rejected, for logs and counts."""

    def allows(self, order: Order, data: Data) -> bool:
        """True to let `order` through, decided on `data` up to its cursor."""
        ...


def opens_exposure(order: Order, held: Decimal) -> bool:
    """True when `order` opens or adds to a position given the signed quantity `held`
    (an order sized from equity always does: it is an entry, after any close)."""
    if order.reduce_only:
        return False
    if held * order.side.sign >= 0 or order.qty is None:
        return True
    return order.qty > abs(held)


class StrategyFailed(Exception):
    """A strategy raised during a backtest: in `init` (``bar`` None) or while the engine
    stepped through a bar; names where.

    The message reads ``strategy 'x' failed on BTC at bar 17 (2024-01-01T17:00:00+00:00):
    ZeroDivisionError: division by zero`` (``... failed on BTC in init(): ...``); the original
    exception is the ``__cause__``."""

    def __init__(
        self,
        strategy: str,
        symbol: str,
        error: Exception,
        bar: int | None = None,
        ts: datetime | None = None,
    ):
        self.strategy = strategy
        self.symbol = symbol
        self.bar = bar
        self.ts = ts
        self.error = error
        where = "in init()" if bar is None or ts is None else f"at bar {bar} ({ts.isoformat()})"
        super().__init__(
            f"strategy {strategy!r} failed on {symbol} {where}: "
            f"{type(error).__name__}: {clip(str(error))}"
        )


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """Exact account state at a bar's close (recorded on request, for audits and tests)."""

    bar: int
    cash: Decimal
    qty: Decimal
    price: Decimal
    equity: Decimal


@dataclass(slots=True)
class EngineConfig:
    """Account and execution settings of a run.

    ``instruments`` and ``can_short`` describe a real venue and are read by the live engine
    only: it sizes on an instrument's lot step and refuses what is under its minimums, and
    without ``can_short`` (a spot venue) a short signal means flat. A backtest ignores them."""

    initial_cash: Decimal = Decimal(10_000)
    fill_model: FillModel = field(default_factory=FillModel)
    # The share of the free equity an order sized as a fraction commits: a strategy's
    # `go_long()` puts `stake` of the account at risk (1: all of it, as backtesting.py does).
    stake: Decimal = Decimal(1)
    record_ledger: bool = False
    # Keep every order and fill in `Engine.orders` and `Engine.fills` (the look-ahead check,
    # a simulation and `BacktestResult.fills` read them). Off, an order or fill is dropped
    # with its last reference, and a run whose trades and statistics are all that is read
    # holds its trades only: at a million bars the orders and fills were ~60 MB of the peak.
    keep_records: bool = True
    instruments: Mapping[str, Instrument] = field(default_factory=dict)
    can_short: bool = True
    # Asked before an order opens or adds to a position; a veto rejects the order (None:
    # every order goes ahead).
    entry_gate: EntryGate | None = None
    # What the account may borrow and when it is liquidated (default: margin at leverage 1,
    # liquidated at equity <= 0, as backtesting.py).
    margin: MarginModel = field(default_factory=MarginModel)


# Bar prices as exact Decimals, by float: prices repeat (a tick grid), and the conversion
# through text costs ~0.4 µs. Positive prices only (0.0 and -0.0 are one key with two texts,
# NaN is no key); emptied when full, so a process moving to other prices keeps up.
_PRICES: dict[float, Decimal] = {}
_MAX_PRICES = 16_384


def _dec(value: float) -> Decimal:
    # repr() gives the shortest string that round-trips, so 100.34 becomes Decimal('100.34').
    exact = _PRICES.get(value)
    if exact is None:
        exact = Decimal(repr(float(value)))
        if value > 0:
            if len(_PRICES) >= _MAX_PRICES:
                _PRICES.clear()
            _PRICES[value] = exact
    return exact


class Engine:
    """Runs one strategy on one symbol against a simulated exchange (backtest and paper)."""

    def __init__(self, strategy: Strategy, symbol: str, data: Data, config: EngineConfig):
        self.strategy = strategy
        self.symbol = symbol
        self.data = data
        self.config = config
        self.fill_model = config.fill_model
        self.portfolio = Portfolio(cash=config.initial_cash)
        self.pending: list[Order] = []
        self.orders: list[Order] = []
        """Every order submitted (with `config.keep_records`, the default; else none)."""
        self._keep_records = config.keep_records
        self._filled = 0
        """Fills made by `_execute` so far (kept or not)."""
        self._last_fill: Fill | None = None
        self.fills: list[Fill] = []
        """Every fill (with `config.keep_records`; else none)."""
        self.ledger: list[LedgerRow] = []
        self.vetoes = 0
        """Orders the entry gate rejected."""
        self.book = ProtectiveBook()
        """Protective orders and OCO groups (see sigma/engine/protective.py)."""
        # Set by the first order that needs more than the plain matching (a time in force
        # other than GTC, a bar count, an OCO group, a protective order): the checks it
        # needs run from then on, and strategies that place none pay nothing for them.
        self._managed = False
        self._expires: dict[str, int] = {}
        """Last bar each order placed with `bars` may fill on, by client order id."""
        self.margin = MarginGuard(config.margin, f"{strategy.name} {symbol}")
        self.halted = False
        """The account was liquidated: the strategy acts no more."""
        # The next bar whose close the margin must be looked at on (a fill resets it).
        self._margin_due = NEVER
        self._last_price: Decimal | None = None
        strategy.bind(symbol, data, self)
        # The first bar the strategy acts on (None: not known yet, while bars arrive live).
        self._acts_from = strategy.decision_start(final=True) if len(data) else None

    # --- StrategyContext -------------------------------------------------------------------
    def submit(self, order: Order) -> None:
        """Accept an order from the strategy; it fills on a later bar (or this close)."""
        i = self.data.cursor.i
        order.created_at = self._bar_time(i)
        if self._keep_records:
            self.orders.append(order)
        if order.reason != SIGNAL and order.is_protective:
            self._hold(order, i)
            return
        # Without an entry gate nothing is vetoed: the position is not even looked up.
        if (
            self.config.entry_gate is None
            or self._veto(order, self.portfolio.qty(order.symbol)) is None
        ):
            self.pending.append(order)
            if order.tif is not _GTC or order.bars is not None or order.oco:
                self._managed = True
                if order.bars is not None:
                    self._expires[order.client_order_id] = i + order.bars
                if order.oco:
                    self.book.join(order)

    def _hold(self, order: Order, i: int) -> None:
        """Take protective `order`: waiting for its entry, or armed on the position now."""
        self._managed = True
        guard = self.book.add(order)
        if order.parent_id:
            parent = next((o for o in self.pending if o.client_order_id == order.parent_id), None)
            if parent is None:  # the entry was refused, or is no order of ours
                self.book.cancel(order)
                return
            self.book.wait(guard)
            return
        self._arm_on_position(guard, i + 1, self.position_qty(order.symbol))

    def _arm_on_position(self, guard: Guard, active_from: int, held: Decimal) -> None:
        """Arm a protective order without a parent on the position `held`, from the latest
        price; cancelled at once when there is nothing to protect."""
        if not protects(guard.order, held):
            self.book.cancel(guard.order)
            return
        price = self.last_price if self.data.cursor.i >= 0 else guard.level
        self.book.arm(guard, active_from, price, None)

    def cancel_pending(self, symbol: str) -> None:
        """Cancel the unfilled orders of `symbol` (the protection armed on its position
        stays; protection waiting for a cancelled entry goes with it)."""
        if not self.pending:
            return
        keep = []
        for order in self.pending:
            if order.symbol == symbol:
                order.status = OrderStatus.CANCELLED
                if self._managed:
                    self._ended(order)
            else:
                keep.append(order)
        self.pending = keep

    def cancel_order(self, order: Order) -> bool:
        """Cancel one open order (a pending one, or a protective one); False when it is not
        open here."""
        if not order.is_open:
            return False
        if order.is_protective:
            return self.book.cancel(order)
        if order not in self.pending:
            return False
        self.pending.remove(order)
        order.status = OrderStatus.CANCELLED
        self._ended(order)
        return True

    def bars_left(self, order: Order) -> int | None:
        """Bars `order` (placed with `bars`) may still fill on after the current one."""
        last = self._expires.get(order.client_order_id)
        return None if last is None else last - self.data.cursor.i

    def restore_order(self, order: Order, bars_left: int | None = None) -> None:
        """Take back a pending order an account kept (a simulation's restart), with the bars
        it may still fill on."""
        self.orders.append(order)
        self.pending.append(order)
        if order.tif is not _GTC or bars_left is not None or order.oco:
            self._managed = True
            if bars_left is not None:
                self._expires[order.client_order_id] = self.data.cursor.i + bars_left
            if order.oco:
                self.book.join(order)

    def restore_guard(self, guard: Guard) -> None:
        """Take back a protective order an account kept (armed, or waiting for its entry)."""
        self._managed = True
        self.orders.append(guard.order)
        self.book.restore(guard)

    def _ended(self, order: Order) -> None:
        """`order` ended unfilled: its waiting protection and its OCO membership go."""
        self.book.parent_dead(order.client_order_id)
        if order.oco:
            self.book.leave_group(order)
        self._expires.pop(order.client_order_id, None)

    def open_orders(self, symbol: str) -> list[Order]:
        """Orders of `symbol` that can still fill: pending ones, then protective ones."""
        mine = [o for o in self.pending if o.symbol == symbol and o.is_open]
        return mine + [o for o in self.book.orders() if o.symbol == symbol]

    def protection(self, symbol: str) -> list[Order]:
        """The protective orders armed on the position in `symbol`."""
        return [g.order for g in self.book.armed if g.order.symbol == symbol]

    def open_trades(self, symbol: str) -> list[OpenLot]:
        """The open position in `symbol` as a trade (none when flat)."""
        lot = self.portfolio.open_lot(symbol)
        return [] if lot is None else [lot]

    def closed_trades(self, symbol: str) -> list[Trade]:
        """The round trips closed in `symbol`."""
        return [t for t in self.portfolio.trades if t.symbol == symbol]

    def position_qty(self, symbol: str) -> Decimal:
        """Signed quantity held."""
        return self.portfolio.qty(symbol)

    def equity(self) -> Decimal:
        """Equity marked at the latest close (cash before the first bar)."""
        if self.data.cursor.i < 0:
            return self.portfolio.cash
        return self.portfolio.equity({self.symbol: self.last_price})

    def cash(self) -> Decimal:
        """Cash balance."""
        return self.portfolio.cash

    def _veto(self, order: Order, held: Decimal) -> str | None:
        """Ask the entry gate about an order that opens or adds exposure: its reason when it
        vetoes (the order is then rejected and counted), else None."""
        gate = self.config.entry_gate
        if gate is None or not opens_exposure(order, held) or gate.allows(order, self.data):
            return None
        order.status = OrderStatus.REJECTED
        self.vetoes += 1
        return gate.reason

    # --- the loop --------------------------------------------------------------------------
    def step(self, i: int) -> None:
        """Process bar `i` of `self.data`: fills, mark-to-market, strategy, close fills."""
        self.run(i, i + 1)

    def run(self, start: int, stop: int, on_fills: BarFn | None = None) -> None:
        """Process bars `start` to `stop - 1` as `step` does each, calling `on_fills(i)` after
        a bar `i` on which orders filled (the account changed)."""
        first = stop if self._acts_from is None else min(max(self._acts_from, start), stop)
        if start < first:  # the strategy's indicators are still warming up
            self._run(start, first, _wait, on_fills)
        if first < stop:
            self._run(first, stop, self.strategy.on_bar, on_fills)

    def _run(self, start: int, stop: int, on_bar: StepFn, on_fills: BarFn | None) -> None:
        """`run` over bars `start` to `stop - 1` with `on_bar` as the strategy's decision."""
        cursor = self.data.cursor
        at_close = self.fill_model.timing is FillTiming.CLOSE
        record = self.config.record_ledger
        every_bar = at_close or record
        armed = self.book.armed  # mutated in place, never rebound
        if self.halted:
            self._idle(start, stop, record)
            return
        for i in range(start, stop):
            cursor.i = i
            self._last_price = None
            if self.pending or armed or every_bar or i >= self._margin_due:
                self._full_bar(i, on_bar, at_close, record, on_fills)
                if self.halted:
                    self._idle(i + 1, stop, record)
                    return
            else:  # most bars: nothing to fill, record or check, only the strategy's decision
                on_bar()

    def _full_bar(
        self, i: int, on_bar: StepFn, at_close: bool, record: bool, on_fills: BarFn | None
    ) -> None:
        before = self._filled
        if self.pending:
            self._match(i, at_close=False)
        if self.book.armed:
            self._protect(i)
        if i >= self._margin_due:
            self._check_margin(i)
        if not self.halted:
            on_bar()
            if at_close and self.pending:
                self._match(i, at_close=True)
        if record:
            self._record(i)
        if on_fills is not None and self._filled != before:
            on_fills(i)

    def _idle(self, start: int, stop: int, record: bool) -> None:
        """Bars after a liquidation: the strategy acts no more; the flat account is marked."""
        for i in range(start, stop):
            self.data.cursor.i = i
            self._last_price = None
            if record:
                self._record(i)

    def on_bar(self, bar: Bar) -> None:
        """Live/paper entry point: append a completed bar and run `step` on it."""
        self.data.append(
            np.datetime64(bar.ts.replace(tzinfo=None), "ns"),
            {
                "open": float(bar.open),
                "high": float(bar.high),
                "low": float(bar.low),
                "close": float(bar.close),
                "volume": float(bar.volume),
            },
        )
        self.strategy.refresh_indicators()
        self._held_more()
        self.step(len(self.data) - 1)

    def warm_up(self, history: pd.DataFrame) -> None:
        """Hold the bars of `history` (a bar frame, oldest first) as if they had been seen
        live, without acting on them: the strategy's indicators start where an uninterrupted
        run's are, so its first decision is the same."""
        stamps = pd.DatetimeIndex(history.index).tz_convert("UTC").tz_localize(None)
        columns = ("open", "high", "low", "close", "volume")
        rows = history.loc[:, list(columns)].itertuples(index=False, name=None)
        for ts, row in zip(stamps.to_numpy(dtype="datetime64[ns]"), rows, strict=True):
            self.data.append(ts, dict(zip(columns, row, strict=True)))
        self.data.cursor.i = len(self.data) - 1
        self.strategy.refresh_indicators()
        self._held_more()

    def _held_more(self) -> None:
        """Bars arrived: the first bar the strategy acts on, once its indicators all have a
        value (known once, it stays: only the first bars held wait)."""
        if self._acts_from is None:
            self._acts_from = self.strategy.decision_start(final=False)

    def drop_oldest(self, count: int) -> None:
        """Forget the first `count` bars held (a bounded live or paper history); the bar
        numbers orders wait on (expiries, protection) move with them."""
        count = min(count, len(self.data))
        self.data.drop_oldest(count)
        if self._acts_from is not None:
            self._acts_from = max(self._acts_from - count, 0)
        if count and self._managed:
            for coid in self._expires:
                self._expires[coid] -= count
            self.book.shift(count)

    @property
    def last_price(self) -> Decimal:
        """Close of the current bar as an exact Decimal."""
        if self._last_price is None:
            self._last_price = _dec(self.data.value("close", self.data.cursor.i))
        return self._last_price

    def _bar_time(self, i: int) -> datetime:
        """Time of bar `i` (of the first bar before it) as an aware UTC datetime."""
        return self.data.time(i if i > 0 else 0)

    def _match(self, i: int, *, at_close: bool) -> None:
        if at_close:
            open_ = high = low = self.last_price
        else:
            open_ = _dec(self.data.value("open", i))
            high = low = open_  # market orders read the open only; the range is read below
        ranged = at_close
        managed = self._managed
        slips = bool(self.fill_model.slippage_bps)
        still_pending: list[Order] = []
        for order in self.pending:
            if managed:
                if order.status is not _NEW:  # cancelled by an OCO sibling's fill this bar
                    continue
                if order.tif is not _GTC:
                    self._match_once(order, i, open_, at_close)
                    continue
            if order.type is _MARKET:
                price = open_
            else:
                if at_close:
                    still_pending.append(order)
                    continue
                if not ranged:
                    high, low = _dec(self.data.value("high", i)), _dec(self.data.value("low", i))
                    ranged = True
                triggered = self.fill_model.trigger_price(order, open_, high, low)
                if triggered is None:
                    still_pending.append(order)
                    continue
                price = triggered
            at_open = managed and price == open_ and not at_close
            if slips and order.type is not _LIMIT:
                price = self.fill_model.slipped(order.side, price)
            self._execute(order, price, i)
            if managed:
                self._after_fill(order, i, at_open)
        if managed:
            if self._expires and not at_close:
                self._expire(i, still_pending)
            still_pending = [o for o in still_pending if o.status is _NEW]
        self.pending = still_pending

    def _match_once(self, order: Order, i: int, price: Decimal, at_close: bool) -> None:
        """An IOC or FOK order's one chance: `price`, the first it meets (the open, or the
        close when market orders fill at the close). What it does not fill is cancelled."""
        if order.type is _LIMIT:
            limit = order.limit_price
            assert limit is not None
            if price > limit if order.side is _BUY else price < limit:
                order.status = _CANCELLED
                self._ended(order)
                return
        else:
            price = self.fill_model.slipped(order.side, price)
        self._execute(order, price, i)
        self._after_fill(order, i, not at_close)

    def _expire(self, i: int, pending: list[Order]) -> None:
        """Cancel the orders whose last bar was `i`."""
        expires = self._expires
        for order in pending:
            last = expires.get(order.client_order_id)
            if last is not None and last <= i and order.status is _NEW:
                order.status = _CANCELLED
                self._ended(order)

    def _protect(self, i: int) -> None:
        """Fill the protective orders bar `i` triggers, then move the trailing stops."""
        data = self.data
        open_ = _dec(data.value("open", i))
        high, low = _dec(data.value("high", i)), _dec(data.value("low", i))
        slipped = self.fill_model.slipped
        for guard, price in self.book.bar_triggers(i, open_, high, low):
            order = guard.order
            if order.type is not _LIMIT:
                price = slipped(order.side, price)
            self._execute(order, price, i)
            self._after_fill(order, i, True)
        self.book.end_bar(i, high, low)

    def _after_fill(self, order: Order, i: int, at_open: bool) -> None:
        """After `order` filled (or was rejected) on bar `i`: its OCO group, the protection
        waiting for it, and the protection of a position it closed or flipped."""
        book = self.book
        if order.status is not _FILLED:  # rejected when it came to fill
            book.drop(order)
            self._ended(order)
            return
        self._expires.pop(order.client_order_id, None)
        siblings = book.filled(order) if order.is_protective else book.siblings(order)
        for sibling in siblings:
            self._cancel_sibling(sibling)
        if order.client_order_id in book.waiting:
            assert self._last_fill is not None  # `order` has just filled
            price = self._last_fill.price
            active_from = i if at_open else i + 1  # a fill inside the bar: from the next
            armed = book.parent_filled(order.client_order_id, order.filled_qty, price, active_from)
            if not at_open and order.type is _STOP and self._on_to_profit(armed, i):
                for guard in armed:
                    guard.active_from = i
        if book.armed:
            book.stale(self.portfolio.qty(order.symbol))

    def _on_to_profit(self, guards: list[Guard], i: int) -> bool:
        """Whether bar `i`, in whose range a stop entry protected by `guards` filled, reached
        one of their take-profits and none of their stops. The take-profit lies beyond the
        entry's stop, the same way from the open, so the price met the stop first: the
        take-profit came after the fill and fills on this bar (backtesting.py's one exception
        to protecting a fill inside a bar from the next bar only)."""
        high, low = _dec(self.data.value("high", i)), _dec(self.data.value("low", i))
        profit = False
        for guard in guards:
            long = guard.order.side is not _BUY  # it sells: it protects a long
            if guard.is_stop:
                if guard.reached(low if long else high):
                    return False
            elif guard.reached(high if long else low):
                profit = True
        return profit

    def _cancel_sibling(self, order: Order) -> None:
        """Cancel `order` because another order of its OCO group filled."""
        if order.is_protective:
            self.book.cancel(order)
            return
        order.status = _CANCELLED  # `_match` drops it from `pending`
        self._ended(order)

    def _execute(self, order: Order, price: Decimal, i: int) -> None:
        qty = self._resolve_qty(order, price)
        if qty <= _ZERO:
            order.status = OrderStatus.REJECTED
            return
        fill = Fill(
            order.client_order_id,
            order.symbol,
            order.side,
            qty,
            price,
            self.fill_model.fee(qty, price),
            self.data.time(i),  # a bar processed: i >= 0
            order.strategy,
        )
        self.portfolio.apply(fill, i, order.tag, order.reason)
        self._filled += 1
        self._last_fill = fill
        if self._keep_records:
            self.fills.append(fill)
        order.filled_qty = qty
        order.status = _FILLED
        self._margin_due = i  # the account changed: look at it on this bar's close

    def _resolve_qty(
        self, order: Order, price: Decimal, portfolio: Portfolio | None = None
    ) -> Decimal:
        """Units `order` trades at `price` given the account (`portfolio`, default: ours)."""
        account = portfolio or self.portfolio
        held = account.qty(order.symbol)
        if order.reduce_only:
            if held >= _ZERO if order.side is _BUY else held <= _ZERO:
                return _ZERO  # nothing to reduce in that direction
            return abs(held) if order.qty is None else min(order.qty, abs(held))
        prices = self._prices(order.symbol, price)
        if order.qty is not None:
            qty = self.fill_model.round_qty(order.qty)
        else:
            assert order.equity_fraction is not None
            share = order.equity_fraction * self.config.stake
            free = self.margin.model.buying_power(account, prices)
            qty = self.fill_model.affordable_qty(free * share, price)
            if share <= _ONE and (order.side is _BUY or self.margin.can_short):
                return qty  # sized within the buying power: nothing to cap
        return self.margin.cap(order, qty, price, account, prices, self.fill_model)

    def _prices(self, symbol: str, price: Decimal) -> dict[str, Decimal]:
        """The marks an order of `symbol` at `price` is sized against (every held symbol)."""
        return {symbol: price}

    # --- margin ----------------------------------------------------------------------------
    def _check_margin(self, i: int) -> None:
        """At bar `i`'s close: charge funding, liquidate when the margin is breached, else
        schedule the next look."""
        guard = self.margin
        held = self.portfolio.qty(self.symbol)
        if not held:  # a flat account pays no funding, and breaches only when it owes
            # (a close at the open that lost more than the account had: out of money)
            reason = guard.model.breach(self.portfolio.cash, _ZERO)
            if reason is not None:
                self._liquidate(i, reason)
                return
            self._margin_due = NEVER
            return
        if guard.funded and (rate := guard.funding_rate(i)) is not None:
            guard.fund(self.portfolio, self.symbol, self.last_price, rate)
            self._account_changed()
        limit = guard.threshold(self.portfolio.cash, held)
        if limit is not None and guard.crossed(limit, held, self.data.value("close", i)):
            reason = guard.model.breach(self.equity(), abs(held) * self.last_price)
            if reason is not None:
                self._liquidate(i, reason)
                return
        self._margin_due = guard.next_due(i, held, limit)

    def _account_changed(self) -> None:
        """Cash changed outside a fill (funding); the live engine drops its projection."""

    def _liquidate(self, i: int, reason: str) -> None:
        """Close the position at bar `i`'s close, write off a deficit, stop trading."""
        price = self.last_price
        self.cancel_pending(self.symbol)
        self.close_out(i, price)
        shortfall = max(-self.portfolio.cash, _ZERO)
        self.portfolio.cash += shortfall
        self.margin.liquidated(i, self._bar_time(i), reason, price, shortfall)
        self.halted = True

    def close_out(self, i: int, price: Decimal) -> None:
        """Close the whole position at `price` on bar `i` (a liquidation: no slippage)."""
        held = self.portfolio.qty(self.symbol)
        if not held:
            return
        order = Order(
            symbol=self.symbol,
            side=Side.SELL if held > 0 else Side.BUY,
            qty=abs(held),
            reduce_only=True,
            strategy=self.strategy.name,
            tag="liquidation",
            reason=LIQUIDATION,
        )
        order.created_at = self._bar_time(i)
        if self._keep_records:
            self.orders.append(order)
        self._execute(order, price, i)

    def _record(self, i: int) -> None:
        price = self.last_price
        qty = self.portfolio.qty(self.symbol)
        self.ledger.append(
            LedgerRow(i, self.portfolio.cash, qty, price, self.portfolio.cash + qty * price)
        )

    # --- results ---------------------------------------------------------------------------
    @property
    def trades(self) -> list[Trade]:
        """Closed round trips so far."""
        return self.portfolio.trades


def _wait() -> None:
    """The decision on a bar before the strategy's first: none."""


def frame_to_data(bars: pd.DataFrame) -> Data:
    """Wrap a bar frame (UTC index `ts`; open, high, low, close, volume) for the engine;
    `BadHistory` for a frame no run can be made on (see `check_history`)."""
    index = pd.DatetimeIndex(bars.index).tz_convert("UTC")
    if index.unit != "ns":  # (as_unit copies even when the unit is already ns)
        index = index.as_unit("ns")
    # The instants as naive UTC nanoseconds: a view of the index's own integers (a bar
    # frame's index is in ns), where dropping the zone copied them (8 MB a million bars).
    ts = index.asi8.view("datetime64[ns]")
    columns = {name: bars[name].to_numpy(dtype=np.float64) for name in bars.columns}
    check_history(bars, columns)
    return Data(columns, ts, Cursor())


def empty_data() -> Data:
    """Storage for a live run that starts with no history."""
    zeros = np.zeros(0, dtype=np.float64)
    return Data(
        {name: zeros for name in ("open", "high", "low", "close", "volume")},
        np.zeros(0, dtype="datetime64[ns]"),
        Cursor(),
    )


def run_engine(
    engine: Engine,
    *,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    progress_every: int = 10_000,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Step through every bar of the engine's data.

    Returns the equity curve marked at each close and whether a position was held there. An
    exception raised while stepping (by the strategy's code) becomes `StrategyFailed`."""
    n = len(engine.data)
    engine.margin.freeze(engine.data.column("close"))  # a history: its closes are final
    # The account as floats from each bar on which it changed; the curve is drawn from these
    # afterwards instead of being written bar by bar.
    changed_at = [0]
    cash_f = [float(engine.portfolio.cash)]
    qty_f = [0.0]

    def mark(i: int) -> None:
        if changed_at[-1] == i:  # bar 0: replaces the opening state
            del changed_at[-1], cash_f[-1], qty_f[-1]
        changed_at.append(i)
        cash_f.append(float(engine.portfolio.cash))
        qty_f.append(float(engine.portfolio.qty(engine.symbol)))

    def run(start: int, stop: int) -> None:
        try:
            engine.run(start, stop, mark)
        except Exception as exc:
            i = engine.data.cursor.i
            raise StrategyFailed(
                engine.strategy.name, engine.symbol, exc, i, engine._bar_time(i)
            ) from exc

    def kept() -> int:  # the tracked objects the run keeps: its records
        return len(engine.orders) + len(engine.fills) + len(engine.portfolio.trades)

    done = 0
    made = kept()
    cursor = engine.data.cursor
    cursor.final = True  # a history: its bars do not change while the run steps
    try:
        with collector_relaxed():  # the run's orders, fills and trades all stay alive
            for i in range(0, n, progress_every):  # cancel and progress are looked at after bar i
                run(done, i + 1)
                done = i + 1
                # Between stretches: the young generation, when it is (nearly) all records of the
                # run, goes to the oldest unwalked (see sigma.engine.collector).
                if promote_kept(kept() - made):
                    made = kept()
                if cancel is not None and cancel.is_set():
                    raise Cancelled(f"cancelled at bar {i} of {n}")
                if progress is not None:
                    progress(i, n)
            run(done, n)
            promote_kept(kept() - made)
    finally:
        cursor.final = False
    # Before the result is built: the statistics and the exports reuse the memory.
    engine.strategy.drop_float_copies()
    if progress is not None:
        progress(n, n)
    lengths = np.diff(np.append(changed_at, n))
    cash = np.repeat(np.asarray(cash_f, dtype=np.float64), lengths)
    qty = np.repeat(np.asarray(qty_f, dtype=np.float64), lengths)
    in_market = qty != 0.0
    # cash + qty * close, in the arrays already made (no temporary of a bar each).
    np.multiply(qty, engine.data.column("close"), out=qty)
    return np.add(cash, qty, out=cash), in_market


__all__ = [
    "Cancelled",
    "Engine",
    "EngineConfig",
    "EntryGate",
    "LedgerRow",
    "Side",
    "StrategyFailed",
    "empty_data",
    "frame_to_data",
    "opens_exposure",
    "run_engine",
]

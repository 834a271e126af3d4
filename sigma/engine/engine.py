"""The one event loop for backtest, paper and live.

Per bar: fill the pending orders that the bar reaches (at its open, or through its range for
limit/stop orders), mark the account at the close, then let the strategy act. A backtest calls
`step` for each bar of a history; paper and live call `on_bar` as bars complete. The strategy
sees the same data views and the same account API in every mode.
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

from sigma.domain import Bar, Fill, Instrument, Order, OrderStatus, OrderType, Side, Trade
from sigma.domain.text import clip
from sigma.engine.collector import collector_relaxed
from sigma.engine.fill_model import FillModel, FillTiming
from sigma.engine.portfolio import Portfolio
from sigma.strategies.base import Strategy
from sigma.strategies.series import Cursor, Data

ProgressFn = Callable[[int, int], None]
BarFn = Callable[[int], None]
StepFn = Callable[[], None]

_ZERO = Decimal(0)
# Enum members read per order and fill, bound once: `OrderType.MARKET` goes through the
# enum machinery (several times the cost of a plain global in Python 3.11).
_MARKET = OrderType.MARKET
_LIMIT = OrderType.LIMIT
_FILLED = OrderStatus.FILLED


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
    instruments: Mapping[str, Instrument] = field(default_factory=dict)
    can_short: bool = True
    # Asked before an order opens or adds to a position; a veto rejects the order (None:
    # every order goes ahead).
    entry_gate: EntryGate | None = None


def _dec(value: float) -> Decimal:
    # repr() gives the shortest string that round-trips, so 100.34 becomes Decimal('100.34').
    return Decimal(repr(float(value)))


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
        self.fills: list[Fill] = []
        self.ledger: list[LedgerRow] = []
        self.vetoes = 0
        """Orders the entry gate rejected."""
        self._last_price: Decimal | None = None
        strategy.bind(symbol, data, self)

    # --- StrategyContext -------------------------------------------------------------------
    def submit(self, order: Order) -> None:
        """Accept an order from the strategy; it fills on a later bar (or this close)."""
        order.created_at = self._bar_time(self.data.cursor.i)
        self.orders.append(order)
        # Without an entry gate nothing is vetoed: the position is not even looked up.
        if (
            self.config.entry_gate is None
            or self._veto(order, self.portfolio.qty(order.symbol)) is None
        ):
            self.pending.append(order)

    def cancel_pending(self, symbol: str) -> None:
        """Cancel the unfilled orders of `symbol`."""
        if not self.pending:
            return
        keep = []
        for order in self.pending:
            if order.symbol == symbol:
                order.status = OrderStatus.CANCELLED
            else:
                keep.append(order)
        self.pending = keep

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
        cursor = self.data.cursor
        on_bar = self.strategy.on_bar
        at_close = self.fill_model.timing is FillTiming.CLOSE
        record = self.config.record_ledger
        every_bar = at_close or record
        for i in range(start, stop):
            cursor.i = i
            self._last_price = None
            if self.pending or every_bar:
                self._full_bar(i, on_bar, at_close, record, on_fills)
            else:  # most bars: nothing to fill or record, only the strategy's decision
                on_bar()

    def _full_bar(
        self, i: int, on_bar: StepFn, at_close: bool, record: bool, on_fills: BarFn | None
    ) -> None:
        before = len(self.fills)
        if self.pending:
            self._match(i, at_close=False)
        on_bar()
        if at_close and self.pending:
            self._match(i, at_close=True)
        if record:
            self._record(i)
        if on_fills is not None and len(self.fills) != before:
            on_fills(i)

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

    @property
    def last_price(self) -> Decimal:
        """Close of the current bar as an exact Decimal."""
        if self._last_price is None:
            self._last_price = _dec(self.data.value("close", self.data.cursor.i))
        return self._last_price

    def _bar_time(self, i: int) -> datetime:
        """Time of bar `i` (of the first bar before it) as an aware UTC datetime."""
        return self.data.time(max(i, 0))

    def _match(self, i: int, *, at_close: bool) -> None:
        if at_close:
            open_ = high = low = self.last_price
        else:
            open_ = _dec(self.data.value("open", i))
            high = low = open_  # market orders read the open only; the range is read below
        ranged = at_close
        still_pending: list[Order] = []
        for order in self.pending:
            if order.type is not _MARKET:
                if at_close:
                    still_pending.append(order)
                    continue
                if not ranged:
                    high, low = _dec(self.data.value("high", i)), _dec(self.data.value("low", i))
                    ranged = True
            price = self.fill_model.trigger_price(order, open_, high, low)
            if price is None:
                still_pending.append(order)
                continue
            if order.type is not _LIMIT:
                price = self.fill_model.slipped(order.side, price)
            self._execute(order, price, i)
        self.pending = still_pending

    def _execute(self, order: Order, price: Decimal, i: int) -> None:
        qty = self._resolve_qty(order, price)
        if qty <= 0:
            order.status = OrderStatus.REJECTED
            return
        fill = Fill(
            order.client_order_id,
            order.symbol,
            order.side,
            qty,
            price,
            self.fill_model.fee(qty, price),
            self._bar_time(i),
            order.strategy,
        )
        self.portfolio.apply(fill, bar=i)
        self.fills.append(fill)
        order.filled_qty = qty
        order.status = _FILLED

    def _resolve_qty(
        self, order: Order, price: Decimal, portfolio: Portfolio | None = None
    ) -> Decimal:
        """Units `order` trades at `price` given the account (`portfolio`, default: ours)."""
        account = portfolio or self.portfolio
        held = account.qty(order.symbol)
        if order.reduce_only:
            if held * order.side.sign >= 0:
                return _ZERO  # nothing to reduce in that direction
            return abs(held) if order.qty is None else min(order.qty, abs(held))
        if order.qty is not None:
            return self.fill_model.round_qty(order.qty)
        assert order.equity_fraction is not None
        prices = {order.symbol: price}
        free = account.equity(prices) - account.gross_exposure(prices)
        return self.fill_model.affordable_qty(
            free * order.equity_fraction * self.config.stake, price
        )

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


def frame_to_data(bars: pd.DataFrame) -> Data:
    """Wrap a bar frame (UTC index `ts`; open, high, low, close, volume) for the engine."""
    index = pd.DatetimeIndex(bars.index)
    ts = index.tz_convert("UTC").tz_localize(None).to_numpy(dtype="datetime64[ns]")
    columns = {name: bars[name].to_numpy(dtype=np.float64) for name in bars.columns}
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

    done = 0
    with collector_relaxed():  # the run's orders, fills and trades all stay alive
        for i in range(0, n, progress_every):  # cancel and progress are looked at after bar i
            run(done, i + 1)
            done = i + 1
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"cancelled at bar {i} of {n}")
            if progress is not None:
                progress(i, n)
        run(done, n)
    if progress is not None:
        progress(n, n)
    lengths = np.diff(np.append(changed_at, n))
    cash = np.repeat(np.asarray(cash_f, dtype=np.float64), lengths)
    qty = np.repeat(np.asarray(qty_f, dtype=np.float64), lengths)
    return cash + qty * engine.data.column("close"), qty != 0.0


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

"""The strategy API: parameters, `init` to declare indicators, `on_bar` to act.

A strategy never knows whether it runs in a backtest, on paper or live: it reads `self.data`
and its indicators (views ending at the current bar) and states what it wants with `buy`,
`sell`, `close` or the target-exposure shortcuts `go_long`, `go_short`, `go_flat`.
Protective orders (stop-loss, take-profit, trailing stop) ride on an entry
(`self.buy(sl=..., tp=...)`) or on the open trade (`self.trades[0].sl = ...`); the engine
triggers them the same way in every mode (see sigma/engine/protective.py).

    class SmaCross(Strategy):
        name = "sma_cross"
        fast = Param(10, low=2, high=200)
        slow = Param(20, low=3, high=400)

        def init(self) -> None:
            self.fast_ma = self.indicator(sma, self.data.close, self.fast)
            self.slow_ma = self.indicator(sma, self.data.close, self.slow)

        def on_bar(self) -> None:
            if crossed_above(self.fast_ma, self.slow_ma):
                self.go_long()
            elif crossed_above(self.slow_ma, self.fast_ma):
                self.go_short()
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, Literal, Protocol, overload

import numpy as np

from sigma.domain import OpenLot, Order, OrderType, Side, TimeInForce, Trade
from sigma.domain.orders import STOP_LOSS, TAKE_PROFIT, TRAILING_STOP
from sigma.strategies.params import Param
from sigma.strategies.series import Data, FloatArray, Series, crossed_above, crossed_below
from sigma.strategies.vectorised import Columns, FusedRun, IndicatorCache, Targets, Terms

__all__ = [
    "OpenTrade",
    "Strategy",
    "StrategyContext",
    "crossed_above",
    "crossed_below",
    "decision_start",
    "first_value",
    "undecided_before",
]

# Enum members read per order and fill, bound once: `OrderType.MARKET` goes through the
# enum machinery (several times the cost of a plain global in Python 3.11).
_BUY, _SELL = Side.BUY, Side.SELL
_MARKET, _LIMIT, _STOP = OrderType.MARKET, OrderType.LIMIT, OrderType.STOP
_GTC = TimeInForce.GTC
_ZERO = Decimal(0)  # a Decimal compares with a Decimal in half the time it takes with an int

IndicatorFn = Callable[..., FloatArray | tuple[FloatArray, ...]]


def first_value(values: FloatArray) -> int | None:
    """Index of the first value of `values` that is not NaN; None when every one is."""
    # Read in doubling chunks: a warm-up of p bars costs O(p), however long the history.
    start, size = 0, 64
    while start < len(values):
        chunk = values[start : start + size]
        found = np.flatnonzero(chunk == chunk)  # NaN is the one value unequal to itself
        if found.size:
            return start + int(found[0])
        start += size
        size *= 2
    return None


@overload
def decision_start(indicators: Iterable[FloatArray], *, final: Literal[True] = True) -> int: ...


@overload
def decision_start(indicators: Iterable[FloatArray], *, final: bool) -> int | None: ...


def decision_start(indicators: Iterable[FloatArray], *, final: bool = True) -> int | None:
    """The first bar a strategy decides on, given its indicators' values: backtesting.py's
    start, the bar after the last one at which an indicator is still NaN-led (1 + the
    largest index of an indicator's first value, so that two of each are there; 1 without
    indicators). `final`: the values cover the whole history, and an indicator with no value
    at all counts as 0, as backtesting.py counts it. Otherwise more bars are to come (live):
    the start is not known (None) until every indicator has a value."""
    latest = 0
    for values in indicators:
        first = first_value(values)
        if first is None:
            if not final:
                return None
        elif first > latest:
            latest = first
    return 1 + latest


def undecided_before(start: int, targets: Targets) -> Targets:
    """`targets` deciding nothing (NaN) before bar `start` (written in place): a vectorised
    twin's decisions on the bars the engine calls `on_bar` on (see `decision_start`)."""
    for side in targets:
        side[:start] = np.nan
    return targets


class StrategyContext(Protocol):
    """What the engine offers a strategy: order entry and account state."""

    def submit(self, order: Order) -> None:
        """Queue an order for execution."""

    def cancel_pending(self, symbol: str) -> None:
        """Cancel every order of `symbol` that has not filled yet."""

    def position_qty(self, symbol: str) -> Decimal:
        """Signed quantity held in `symbol`."""

    def equity(self) -> Decimal:
        """Account equity marked at the latest price."""

    def cash(self) -> Decimal:
        """Cash balance."""

    def cancel_order(self, order: Order) -> bool:
        """Cancel one open order; False when it is not open (any more)."""

    def open_orders(self, symbol: str) -> list[Order]:
        """The orders of `symbol` that can still fill, protective ones included."""

    def protection(self, symbol: str) -> list[Order]:
        """The protective orders armed on the position in `symbol`."""

    def open_trades(self, symbol: str) -> list[OpenLot]:
        """The open position in `symbol` as a trade (an empty list when flat)."""

    def closed_trades(self, symbol: str) -> list[Trade]:
        """The round trips closed in `symbol`."""


class OpenTrade:
    """The open trade (the position held) as a strategy sees it in `self.trades`.

    SIGMA nets a symbol's fills into one position, so there is at most one open trade: its
    quantity, average entry price, when and by which order's tag it was opened. Its
    protection can be read and replaced (`trade.sl = 95.0`, `trade.tp = None`,
    `trade.trail(2.5)`), and it can be closed (`trade.close()`)."""

    __slots__ = ("_lot", "_strategy")

    def __init__(self, lot: OpenLot, strategy: Strategy) -> None:
        self._lot = lot
        self._strategy = strategy

    def __repr__(self) -> str:
        return (
            f"OpenTrade({self.symbol} {self.qty} @ {self.entry_price} since {self.entry_time}, "
            f"sl={self.sl}, tp={self.tp}, tag={self.tag!r})"
        )

    @property
    def symbol(self) -> str:
        """The symbol traded."""
        return self._lot.symbol

    @property
    def qty(self) -> Decimal:
        """Signed quantity: > 0 long, < 0 short."""
        return self._lot.qty

    @property
    def is_long(self) -> bool:
        """True for a long trade."""
        return self._lot.qty > 0

    @property
    def entry_price(self) -> Decimal:
        """Average entry price of the open quantity."""
        return self._lot.entry_price

    @property
    def entry_time(self) -> datetime | None:
        """When the position was opened (a UTC datetime; None when not known)."""
        return self._lot.entry_ts

    @property
    def entry_bar(self) -> int:
        """Index of the bar the position was opened on (-1 when not known)."""
        return self._lot.entry_bar

    @property
    def tag(self) -> str:
        """The tag of the order that opened it."""
        return self._lot.tag

    @property
    def pl(self) -> Decimal:
        """Unrealised profit at the latest close, before fees."""
        return self._lot.qty * (self._strategy._close_now() - self._lot.entry_price)

    @property
    def pl_pct(self) -> Decimal:
        """Unrealised return at the latest close relative to the entry price, before fees."""
        change = self._strategy._close_now() / self._lot.entry_price - 1
        return change if self.is_long else -change

    @property
    def orders(self) -> list[Order]:
        """The protective orders armed on it."""
        return self._strategy._ctx.protection(self.symbol)

    def _level(self, reason: str) -> Decimal | None:
        for order in self.orders:
            if order.reason == reason:
                return order.stop_price if order.reason != TAKE_PROFIT else order.limit_price
        return None

    @property
    def sl(self) -> Decimal | None:
        """The stop-loss price (None: none)."""
        return self._level(STOP_LOSS)

    @sl.setter
    def sl(self, price: float | Decimal | None) -> None:
        self._strategy._protect(STOP_LOSS, price)

    @property
    def tp(self) -> Decimal | None:
        """The take-profit price (None: none)."""
        return self._level(TAKE_PROFIT)

    @tp.setter
    def tp(self, price: float | Decimal | None) -> None:
        self._strategy._protect(TAKE_PROFIT, price)

    @property
    def trailing_stop(self) -> Decimal | None:
        """The trailing stop's current level (None: none)."""
        return self._level(TRAILING_STOP)

    def trail(
        self, distance: float | Decimal | None = None, *, pct: float | Decimal | None = None
    ) -> None:
        """Protect the trade with a trailing stop `distance` (price units) or `pct` (a
        fraction) behind the best price reached from now on; both None removes it."""
        if distance is None and pct is None:
            self._strategy._protect(TRAILING_STOP, None)
        else:
            self._strategy._protect(TRAILING_STOP, None, trail=distance, trail_pct=pct)

    def close(self, tag: str = "close") -> Order | None:
        """Close the whole trade at market (see `Strategy.close`)."""
        return self._strategy.close(tag)


class Strategy:
    """Base class of every strategy. Subclasses set `name`, declare `Param`s, and override
    `init` and `on_bar`. Construct with parameter overrides: `SmaCross(fast=5)`."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    # Parameter sets the strategy's author suggests per market regime ("trend_up",
    # "trend_down", "range", "high_vol"), each a partial set over the running parameters; the
    # adaptive layer uses them when it was given no presets of its own for this strategy.
    regime_params: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    # Price columns the `fused` kernel checks itself as it reads them, so that the fast path
    # need not read them once more beforehand: its run reports `UNCHECKED` when it cannot
    # vouch for one (a price that is not a finite number above zero, or one it did not read).
    fused_checks: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, **params: Any) -> None:
        declared = self.param_specs()
        unknown = sorted(set(params) - set(declared))
        if unknown:
            raise ValueError(
                f"strategy {self.name!r} has no parameter(s) {', '.join(unknown)}; "
                f"known: {', '.join(declared) or 'none'}"
            )
        self.params: dict[str, Any] = {}
        for key, spec in declared.items():
            value = spec.coerce(key, params.get(key, spec.default))
            self.params[key] = value
            setattr(self, key, value)
        self.validate()
        self.symbol = ""
        self.data: Data
        self._ctx: StrategyContext
        self._indicators: list[tuple[list[Series], IndicatorFn, tuple[Any, ...], dict[str, Any]]]
        self._indicators = []

    @classmethod
    def param_specs(cls) -> dict[str, Param[Any]]:
        """Declared parameters, base classes first."""
        specs: dict[str, Param[Any]] = {}
        for klass in reversed(cls.__mro__):
            for key, value in vars(klass).items():
                if isinstance(value, Param):
                    specs[key] = value
        return specs

    def validate(self) -> None:
        """Check relations between parameters (e.g. fast < slow); raise ValueError if wrong."""

    # --- the vectorised twin (optional) --------------------------------------------------
    @classmethod
    def targets(
        cls, bars: Columns, params: Mapping[str, Any], cache: IndicatorCache | None = None
    ) -> Targets:
        """The decisions `on_bar` takes at every close of `bars` with these (full, valid)
        parameters, as target exposures (see `sigma.strategies.vectorised`): none (NaN)
        before the bar the engine first calls `on_bar` on (`decision_start`, which
        `undecided_before` applies). A strategy that
        trades only with `go_long` / `go_short` / `go_flat` may define it; the fast path
        (sweeps, optimisation) then runs it instead of the engine, with the same trades."""
        raise NotImplementedError(f"strategy {cls.name!r} has no vectorised twin")

    @classmethod
    def vectorised(cls) -> bool:
        """Whether the class defines the vectorised twin `targets`."""
        return any("targets" in vars(klass) for klass in cls.__mro__ if klass is not Strategy)

    @classmethod
    def fused(cls, bars: Columns, params: Mapping[str, Any], terms: Terms) -> FusedRun | None:
        """The fast path's whole run over `bars` in one compiled pass (indicators, decisions,
        fills, equity) on the account `terms`, or None (this default) to have the fast path
        execute `targets` instead. A twin may define it when its indicators fold into one
        loop with the account of `sigma.strategies.next_open`; it must give the run that
        executing `targets` gives."""
        return None

    def update_params(self, **changes: Any) -> None:
        """Change parameters between bars (the regime adjuster, an operator) without a restart.

        Values are coerced and bound-checked like constructor arguments; when any is wrong or
        `validate` fails, ValueError is raised and the old values stay. A bound strategy then
        rebuilds its indicators over the data it holds, so its next `on_bar` uses the new ones.
        """
        declared = self.param_specs()
        unknown = sorted(set(changes) - set(declared))
        if unknown:
            raise ValueError(f"strategy {self.name!r} has no parameter(s) {', '.join(unknown)}")
        old = dict(self.params)
        new = {**old, **{key: declared[key].coerce(key, v) for key, v in changes.items()}}
        self._assign(new)
        try:
            self.validate()
        except ValueError:
            self._assign(old)
            raise
        if hasattr(self, "_ctx"):
            self._indicators = []
            self.init()

    def _assign(self, params: dict[str, Any]) -> None:
        self.params = params
        for key, value in params.items():
            setattr(self, key, value)

    # --- lifecycle, called by the engine -------------------------------------------------
    def bind(self, symbol: str, data: Data, ctx: StrategyContext) -> None:
        """Attach the strategy to a symbol's data and an engine, then run `init`."""
        self.symbol = symbol
        self.data = data
        self._ctx = ctx
        self._indicators = []
        self.init()

    def init(self) -> None:
        """Declare indicators with `self.indicator(...)`. Runs once before the first bar."""

    def on_bar(self) -> None:
        """Decide what to do on the bar that just closed."""

    def decision_start(self, *, final: bool) -> int | None:
        """The bar `on_bar` is first called on: `decision_start` of every indicator `init`
        declared (each array of one returning several), over the bars held (`final`: all of
        the history). A strategy may override it to start elsewhere, e.g. 0 for a scripted
        one that acts on the very first bar (which backtesting.py never calls `next` on)."""
        held = len(self.data)
        return decision_start(
            (series.values[:held] for outputs, *_ in self._indicators for series in outputs),
            final=final,
        )

    def refresh_indicators(self) -> None:
        """Recompute every indicator over the data held now (after a live bar arrived)."""
        for outputs, fn, args, kwargs in self._indicators:
            for series, values in zip(outputs, self._compute(fn, args, kwargs), strict=True):
                series.values = values

    def drop_float_copies(self) -> None:
        """Forget the readers its series and data keep to be read fast while stepping (see
        `series.float_reader`: a float64 series' shares its memory, another is a list copy):
        a finished backtest needs them no more. They are made again if a series is read
        after."""
        for outputs, _fn, _args, _kwargs in self._indicators:
            for series in outputs:
                series.changed()
        self.data.drop_float_copies()

    # --- indicators ----------------------------------------------------------------------
    def indicator_lines(self) -> list[tuple[str, FloatArray]]:
        """Every indicator `init` declared, over all the bound data (a chart's lines): named
        by the attribute that holds it (`fast_ma`; `bands[1]` in a tuple), else by its
        function (`sma`, `bollinger[2]`)."""
        held: dict[int, str] = {}
        for attr, value in vars(self).items():
            if isinstance(value, Series):
                held[id(value)] = attr
            elif isinstance(value, tuple):
                for i, item in enumerate(value):
                    if isinstance(item, Series):
                        held[id(item)] = f"{attr}[{i}]"
        lines = []
        for outputs, fn, _args, _kwargs in self._indicators:
            label = getattr(fn, "__name__", "indicator")
            for i, series in enumerate(outputs):
                fallback = label if len(outputs) == 1 else f"{label}[{i}]"
                lines.append((held.get(id(series), fallback), series.values[: len(self.data)]))
        return lines

    def indicator(self, fn: IndicatorFn, *args: Any, **kwargs: Any) -> Any:
        """Compute `fn(*args)` over the whole history and return a `Series` (or a tuple of
        them when `fn` returns several arrays). `Series` arguments are passed as arrays."""
        arrays = self._compute(fn, args, kwargs)
        name = getattr(fn, "__name__", "indicator")
        outputs = [Series(values, self.data.cursor, name) for values in arrays]
        self._indicators.append((outputs, fn, args, kwargs))
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def _compute(
        self, fn: IndicatorFn, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> list[FloatArray]:
        plain = [self.data.column(a.name) if isinstance(a, Series) else a for a in args]
        result = fn(*plain, **kwargs)
        arrays = list(result) if isinstance(result, tuple) else [result]
        for values in arrays:
            if len(values) != len(self.data):
                raise ValueError(
                    f"indicator {getattr(fn, '__name__', fn)!r} returned {len(values)} values "
                    f"for {len(self.data)} bars"
                )
        return [np.asarray(values, dtype=np.float64) for values in arrays]

    # --- account state -------------------------------------------------------------------
    @property
    def position(self) -> Decimal:
        """Signed quantity held (> 0 long, < 0 short)."""
        return self._ctx.position_qty(self.symbol)

    @property
    def equity(self) -> Decimal:
        """Account equity at the latest price."""
        return self._ctx.equity()

    @property
    def bar_index(self) -> int:
        """Index of the current bar."""
        return self.data.cursor.i

    @property
    def orders(self) -> list[Order]:
        """The open orders: pending ones, then protective ones (`order.reason` names a
        protective order's kind, `order.parent_id` the entry it belongs to)."""
        return self._ctx.open_orders(self.symbol)

    @property
    def trades(self) -> list[OpenTrade]:
        """The open trade (the position), as a list of one; empty when flat."""
        return [OpenTrade(lot, self) for lot in self._ctx.open_trades(self.symbol)]

    @property
    def closed_trades(self) -> list[Trade]:
        """The round trips closed so far, each with its `exit_reason` and `tag`."""
        return self._ctx.closed_trades(self.symbol)

    # --- order entry ---------------------------------------------------------------------
    def buy(
        self,
        qty: Decimal | float | None = None,
        *,
        fraction: Decimal | float | None = None,
        limit: float | None = None,
        stop: float | None = None,
        sl: float | None = None,
        tp: float | None = None,
        trailing: float | None = None,
        trailing_pct: float | None = None,
        tag: str = "",
        tif: TimeInForce | str = TimeInForce.GTC,
        bars: int | None = None,
        oco: str = "",
        reduce_only: bool = False,
    ) -> Order:
        """Buy `qty` units, or a `fraction` of available equity (all of it by default).

        `limit` / `stop` make it a limit or stop order. `sl`, `tp` (prices) and `trailing`
        (a price distance) or `trailing_pct` (a fraction) attach protective orders armed when
        it fills, one-cancels-the-other among themselves (a bracket). `tif` is "GTC", "IOC"
        or "FOK"; `bars` cancels it when the next `bars` bars did not fill it; orders given
        the same `oco` name cancel each other when one fills; `reduce_only` never opens or
        flips a position. Returns the order (see `cancel`)."""
        return self._order(
            Side.BUY, qty, fraction, limit, stop, tag,
            sl=sl, tp=tp, trailing=trailing, trailing_pct=trailing_pct,
            tif=tif, bars=bars, oco=oco, reduce_only=reduce_only,
        )  # fmt: skip

    def sell(
        self,
        qty: Decimal | float | None = None,
        *,
        fraction: Decimal | float | None = None,
        limit: float | None = None,
        stop: float | None = None,
        sl: float | None = None,
        tp: float | None = None,
        trailing: float | None = None,
        trailing_pct: float | None = None,
        tag: str = "",
        tif: TimeInForce | str = TimeInForce.GTC,
        bars: int | None = None,
        oco: str = "",
        reduce_only: bool = False,
    ) -> Order:
        """Sell (or sell short) `qty` units, or a `fraction` of available equity; the other
        arguments as `buy` (a short's stop-loss lies above the price, its take-profit below)."""
        return self._order(
            Side.SELL, qty, fraction, limit, stop, tag,
            sl=sl, tp=tp, trailing=trailing, trailing_pct=trailing_pct,
            tif=tif, bars=bars, oco=oco, reduce_only=reduce_only,
        )  # fmt: skip

    def cancel(self, order: Order) -> bool:
        """Cancel an open order (pending, or protective); cancelling an entry also cancels
        the protection waiting for it. False when the order is not open any more (a market
        order already sent live cannot be recalled)."""
        return self._ctx.cancel_order(order)

    def close(self, tag: str = "close") -> Order | None:
        """Close the whole position at market; None when already flat."""
        held = self.position
        if not held:
            return None
        return self._exit(held, tag)

    def _exit(self, held: Decimal, tag: str) -> Order:
        """Close the position `held` (not 0) at market."""
        # Positional, in the order of Order's fields: matching keywords against its 21
        # parameters cost a third of the order.
        order = Order(
            self.symbol,  # symbol
            _SELL if held > _ZERO else _BUY,  # side
            _MARKET,  # type
            None,  # qty: all of the position when it fills
            None,  # equity_fraction
            None,  # limit_price
            None,  # stop_price
            True,  # reduce_only
            self.name,  # strategy
            tag,  # tag
        )
        self._ctx.submit(order)
        return order

    def go_long(self, fraction: float = 1.0) -> None:
        """Hold a long position: cancel pending orders, close a short, enter with `fraction`
        of equity. Does nothing when already long."""
        self._go(_BUY, fraction)

    def go_short(self, fraction: float = 1.0) -> None:
        """Hold a short position (mirror of `go_long`)."""
        self._go(_SELL, fraction)

    def go_flat(self) -> None:
        """Hold nothing: cancel pending orders and close the position."""
        self._ctx.cancel_pending(self.symbol)
        self.close()

    def _go(self, side: Side, fraction: float) -> None:
        held = self.position
        if held > _ZERO if side is _BUY else held < _ZERO:  # already there (held·sign > 0)
            return
        self._ctx.cancel_pending(self.symbol)
        if held:
            self._exit(held, "reverse")
        # The market entry `_order` would make, without its checks of what is not given
        # (positional, as in `_exit`).
        self._ctx.submit(
            Order(
                self.symbol,  # symbol
                side,  # side
                _MARKET,  # type
                None,  # qty
                _decimal(fraction),  # equity_fraction
                None,  # limit_price
                None,  # stop_price
                False,  # reduce_only
                self.name,  # strategy
                "enter",  # tag
            )
        )

    def _order(
        self,
        side: Side,
        qty: Decimal | float | None,
        fraction: Decimal | float | None,
        limit: float | None,
        stop: float | None,
        tag: str,
        *,
        sl: float | None = None,
        tp: float | None = None,
        trailing: float | None = None,
        trailing_pct: float | None = None,
        tif: TimeInForce | str = TimeInForce.GTC,
        bars: int | None = None,
        oco: str = "",
        reduce_only: bool = False,
    ) -> Order:
        if qty is None and fraction is None and not reduce_only:
            fraction = 1
        order_type = _MARKET
        if limit is not None and stop is not None:
            raise ValueError("an order is either limit or stop, not both")
        if limit is not None:
            order_type = _LIMIT
        elif stop is not None:
            order_type = _STOP
        order = Order(
            symbol=self.symbol,
            side=side,
            type=order_type,
            qty=None if qty is None else _decimal(qty),
            equity_fraction=None if fraction is None else _decimal(fraction),
            limit_price=None if limit is None else _decimal(limit),
            stop_price=None if stop is None else _decimal(stop),
            reduce_only=reduce_only,
            strategy=self.name,
            tag=tag,
            tif=tif if tif is _GTC else TimeInForce(str(tif).upper()),
            bars=bars,
            oco=oco,
        )
        guards = (
            []
            if sl is None and tp is None and trailing is None and trailing_pct is None
            else self._bracket(order, sl, tp, trailing, trailing_pct)
        )
        self._ctx.submit(order)
        for guard in guards:
            self._ctx.submit(guard)
        return order

    def _close_now(self) -> Decimal:
        """The current bar's close, exact (the price orders are checked against)."""
        return _decimal(float(self.data.value("close", self.data.cursor.i)))

    def _bracket(
        self,
        entry: Order,
        sl: float | None,
        tp: float | None,
        trailing: float | None,
        trailing_pct: float | None,
    ) -> list[Order]:
        """The protective orders of `entry`, checked against the price it is expected at."""
        if entry.reduce_only:
            raise ValueError("a reduce-only order cannot carry sl, tp or a trailing stop")
        if trailing is not None and trailing_pct is not None:
            raise ValueError("give trailing or trailing_pct, not both")
        ref = entry.limit_price or entry.stop_price or self._close_now()
        long = entry.side is _BUY
        stop_loss = None if sl is None else _decimal(sl)
        take_profit = None if tp is None else _decimal(tp)
        below, above = (stop_loss, take_profit) if long else (take_profit, stop_loss)
        if (below is not None and below >= ref) or (above is not None and above <= ref):
            kind = "long" if long else "short"
            order = "SL < price < TP" if long else "TP < price < SL"
            raise ValueError(f"a {kind} order needs {order}: sl={sl}, price={ref}, tp={tp}")
        exit_side = _SELL if long else _BUY
        group = f"bracket:{entry.client_order_id}"

        def guard(reason: str, **prices: Any) -> Order:
            return Order(
                symbol=self.symbol,
                side=exit_side,
                reduce_only=True,
                strategy=self.name,
                tag=entry.tag,
                reason=reason,
                parent_id=entry.client_order_id,
                oco=group,
                **prices,
            )

        guards = []
        if stop_loss is not None:
            guards.append(guard(STOP_LOSS, type=_STOP, stop_price=stop_loss))
        if trailing is not None or trailing_pct is not None:
            guards.append(self._trailing(guard, ref, trailing, trailing_pct, long))
        if take_profit is not None:
            guards.append(guard(TAKE_PROFIT, type=_LIMIT, limit_price=take_profit))
        return guards

    @staticmethod
    def _trailing(
        make: Callable[..., Order],
        ref: Decimal,
        trail: float | Decimal | None,
        trail_pct: float | Decimal | None,
        long: bool,
    ) -> Order:
        """A trailing stop made by `make`, its level provisional from `ref` until armed."""
        distance = None if trail is None else _decimal(trail)
        pct = None if trail_pct is None else _decimal(trail_pct)
        if distance is not None:
            level = ref - distance if long else ref + distance
        else:
            level = ref * (1 - pct if long else 1 + pct) if pct is not None else ref
        if level <= 0:
            raise ValueError(f"a trailing distance of {distance} is not below the price {ref}")
        return make(TRAILING_STOP, type=_STOP, stop_price=level, trail=distance, trail_pct=pct)

    def _protect(
        self,
        reason: str,
        price: float | Decimal | None,
        *,
        trail: float | Decimal | None = None,
        trail_pct: float | Decimal | None = None,
    ) -> None:
        """Replace the `reason` protection of the open position by one at `price` (or a
        trailing one); None removes it."""
        held = self.position
        if held == 0:
            raise ValueError("no open trade to protect")
        for order in self._ctx.protection(self.symbol):
            if order.reason == reason:
                self._ctx.cancel_order(order)
        if price is None and trail is None and trail_pct is None:
            return
        lots = self._ctx.open_trades(self.symbol)
        common: dict[str, Any] = {
            "symbol": self.symbol,
            "side": _SELL if held > 0 else _BUY,
            "reduce_only": True,
            "strategy": self.name,
            "tag": lots[0].tag if lots else "",
            "reason": reason,
        }
        if reason == TRAILING_STOP:
            order = self._trailing(
                lambda _reason, **prices: Order(**common, **prices),
                self._close_now(),
                trail,
                trail_pct,
                held > 0,
            )
        elif reason == TAKE_PROFIT:
            order = Order(**common, type=_LIMIT, limit_price=_decimal(price))  # type: ignore[arg-type]
        else:
            order = Order(**common, type=_STOP, stop_price=_decimal(price))  # type: ignore[arg-type]
        self._ctx.submit(order)


_WHOLE = Decimal("1.0")  # Decimal(repr(1.0)): what a whole-stake go_long() sizes with


def _decimal(value: Decimal | float) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if value == 1.0:  # the common fraction, without the round trip through a string
        return _WHOLE
    if not math.isfinite(value):
        raise ValueError(f"order values must be finite, got {value}")
    return Decimal(repr(float(value)))

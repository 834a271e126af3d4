"""The strategy API: parameters, `init` to declare indicators, `on_bar` to act.

A strategy never knows whether it runs in a backtest, on paper or live: it reads `self.data`
and its indicators (views ending at the current bar) and states what it wants with `buy`,
`sell`, `close` or the target-exposure shortcuts `go_long`, `go_short`, `go_flat`.

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
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, ClassVar, Protocol

import numpy as np

from sigma.domain import Order, OrderType, Side
from sigma.strategies.params import Param
from sigma.strategies.series import Data, FloatArray, Series, crossed_above, crossed_below
from sigma.strategies.vectorised import Columns, IndicatorCache, Targets

__all__ = ["Strategy", "StrategyContext", "crossed_above", "crossed_below"]

# Enum members read per order and fill, bound once: `OrderType.MARKET` goes through the
# enum machinery (several times the cost of a plain global in Python 3.11).
_BUY, _SELL = Side.BUY, Side.SELL
_MARKET, _LIMIT, _STOP = OrderType.MARKET, OrderType.LIMIT, OrderType.STOP

IndicatorFn = Callable[..., FloatArray | tuple[FloatArray, ...]]


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


class Strategy:
    """Base class of every strategy. Subclasses set `name`, declare `Param`s, and override
    `init` and `on_bar`. Construct with parameter overrides: `SmaCross(fast=5)`."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    # Parameter sets the strategy's author suggests per market regime ("trend_up",
    # "trend_down", "range", "high_vol"), each a partial set over the running parameters; the
    # adaptive layer uses them when it was given no presets of its own for this strategy.
    regime_params: ClassVar[Mapping[str, Mapping[str, Any]]] = {}

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
        parameters, as target exposures (see `sigma.strategies.vectorised`). A strategy that
        trades only with `go_long` / `go_short` / `go_flat` may define it; the fast path
        (sweeps, optimisation) then runs it instead of the engine, with the same trades."""
        raise NotImplementedError(f"strategy {cls.name!r} has no vectorised twin")

    @classmethod
    def vectorised(cls) -> bool:
        """Whether the class defines the vectorised twin `targets`."""
        return any("targets" in vars(klass) for klass in cls.__mro__ if klass is not Strategy)

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

    def refresh_indicators(self) -> None:
        """Recompute every indicator over the data held now (after a live bar arrived)."""
        for outputs, fn, args, kwargs in self._indicators:
            for series, values in zip(outputs, self._compute(fn, args, kwargs), strict=True):
                series.values = values

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

    # --- order entry ---------------------------------------------------------------------
    def buy(
        self,
        qty: Decimal | float | None = None,
        *,
        fraction: Decimal | float | None = None,
        limit: float | None = None,
        stop: float | None = None,
        tag: str = "",
    ) -> Order:
        """Buy `qty` units, or a `fraction` of available equity (all of it by default)."""
        return self._order(Side.BUY, qty, fraction, limit, stop, tag)

    def sell(
        self,
        qty: Decimal | float | None = None,
        *,
        fraction: Decimal | float | None = None,
        limit: float | None = None,
        stop: float | None = None,
        tag: str = "",
    ) -> Order:
        """Sell (or sell short) `qty` units, or a `fraction` of available equity."""
        return self._order(Side.SELL, qty, fraction, limit, stop, tag)

    def close(self, tag: str = "close") -> Order | None:
        """Close the whole position at market; None when already flat."""
        held = self.position
        if held == 0:
            return None
        order = Order(
            symbol=self.symbol,
            side=_SELL if held > 0 else _BUY,
            reduce_only=True,
            strategy=self.name,
            tag=tag,
        )
        self._ctx.submit(order)
        return order

    def go_long(self, fraction: float = 1.0) -> None:
        """Hold a long position: cancel pending orders, close a short, enter with `fraction`
        of equity. Does nothing when already long."""
        self._go(Side.BUY, fraction)

    def go_short(self, fraction: float = 1.0) -> None:
        """Hold a short position (mirror of `go_long`)."""
        self._go(Side.SELL, fraction)

    def go_flat(self) -> None:
        """Hold nothing: cancel pending orders and close the position."""
        self._ctx.cancel_pending(self.symbol)
        self.close()

    def _go(self, side: Side, fraction: float) -> None:
        held = self.position
        if held * side.sign > 0:
            return
        self._ctx.cancel_pending(self.symbol)
        if held != 0:
            self.close(tag="reverse")
        self._order(side, None, fraction, None, None, "enter")

    def _order(
        self,
        side: Side,
        qty: Decimal | float | None,
        fraction: Decimal | float | None,
        limit: float | None,
        stop: float | None,
        tag: str,
    ) -> Order:
        if qty is None and fraction is None:
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
            strategy=self.name,
            tag=tag,
        )
        self._ctx.submit(order)
        return order


_WHOLE = Decimal("1.0")  # Decimal(repr(1.0)): what a whole-stake go_long() sizes with


def _decimal(value: Decimal | float) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if value == 1.0:  # the common fraction, without the round trip through a string
        return _WHOLE
    if not math.isfinite(value):
        raise ValueError(f"order values must be finite, got {value}")
    return Decimal(repr(float(value)))

"""The attached engines of an `AdaptiveHook` and their baseline shadows.

A shadow is a copy of the strategy running its baseline parameters on a paper engine beside
the real one: the counterfactual the feedback loop compares against. `Bindings` keeps one
`Binding` per attached engine, steps its shadow on every bar and hands out the round trips
(real and shadow) closed since the last time they were asked for.
"""

from __future__ import annotations

from sigma.domain import Bar, Trade
from sigma.engine.engine import Engine, empty_data
from sigma.engine.live import MAX_BARS, MAX_RECORDS
from sigma.strategies.base import Strategy
from sigma.strategies.series import COLUMNS, Cursor, Data

__all__ = ["Binding", "Bindings"]


class Binding:
    """One attached engine, its shadow and what of their trades was already reported.

    ``preloaded``: the engine holds the whole history (a backtest), so the shadow gets the same
    arrays and steps by index instead of appending bar by bar and recomputing its indicators
    each time; the strategies are causal, so both ways give the same trades."""

    __slots__ = ("engine", "last_real", "last_shadow", "preloaded", "shadow")

    def __init__(self, engine: Engine, shadow: Engine | None, preloaded: bool) -> None:
        self.engine = engine
        self.shadow = shadow
        self.preloaded = preloaded
        self.last_real: Trade | None = engine.trades[-1] if engine.trades else None
        self.last_shadow: Trade | None = None

    def advance_shadow(self, bar: Bar) -> None:
        """Step the shadow over `bar`, which the engine just processed."""
        twin = self.shadow
        if twin is None:
            return
        if self.preloaded:
            twin.step(self.engine.data.cursor.i)
            return
        if len(twin.data) >= 2 * MAX_BARS:
            twin.drop_oldest(len(twin.data) - MAX_BARS)
        twin.on_bar(bar)

    def fresh_trades(self) -> tuple[list[Trade], list[Trade]]:
        """The engine's and the shadow's round trips closed since the last call."""
        real = _since(self.engine.trades, self.last_real)
        if real:
            self.last_real = real[-1]
        twin = self.shadow
        if twin is None:
            return real, []
        shadow = _since(twin.trades, self.last_shadow)
        if shadow:
            self.last_shadow = shadow[-1]
        if len(twin.trades) > 2 * MAX_RECORDS:
            del twin.trades[:-MAX_RECORDS]
        return real, shadow


class Bindings:
    """The attached engines per symbol; with `shadow`, each with its baseline shadow."""

    def __init__(self, *, shadow: bool) -> None:
        self.shadow = shadow
        self._by_symbol: dict[str, list[Binding]] = {}

    def attach(self, engine: Engine) -> Binding:
        """Bind `engine`, with a shadow running a copy of its strategy's parameters."""
        data = engine.data
        preloaded = data.cursor.i < len(data) - 1
        twin = None
        if self.shadow:
            strategy = engine.strategy
            copy = type(strategy)(**strategy.params)
            own = (
                Data({name: data.column(name) for name in COLUMNS}, data.ts, Cursor())
                if preloaded
                else empty_data()
            )
            twin = Engine(copy, engine.symbol, own, engine.config)
        binding = Binding(engine, twin, preloaded)
        self._by_symbol.setdefault(engine.symbol, []).append(binding)
        return binding

    def on(self, symbol: str) -> list[Binding]:
        """The bindings of `symbol`, in the order attached."""
        return self._by_symbol.get(symbol, [])

    def engines(self, strategy: str, symbol: str) -> tuple[Engine, Engine | None]:
        """The attached engine of `strategy` on `symbol` and its shadow."""
        for binding in self.on(symbol):
            if binding.engine.strategy.name == strategy:
                return binding.engine, binding.shadow
        raise KeyError(f"{strategy} on {symbol} is not attached")

    def running(self, cls: type[Strategy], symbol: str) -> Engine:
        """The attached engine running `cls` on `symbol`."""
        return next(b.engine for b in self.on(symbol) if type(b.engine.strategy) is cls)


def _since(trades: list[Trade], last: Trade | None) -> list[Trade]:
    """The trades after `last` (found by identity; the lists are only appended to, or trimmed
    at the front, which never drops the newest)."""
    fresh = []
    for trade in reversed(trades):
        if trade is last:
            break
        fresh.append(trade)
    return fresh[::-1]

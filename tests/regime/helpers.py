"""Shared test doubles: a strategy with every parameter type, regime states on demand."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sigma.regime.detector import Regime, RegimeState
from sigma.strategies.base import Strategy
from sigma.strategies.params import Param
from tests.regime.conftest import T0


class Toy(Strategy):
    """Every parameter type, with a cross-parameter rule."""

    name = "toy"
    fast = Param(10, low=2, high=100)
    slow = Param(40, low=3, high=400)
    k = Param(2.0, low=0.5, high=5.0)
    size = Param(Decimal("1.0"), low=0.1, high=10)
    short = Param(True)
    mode = Param("a")

    def validate(self) -> None:
        if self.fast >= self.slow:
            raise ValueError("fast must be below slow")
        if self.mode == "b" and self.k < 3:
            raise ValueError("mode b needs k >= 3")


def state(regime: Regime, i: int, symbol: str = "SYM", *, minutes: int = 1) -> RegimeState:
    """A detector answer for bar `i` (one bar every `minutes`)."""
    ts = T0 + timedelta(minutes=i * minutes)
    return RegimeState(symbol, ts, regime, regime, 0.9, 5, False, f"{regime.value}: test", None)

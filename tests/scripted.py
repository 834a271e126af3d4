"""The base of the tests' scripted strategies (orders by bar number, targets given bar by bar):
they act from bar 0. The engine starts a strategy where backtesting.py starts `next()`
(`Strategy.decision_start`: bar 1 without indicators), but these tests are about what orders,
fills and accounts do from the first bar, not about when a strategy starts."""

from __future__ import annotations

from sigma.strategies.base import Strategy


class FromBarZero(Strategy):
    """A strategy that decides from bar 0."""

    def decision_start(self, *, final: bool) -> int:
        """Bar 0: a script needs no warm-up."""
        return 0

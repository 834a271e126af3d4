"""Parameter changes of an `AdaptiveHook`'s strategies that a `StrategyTester` must pass first:
the loop's own adjustments (the adjuster's gate) and changes from outside the loop (an
operator, the scheduled optimiser), each tested walk-forward on the bars the strategy's
engine has seen, never later ones."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from sigma.regime.adjuster import ParamAdjuster
from sigma.regime.shadow import Bindings
from sigma.regime.tester import StrategyTester
from sigma.strategies.base import Strategy

__all__ = ["ParamChanges", "ProposedChange"]


@dataclass(frozen=True)
class ProposedChange:
    """A parameter change waiting for its test: the candidate, the set in force when it was
    proposed and a copy of the bars it is tested on (None without a tester)."""

    strategy: str
    symbol: str
    cls: type[Strategy]
    current: dict[str, Any]
    candidate: dict[str, Any]
    bars: pd.DataFrame | None


class ParamChanges:
    """Proposes, tests and applies parameter changes of the strategies in `bindings`; with a
    `tester`, it becomes the adjuster's gate too."""

    def __init__(
        self, adjuster: ParamAdjuster, bindings: Bindings, tester: StrategyTester | None
    ) -> None:
        self.adjuster = adjuster
        self.bindings = bindings
        self.tester = tester
        if tester is not None:
            adjuster.gate = self._gate

    def propose(self, strategy: str, symbol: str, params: Mapping[str, Any]) -> ProposedChange:
        """The candidate set over the current baseline, with a copy of the bars to test it on
        (call on the loop); raises ValueError for a set the strategy does not accept."""
        engine, _ = self.bindings.engines(strategy, symbol)
        cls = type(engine.strategy)
        baseline = self.adjuster.baseline(strategy, symbol)
        candidate = cls(**{**baseline, **params}).params
        bars = self._recent(cls, symbol) if self.tester is not None else None
        return ProposedChange(strategy, symbol, cls, dict(engine.strategy.params), candidate, bars)

    def test(self, change: ProposedChange) -> str | None:
        """Why the tester refuses `change` (None: it passes, or there is no tester). Touches
        nothing live, so it may run in another thread."""
        if self.tester is None or change.bars is None:
            return None
        return self.tester.check(
            change.cls, change.current, change.candidate, change.bars, symbol=change.symbol
        )

    def rebase(self, change: ProposedChange) -> dict[str, Any]:
        """Make a tested change the new baseline: the adjuster steers from it, the running
        strategy and its shadow use it from the next bar. Returns the parameters in force."""
        engine, shadow = self.bindings.engines(change.strategy, change.symbol)
        new = self.adjuster.rebase(change.strategy, change.symbol, change.candidate)
        engine.strategy.update_params(**new)
        if shadow is not None:
            shadow.strategy.update_params(**new)
        return new

    def _gate(
        self,
        cls: type[Strategy],
        symbol: str,
        current: Mapping[str, Any],
        candidate: Mapping[str, Any],
    ) -> str | None:
        """Test a change on the bars the strategy's engine has seen (never later ones)."""
        assert self.tester is not None
        return self.tester.check(cls, current, candidate, self._recent(cls, symbol), symbol=symbol)

    def _recent(self, cls: type[Strategy], symbol: str) -> pd.DataFrame:
        """The tester's look-back of bars of the engine running `cls` on `symbol`."""
        assert self.tester is not None
        data = self.bindings.running(cls, symbol).data
        end = data.cursor.i + 1
        start = max(0, end - self.tester.config.lookback)
        return data.frame(start, end)

"""Moving-average crossover: long when the fast SMA crosses above the slow, short below."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sigma.strategies.base import Strategy, crossed_above
from sigma.strategies.indicators import sma
from sigma.strategies.params import Param
from sigma.strategies.vectorised import Columns, FusedRun, IndicatorCache, Targets, Terms


class SmaCross(Strategy):
    """Trend following with two simple moving averages, always in the market once crossed."""

    name = "sma_cross"
    description = "Long when SMA(fast) crosses above SMA(slow), short when it crosses below."

    fast = Param(10, low=2, high=500, step=1, doc="bars in the fast average")
    slow = Param(20, low=3, high=2000, step=1, doc="bars in the slow average")
    allow_short = Param(True, doc="reverse to short on a downward cross (else go flat)")
    fused_checks = frozenset({"open", "close"})  # each block of both is scanned as it is read

    def validate(self) -> None:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be below slow ({self.slow})")

    def init(self) -> None:
        self.fast_ma = self.indicator(sma, self.data.close, self.fast)
        self.slow_ma = self.indicator(sma, self.data.close, self.slow)

    def on_bar(self) -> None:
        if crossed_above(self.fast_ma, self.slow_ma):
            self.go_long()
        elif crossed_above(self.slow_ma, self.fast_ma):
            self.go_short() if self.allow_short else self.go_flat()

    @classmethod
    def targets(
        cls, bars: Columns, params: Mapping[str, Any], cache: IndicatorCache | None = None
    ) -> Targets:
        # Running sums with exact tie-breaking: the crossings of `sma`, in O(n) (no cache:
        # recomputing is as cheap as reading stored averages back). Compiled with numba,
        # imported here so that running the strategy through the engine does not load it.
        from sigma.strategies.running import sma_cross_targets

        return Targets.always(
            sma_cross_targets(
                bars["close"],
                int(params["fast"]),
                int(params["slow"]),
                allow_short=bool(params["allow_short"]),
            )
        )

    @classmethod
    def fused(cls, bars: Columns, params: Mapping[str, Any], terms: Terms) -> FusedRun | None:
        # The crossings of `targets`, filled in the same pass (see sigma.strategies.running).
        from sigma.strategies.running import sma_cross_run

        return sma_cross_run(
            bars["open"],
            bars["close"],
            int(params["fast"]),
            int(params["slow"]),
            bool(params["allow_short"]),
            terms,
        )

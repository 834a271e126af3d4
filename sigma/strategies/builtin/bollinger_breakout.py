"""Bollinger breakout: ride a close outside the bands until price returns to the middle."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sigma.strategies.base import Strategy, decision_start, undecided_before
from sigma.strategies.indicators import bands, bollinger, rolling_std, sma
from sigma.strategies.params import Param
from sigma.strategies.vectorised import Columns, IndicatorCache, Targets, cached, choose

if TYPE_CHECKING:  # annotations only: the fused run is in the kernels' modules
    from sigma.strategies.vectorised import FusedRun, Terms


class BollingerBreakout(Strategy):
    """Volatility breakout on Bollinger bands."""

    name = "bollinger_breakout"
    description = "Long on a close above the upper band, short below the lower, flat at the middle."

    period = Param(20, low=5, high=500, step=5, doc="bars in the moving average")
    k = Param(2.0, low=0.5, high=5.0, step=0.5, doc="band width in standard deviations")
    allow_short = Param(True, doc="also trade downside breakouts")

    def init(self) -> None:
        self.mid, self.upper, self.lower = self.indicator(
            bollinger, self.data.close, self.period, self.k
        )

    def on_bar(self) -> None:
        close = self.data.close[-1]
        held = self.position
        if close > self.upper[-1]:
            self.go_long()
        elif close < self.lower[-1] and self.allow_short:
            self.go_short()
        elif (held > 0 and close < self.mid[-1]) or (held < 0 and close > self.mid[-1]):
            self.go_flat()

    @classmethod
    def targets(
        cls, bars: Columns, params: Mapping[str, Any], cache: IndicatorCache | None = None
    ) -> Targets:
        close, period = bars["close"], int(params["period"])
        # `bollinger` is `bands(sma, rolling_std, k)`: the two windows are shared across k.
        mid, upper, lower = bands(
            cached(cache, ("sma", period), lambda: sma(close, period)),
            cached(cache, ("rolling_std", period), lambda: rolling_std(close, period)),
            float(params["k"]),
        )
        enter = ((close > upper, 1.0), ((close < lower) & bool(params["allow_short"]), -1.0))
        n = len(close)
        return undecided_before(
            decision_start([mid, upper, lower]),
            Targets(
                flat=choose(*enter, length=n),
                long=choose(*enter, (close < mid, 0.0), length=n),
                short=choose(*enter, (close > mid, 0.0), length=n),
            ),
        )

    @classmethod
    def fused(cls, bars: Columns, params: Mapping[str, Any], terms: Terms) -> FusedRun | None:
        # The bands and rules of `targets` with fills and equity in one compiled pass;
        # imported here so that running the strategy through the engine does not load numba.
        from sigma.strategies.bollinger_run import bollinger_breakout_run

        return bollinger_breakout_run(
            bars["open"],
            bars["close"],
            int(params["period"]),
            float(params["k"]),
            bool(params["allow_short"]),
            terms,
        )

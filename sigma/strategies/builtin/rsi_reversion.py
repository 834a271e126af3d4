"""RSI mean reversion: buy oversold, sell overbought, exit when RSI returns to the middle."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sigma.strategies.base import Strategy, decision_start, undecided_before
from sigma.strategies.indicators import rsi
from sigma.strategies.params import Param
from sigma.strategies.vectorised import Columns, IndicatorCache, Targets, cached, choose

if TYPE_CHECKING:  # annotations only: the fused run is in the kernels' modules
    from sigma.strategies.vectorised import FusedRun, Terms


class RsiReversion(Strategy):
    """Fades extremes of Wilder's RSI."""

    name = "rsi_reversion"
    description = "Long below `oversold`, short above `overbought`, flat when RSI crosses `exit`."

    period = Param(14, low=2, high=200, step=1, doc="RSI look-back in bars")
    oversold = Param(30.0, low=1, high=49, step=5, doc="enter long below this RSI")
    overbought = Param(70.0, low=51, high=99, step=5, doc="enter short above this RSI")
    exit_level = Param(50.0, low=20, high=80, step=5, doc="leave the trade when RSI crosses it")
    allow_short = Param(True, doc="also fade overbought readings")

    def validate(self) -> None:
        if not self.oversold < self.exit_level < self.overbought:
            raise ValueError(
                f"need oversold ({self.oversold}) < exit_level ({self.exit_level}) "
                f"< overbought ({self.overbought})"
            )

    def init(self) -> None:
        self.rsi = self.indicator(rsi, self.data.close, self.period)

    def on_bar(self) -> None:
        value = self.rsi[-1]
        held = self.position
        if value < self.oversold:
            self.go_long()
        elif value > self.overbought and self.allow_short:
            self.go_short()
        elif (held > 0 and value >= self.exit_level) or (held < 0 and value <= self.exit_level):
            self.go_flat()

    @classmethod
    def targets(
        cls, bars: Columns, params: Mapping[str, Any], cache: IndicatorCache | None = None
    ) -> Targets:
        close, period = bars["close"], int(params["period"])
        value = cached(cache, ("rsi", period), lambda: rsi(close, period))
        enter = (
            (value < params["oversold"], 1.0),
            ((value > params["overbought"]) & bool(params["allow_short"]), -1.0),
        )
        n = len(close)
        return undecided_before(
            decision_start([value]),
            Targets(
                flat=choose(*enter, length=n),
                long=choose(*enter, (value >= params["exit_level"], 0.0), length=n),
                short=choose(*enter, (value <= params["exit_level"], 0.0), length=n),
            ),
        )

    @classmethod
    def fused(cls, bars: Columns, params: Mapping[str, Any], terms: Terms) -> FusedRun | None:
        # The rules of `targets` with the RSI, fills and equity in one compiled pass; imported
        # here so that running the strategy through the engine does not load numba.
        from sigma.strategies.rsi_run import rsi_reversion_run

        levels = (
            float(params["oversold"]),
            float(params["overbought"]),
            float(params["exit_level"]),
        )
        return rsi_reversion_run(
            bars["open"],
            bars["close"],
            int(params["period"]),
            levels,
            bool(params["allow_short"]),
            terms,
        )

"""Bollinger breakout: ride a close outside the bands until price returns to the middle."""

from __future__ import annotations

from sigma.strategies.base import Strategy
from sigma.strategies.indicators import bollinger
from sigma.strategies.params import Param


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

"""Donchian channel trend following (the Turtle rule): break the N-bar high, exit on M-bar low."""

from __future__ import annotations

from sigma.strategies.base import Strategy
from sigma.strategies.indicators import rolling_max, rolling_min, shifted
from sigma.strategies.params import Param
from sigma.strategies.series import FloatArray


def _prior_high(high: FloatArray, period: int) -> FloatArray:
    """Highest high of the `period` bars before the current one."""
    return shifted(rolling_max(high, period))


def _prior_low(low: FloatArray, period: int) -> FloatArray:
    """Lowest low of the `period` bars before the current one."""
    return shifted(rolling_min(low, period))


class DonchianTrend(Strategy):
    """Channel breakout: channels use the bars before the current one, so a close can break them."""

    name = "donchian_trend"
    description = "Long above the prior `entry`-bar high, exit below the prior `exit`-bar low."

    entry = Param(20, low=2, high=500, step=5, doc="breakout channel length in bars")
    exit = Param(10, low=2, high=500, step=5, doc="exit channel length in bars")
    allow_short = Param(True, doc="also trade breakdowns below the prior low")

    def validate(self) -> None:
        if self.exit > self.entry:
            raise ValueError(f"exit ({self.exit}) must not exceed entry ({self.entry})")

    def init(self) -> None:
        self.entry_high = self.indicator(_prior_high, self.data.high, self.entry)
        self.entry_low = self.indicator(_prior_low, self.data.low, self.entry)
        self.exit_high = self.indicator(_prior_high, self.data.high, self.exit)
        self.exit_low = self.indicator(_prior_low, self.data.low, self.exit)

    def on_bar(self) -> None:
        close = self.data.close[-1]
        held = self.position
        if close > self.entry_high[-1] and held <= 0:
            self.go_long()
        elif close < self.entry_low[-1] and held >= 0 and self.allow_short:
            self.go_short()
        elif (held > 0 and close < self.exit_low[-1]) or (held < 0 and close > self.exit_high[-1]):
            self.go_flat()

"""Donchian channel trend following (the Turtle rule): break the N-bar high, exit on M-bar low."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sigma.strategies.base import Strategy, decision_start, undecided_before
from sigma.strategies.indicators import rolling_max, rolling_min, shifted
from sigma.strategies.params import Param
from sigma.strategies.series import FloatArray
from sigma.strategies.vectorised import Columns, IndicatorCache, Targets, cached, choose

if TYPE_CHECKING:  # annotations only: the fused run is in the kernels' modules
    from sigma.strategies.vectorised import FusedRun, Terms


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

    @classmethod
    def targets(
        cls, bars: Columns, params: Mapping[str, Any], cache: IndicatorCache | None = None
    ) -> Targets:
        high, low, close = bars["high"], bars["low"], bars["close"]
        entry, exit_ = int(params["entry"]), int(params["exit"])
        entry_high = cached(cache, ("prior_high", entry), lambda: _prior_high(high, entry))
        entry_low = cached(cache, ("prior_low", entry), lambda: _prior_low(low, entry))
        breakout = (close > entry_high, 1.0)
        breakdown = ((close < entry_low) & bool(params["allow_short"]), -1.0)
        exit_high = cached(cache, ("prior_high", exit_), lambda: _prior_high(high, exit_))
        exit_low = cached(cache, ("prior_low", exit_), lambda: _prior_low(low, exit_))
        n = len(close)
        # The breakout needs no long position, the breakdown no short one (`held` tests).
        return undecided_before(
            decision_start([entry_high, entry_low, exit_high, exit_low]),
            Targets(
                flat=choose(breakout, breakdown, length=n),
                long=choose(breakdown, (close < exit_low, 0.0), length=n),
                short=choose(breakout, (close > exit_high, 0.0), length=n),
            ),
        )

    @classmethod
    def fused(cls, bars: Columns, params: Mapping[str, Any], terms: Terms) -> FusedRun | None:
        # The channels and rules of `targets` with fills and equity in one compiled pass;
        # imported here so that running the strategy through the engine does not load numba.
        from sigma.strategies.donchian_run import donchian_trend_run

        return donchian_trend_run(
            (bars["open"], bars["high"], bars["low"], bars["close"]),
            (int(params["entry"]), int(params["exit"])),
            bool(params["allow_short"]),
            terms,
        )

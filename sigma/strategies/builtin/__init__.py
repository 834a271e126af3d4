"""Strategies that ship with SIGMA."""

from sigma.strategies.builtin.bollinger_breakout import BollingerBreakout
from sigma.strategies.builtin.donchian_trend import DonchianTrend
from sigma.strategies.builtin.rsi_reversion import RsiReversion
from sigma.strategies.builtin.sma_cross import SmaCross

BUILTIN_STRATEGIES = (SmaCross, RsiReversion, BollingerBreakout, DonchianTrend)

__all__ = ["BUILTIN_STRATEGIES", "BollingerBreakout", "DonchianTrend", "RsiReversion", "SmaCross"]

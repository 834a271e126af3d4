"""Strategy API, built-in strategies and plugin loading."""

from sigma.strategies.base import Strategy, crossed_above, crossed_below
from sigma.strategies.params import Param
from sigma.strategies.registry import StrategyRegistry, load_strategies

__all__ = [
    "Param",
    "Strategy",
    "StrategyRegistry",
    "crossed_above",
    "crossed_below",
    "load_strategies",
]

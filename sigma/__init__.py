"""SIGMA: an automated trading system with one engine for live, paper and backtest."""

__version__ = "0.1.0"

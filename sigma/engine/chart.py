"""A strategy's indicators over stored bars, for a chart: the lines its `init` declares, computed
by the strategy itself (so a chart shows exactly what it trades on), without trading."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd

from sigma.domain import OpenLot, Order, Trade
from sigma.engine.engine import frame_to_data
from sigma.strategies.base import Strategy
from sigma.strategies.series import FloatArray


class _NoTrading:
    """The context of a strategy bound only to compute its indicators: `init` may read the
    account, never trade (nothing calls `on_bar`)."""

    def submit(self, order: Order) -> None:
        raise RuntimeError("a strategy bound for a chart does not trade")

    def cancel_pending(self, symbol: str) -> None:
        raise RuntimeError("a strategy bound for a chart does not trade")

    def position_qty(self, symbol: str) -> Decimal:
        return Decimal(0)

    def equity(self) -> Decimal:
        return Decimal(0)

    def cash(self) -> Decimal:
        return Decimal(0)

    def cancel_order(self, order: Order) -> bool:
        raise RuntimeError("a strategy bound for a chart does not trade")

    def open_orders(self, symbol: str) -> list[Order]:
        return []

    def protection(self, symbol: str) -> list[Order]:
        return []

    def open_trades(self, symbol: str) -> list[OpenLot]:
        return []

    def closed_trades(self, symbol: str) -> list[Trade]:
        return []


def indicator_lines(
    strategy: Strategy, symbol: str, bars: pd.DataFrame
) -> list[tuple[str, FloatArray]]:
    """`strategy`'s indicator lines (see `Strategy.indicator_lines`) over `bars` (a UTC-indexed
    OHLCV frame), one value per bar (NaN while an indicator warms up)."""
    strategy.bind(symbol, frame_to_data(bars), _NoTrading())
    return strategy.indicator_lines()

"""What a backtest (or a paper/live session replayed through the engine) produces."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import pandas as pd

from sigma.domain import Fill, Trade
from sigma.engine.margin import Liquidation


@dataclass(slots=True)
class BacktestResult:
    """Outcome of one strategy on one symbol's bars.

    `equity` is the mark-to-market equity at each bar's close (float, for charts and
    statistics); `final_equity` is the exact Decimal figure. `bars` is the bar frame the run
    used (index `ts` UTC; columns open, high, low, close, volume).
    """

    strategy: str
    symbol: str
    params: dict[str, Any]
    initial_cash: Decimal
    final_equity: Decimal
    final_cash: Decimal
    final_position: Decimal
    equity: pd.Series
    trades: list[Trade]
    fills: list[Fill]
    bars: pd.DataFrame
    stats: dict[str, Any] = field(default_factory=dict)
    liquidation: Liquidation | None = None
    """When and why the account was liquidated (the run stopped there), or None."""

    @property
    def start(self) -> datetime:
        """Time of the first bar."""
        return pd.Timestamp(self.bars.index[0]).to_pydatetime()

    @property
    def end(self) -> datetime:
        """Time of the last bar."""
        return pd.Timestamp(self.bars.index[-1]).to_pydatetime()

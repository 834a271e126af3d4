"""What a backtest (or a paper/live session replayed through the engine) produces."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from sigma.domain import Fill, Trade
from sigma.engine.fill_model import FillTiming
from sigma.engine.margin import Liquidation


@dataclass(slots=True)
class BacktestResult:
    """Outcome of one strategy on one symbol's bars.

    `equity` is the mark-to-market equity at each bar's close (float, for charts and
    statistics); `final_equity` is the exact Decimal figure. `bars` is the bar frame the run
    used (index `ts` UTC; columns open, high, low, close, volume). `open_trade` is the
    position still held after the last bar, marked at its close (not in `trades` nor in the
    trade statistics); `indicators` are the strategy's indicator lines over `bars`;
    `fill_timing` is when the run's market orders filled (it places MAE/MFE on the bars).
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
    open_trade: Trade | None = None
    indicators: list[tuple[str, npt.NDArray[np.float64]]] = field(default_factory=list)
    fill_timing: FillTiming = FillTiming.NEXT_OPEN
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

"""A strategy's indicator lines for a chart: named after what holds them, never trading."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from sigma.domain import Order, Side
from sigma.engine.chart import _NoTrading, indicator_lines
from sigma.strategies import Strategy
from sigma.strategies.indicators import bollinger, sma


class Unnamed(Strategy):
    """Lines held in a tuple, and lines held by nothing."""

    name = "unnamed"

    def init(self) -> None:
        self.bands = self.indicator(bollinger, self.data.close, 3, 2.0)
        self.indicator(sma, self.data.close, 2)
        self.indicator(bollinger, self.data.close, 2, 1.0)


def bars(n: int) -> pd.DataFrame:
    index = pd.date_range("2026-12-01", periods=n, freq="1min", tz="UTC", name="ts")
    close = np.arange(1.0, n + 1.0)
    return pd.DataFrame(
        {"open": close, "high": close, "low": close, "close": close, "volume": close},
        index=index,
    )


def test_lines_are_named_by_attribute_then_by_function() -> None:
    lines = indicator_lines(Unnamed(), "BTC", bars(5))
    assert [name for name, _ in lines] == [
        "bands[0]", "bands[1]", "bands[2]", "sma", "bollinger[0]", "bollinger[1]",
        "bollinger[2]",
    ]  # fmt: skip
    sma_line = lines[3][1]
    assert np.isnan(sma_line[0]) and sma_line[1:].tolist() == [1.5, 2.5, 3.5, 4.5]


def test_a_strategy_bound_for_a_chart_cannot_trade() -> None:
    ctx = _NoTrading()
    with pytest.raises(RuntimeError):
        ctx.submit(Order(symbol="BTC", side=Side.BUY, qty=Decimal(1)))
    with pytest.raises(RuntimeError):
        ctx.cancel_pending("BTC")
    assert ctx.position_qty("BTC") == ctx.equity() == ctx.cash() == 0

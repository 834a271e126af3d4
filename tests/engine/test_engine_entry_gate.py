"""The entry gate: asked only about orders that open or add to a position, with the bars up to
the deciding one; a veto rejects the order and is counted, the same way in a backtest and in
the live engine; without a gate (the default) nothing changes."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from sigma.domain import Bar, Fill, Order, OrderStatus, Side
from sigma.engine.engine import EngineConfig, opens_exposure
from sigma.engine.fill_model import FillModel
from sigma.engine.live import DispatchEngine
from sigma.research.backtest import run_backtest
from sigma.strategies import Strategy
from sigma.strategies.builtin import SmaCross
from sigma.strategies.series import Data
from tests.scripted import FromBarZero

D = Decimal
T0 = pd.Timestamp("2024-01-01", tz="UTC")


class Gate:
    """Vetoes every entry decided on bar `from_bar` or later; records what it was asked."""

    reason = "test gate"

    def __init__(self, from_bar: int) -> None:
        self.from_bar = from_bar
        self.asked: list[tuple[int, Side]] = []

    def allows(self, order: Order, data: Data) -> bool:
        self.asked.append((data.cursor.i, order.side))
        return data.cursor.i < self.from_bar


class Script(FromBarZero):
    """Runs `plan[bar_index]` on each bar."""

    name = "script"
    plan: ClassVar[dict[int, Callable[[Strategy], object]]] = {
        0: lambda s: s.buy(10),  # opens: allowed (before the veto starts)
        2: lambda s: s.buy(5),  # adds: vetoed
        3: lambda s: s.sell(4),  # reduces without reduce_only: not asked
        5: lambda s: s.sell(10),  # more than held, so it opens a short: vetoed
        6: lambda s: s.go_short(),  # the close goes, the short entry is vetoed
        8: lambda s: s.go_long(),  # flat: vetoed
    }

    def on_bar(self) -> None:
        action = self.plan.get(self.bar_index)
        if action is not None:
            action(self)


def flat_bars(n: int = 10) -> pd.DataFrame:
    index = pd.date_range(T0, periods=n, freq="1min", tz="UTC", name="ts")
    return pd.DataFrame(
        {"open": 10.0, "high": 10.0, "low": 10.0, "close": 10.0, "volume": 1.0}, index=index
    )


ASKED = [(0, Side.BUY), (2, Side.BUY), (5, Side.SELL), (6, Side.SELL), (8, Side.BUY)]
TRADED = [(Side.BUY, D(10)), (Side.SELL, D(4)), (Side.SELL, D(6))]


def test_a_backtest_vetoes_entries_and_never_a_reduction() -> None:
    gate = Gate(from_bar=1)
    result, engine = run_backtest(Script(), flat_bars(), symbol="X", entry_gate=gate)
    assert gate.asked == ASKED
    assert [(f.side, f.qty) for f in result.fills] == TRADED
    assert engine.vetoes == 4
    rejected = [o for o in engine.orders if o.status is OrderStatus.REJECTED]
    assert [(o.side, o.tag) for o in rejected] == [
        (Side.BUY, ""),
        (Side.SELL, ""),
        (Side.SELL, "enter"),
        (Side.BUY, "enter"),
    ]
    assert result.final_position == 0


def test_the_live_engine_vetoes_the_same_orders() -> None:
    gate = Gate(from_bar=1)
    sent: list[Order] = []
    engine = DispatchEngine(
        Script(), "X", EngineConfig(entry_gate=gate), lambda order, ref: sent.append(order)
    )
    for k, row in enumerate(flat_bars().itertuples()):
        price = D(repr(row.close))
        engine.on_live_bar(
            Bar("X", T0 + pd.Timedelta(minutes=k), price, price, price, price), ref_price=price
        )
        for order in sent:
            assert order.qty is not None
            engine.on_fill(
                Fill(order.client_order_id, "X", order.side, order.qty, price, D(0), T0, "script")
            )
        sent.clear()
    assert gate.asked == ASKED
    assert [(f.side, f.qty) for f in engine.fills] == TRADED
    assert engine.vetoes == 4 and engine.inflight == {}
    assert sum(o.status is OrderStatus.REJECTED for o in engine.orders) == 4


def test_no_gate_or_a_gate_that_allows_all_changes_nothing() -> None:
    assert EngineConfig().entry_gate is None
    rng = np.random.default_rng(4)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 800)))
    frame = flat_bars(800).assign(open=close, high=close * 1.002, low=close * 0.998, close=close)
    costs = FillModel(commission_pct=D("0.001"), slippage_bps=D(2))
    plain, _ = run_backtest(SmaCross(fast=5, slow=20), frame, symbol="X", fill_model=costs)
    gate = Gate(from_bar=len(frame))
    gated, engine = run_backtest(
        SmaCross(fast=5, slow=20), frame, symbol="X", fill_model=costs, entry_gate=gate
    )
    assert len(plain.trades) > 5 and gate.asked
    assert engine.vetoes == 0
    assert [(f.side, f.qty, f.price, f.fee, f.ts) for f in gated.fills] == [
        (f.side, f.qty, f.price, f.fee, f.ts) for f in plain.fills
    ]
    assert gated.final_equity == plain.final_equity
    pd.testing.assert_series_equal(gated.equity, plain.equity)


@pytest.mark.parametrize(
    ("order", "held", "opens"),
    [
        (Order("X", Side.BUY, qty=D(1)), D(0), True),
        (Order("X", Side.BUY, qty=D(1)), D(2), True),
        (Order("X", Side.SELL, qty=D(1)), D(2), False),
        (Order("X", Side.SELL, qty=D(2)), D(2), False),
        (Order("X", Side.SELL, qty=D(3)), D(2), True),
        (Order("X", Side.BUY, qty=D(1)), D(-2), False),
        (Order("X", Side.SELL, equity_fraction=D(1)), D(2), True),
        (Order("X", Side.SELL, reduce_only=True), D(2), False),
        (Order("X", Side.BUY, qty=D(5), reduce_only=True), D(-2), False),
    ],
)
def test_what_opens_exposure(order: Order, held: Decimal, opens: bool) -> None:
    assert opens_exposure(order, held) is opens

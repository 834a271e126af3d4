"""A resting reduce-only order is cancelled once its strategy has nothing left to reduce: a
spot venue takes no reduce-only flag, so a take-profit limit left resting after a stop-loss
closed the position would open a short (or buy again) when it filled."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd

from sigma.domain import Bar, Order, Side
from sigma.engine.fill_model import FillModel
from tests.engine.test_engine_live_protective import make_live
from tests.scripted import FromBarZero

D = Decimal
T0 = pd.Timestamp("2024-01-01", tz="UTC")


class Exits(FromBarZero):
    """Buys 5 on its first bar; on its second places a reduce-only limit sell at 120 and a
    plain limit buy at 80 (which is no exit, and stays)."""

    name = "exits"

    def on_bar(self) -> None:
        if self.bar_index == 0:
            self.buy(5)
        elif self.bar_index == 1:
            self.sell(5, limit=120, reduce_only=True)
            self.buy(1, limit=80)


def bar(i: int) -> Bar:
    price = D(100)
    return Bar(
        "X", (T0 + pd.Timedelta(minutes=i)).to_pydatetime(), price, price, price, price, D(1)
    )


def test_a_resting_reduce_only_order_is_cancelled_once_the_position_is_gone() -> None:
    engine, paper = make_live(Exits(), FillModel())
    engine.on_live_bar(bar(0), D(100))
    paper.settle(T0)
    engine.on_live_bar(bar(1), D(100))
    exit_, bid = (o for o, _ in paper.sent[1:])
    assert exit_.reduce_only and set(engine.resting) == {exit_.client_order_id, bid.client_order_id}
    # An operator's close (a stop-loss's order alike) goes out and fills.
    engine.place(Order(symbol="X", side=Side.SELL, qty=D(5), reduce_only=True), D(99))
    assert paper.cancels == []
    paper.settle(T0)
    assert engine.position_qty("X") == 0
    assert paper.cancels == [exit_]
    paper.fill(bid, D(80), T0)  # another fill: the cancel is not asked for twice
    assert paper.cancels == [exit_]
    engine.on_order_final(exit_.client_order_id, "cancelled")
    assert list(engine.resting) == [bid.client_order_id]  # until the worker says filled

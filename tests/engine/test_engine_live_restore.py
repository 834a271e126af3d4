"""The live engine continues from what an earlier run left: history, account, open orders."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pandas as pd

from sigma.domain import Order, OrderType, Position, Side
from sigma.engine.engine import EngineConfig
from sigma.engine.live import MAX_BARS, DispatchEngine
from sigma.feeds.synthetic import generate_bars
from sigma.strategies.builtin import SmaCross

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def engine() -> DispatchEngine:
    return DispatchEngine(SmaCross(), "X", EngineConfig(), lambda order, ref: None)


def test_warm_up_holds_at_most_the_live_window() -> None:
    live = engine()
    history = generate_bars(MAX_BARS + 7, seed=3)[0]
    live.warm_up(history)
    assert len(live.data) == MAX_BARS and live.data.cursor.i == MAX_BARS - 1
    assert live.last_price == Decimal(repr(float(history["close"].iloc[-1])))
    assert live.data.ts[0] == pd.Timestamp(history.index[7]).tz_localize(None)


def test_a_flat_booked_account_keeps_no_open_lot() -> None:
    live = engine()
    live.resume(Decimal(9_000), Decimal(3), Position("X", realized_pnl=Decimal(-997)), T0)
    assert (live.cash(), live.position_qty("X"), live.portfolio.fees_paid) == (9_000, 0, 3)
    assert live.portfolio.position("X").realized_pnl == -997
    live.resume(Decimal(1_000), Decimal(3), Position("X", Decimal(90), Decimal(100)), T0)
    assert live.position_qty("X") == 90


def test_an_open_market_order_without_a_price_is_known_but_not_projected() -> None:
    live = engine()
    order = Order("X", Side.BUY, qty=Decimal(2), client_order_id="m-1")
    live.adopt([order])
    assert live.inflight == {} and live.orders == [order]
    limit = Order("X", Side.SELL, OrderType.LIMIT, Decimal(1), limit_price=Decimal(200))
    live.adopt([limit])
    assert list(live.resting.values()) == [limit]

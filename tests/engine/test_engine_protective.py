"""Protective and managed orders in the backtest engine: stop-loss, take-profit and trailing
stop on an entry or on the open trade, OCO groups and brackets, cancelling one order, time in
force (IOC, FOK, a bar count), reduce-only, and what the strategy reads of its trades.

Every expected price below is worked out by hand from the bars of the test (see
sigma/engine/protective.py for the rules)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest

from sigma.domain import Order, OrderStatus, OrderType, Side, Trade
from sigma.engine.engine import StrategyFailed
from sigma.engine.fill_model import FillModel, FillTiming
from sigma.engine.protective import ProtectiveBook
from sigma.research.backtest import run_backtest
from sigma.strategies import Strategy
from tests.scripted import FromBarZero

D = Decimal


def bars(rows: list[tuple[float, float, float, float]]) -> pd.DataFrame:
    idx = pd.date_range("2024-01-01", periods=len(rows), freq="1D", tz="UTC", name="ts")
    frame = pd.DataFrame(rows, columns=["open", "high", "low", "close"], index=idx)
    frame["volume"] = 10.0
    return frame


class Script(FromBarZero):
    """Runs `plan[bar_index]` (callables taking the strategy) and keeps what they return."""

    name = "script"
    plan: ClassVar[dict[int, list[Any]]] = {}
    seen: ClassVar[list[Any]] = []

    def on_bar(self) -> None:
        for action in self.plan.get(self.bar_index, []):
            Script.seen.append(action(self))


def run(plan: dict[int, list[Any]], frame: pd.DataFrame, **fill: Any):
    Script.plan, Script.seen = plan, []
    return run_backtest(
        Script(),
        frame,
        symbol="X",
        initial_cash=D(1000),
        fill_model=FillModel(**fill),
        record_ledger=True,
    )


def closed(trades: list[Trade]) -> list[tuple[Any, ...]]:
    return [
        (t.qty, t.entry_bar, t.entry_price, t.exit_bar, t.exit_price, t.exit_reason) for t in trades
    ]


FLAT = (100.0, 100.0, 100.0, 100.0)
QUIET = (100.0, 102.0, 98.0, 101.0)


def bracket(sl: float | None = 95, tp: float | None = 110, tag: str = "e"):
    return {0: [lambda s: s.buy(1, sl=sl, tp=tp, tag=tag)]}


# --- stop-loss and take-profit ------------------------------------------------------------------
def test_a_stop_loss_inside_the_range_fills_at_its_level() -> None:
    res, eng = run(bracket(), bars([FLAT, QUIET, (101, 103, 94, 96), (96, 96, 96, 96)]))
    assert closed(res.trades) == [(D(1), 1, D(100), 2, D(95), "stop_loss")]
    assert res.trades[0].tag == "e"
    sl, tp = (o for o in eng.orders if o.is_protective)
    assert (sl.status, tp.status) == (OrderStatus.FILLED, OrderStatus.CANCELLED)
    assert sl.filled_qty == D(1) and sl.parent_id == eng.orders[0].client_order_id


def test_a_take_profit_inside_the_range_fills_at_its_level() -> None:
    res, _ = run(bracket(), bars([FLAT, QUIET, (101, 111, 100, 109), FLAT]))
    assert closed(res.trades) == [(D(1), 1, D(100), 2, D(110), "take_profit")]


def test_a_bar_reaching_both_is_taken_as_the_stop_loss() -> None:
    res, _ = run(bracket(), bars([FLAT, QUIET, (101, 111, 94, 100), FLAT]))
    assert closed(res.trades) == [(D(1), 1, D(100), 2, D(95), "stop_loss")]


def test_an_open_beyond_the_take_profit_fills_it_there_even_if_the_range_reaches_the_stop() -> None:
    # The open is the bar's first price: the take-profit was marketable there (backtesting.py
    # would still take the stop-loss at 95 here; see test_engine_protective_reference.py).
    res, _ = run(bracket(), bars([FLAT, QUIET, (112, 113, 94, 100), FLAT]))
    assert closed(res.trades) == [(D(1), 1, D(100), 2, D(112), "take_profit")]


def test_an_open_through_the_stop_loss_fills_it_at_the_open() -> None:
    res, _ = run(bracket(), bars([FLAT, QUIET, (93, 97, 92, 96), FLAT]))
    assert closed(res.trades) == [(D(1), 1, D(100), 2, D(93), "stop_loss")]


def test_stops_slip_and_take_profits_do_not() -> None:
    frame = bars([FLAT, QUIET, (101, 103, 94, 96), FLAT])
    res, _ = run(bracket(), frame, slippage_bps=D(100))
    # Entry: market at 100 + 1 %; the stop-loss sells at 95 - 1 %.
    assert [(f.side, f.price) for f in res.fills] == [
        (Side.BUY, D("101.00")),
        (Side.SELL, D("94.05")),
    ]
    res, _ = run(bracket(), bars([FLAT, QUIET, (101, 111, 100, 109), FLAT]), slippage_bps=D(100))
    assert res.fills[1].price == D(110)


def test_a_short_bracket_mirrors_the_long_one() -> None:
    plan = {0: [lambda s: s.sell(2, sl=105, tp=90)]}
    res, _ = run(plan, bars([FLAT, QUIET, (101, 106, 95, 104), FLAT]))
    assert closed(res.trades) == [(D(-2), 1, D(100), 2, D(105), "stop_loss")]
    res, _ = run(plan, bars([FLAT, QUIET, (99, 100, 89, 91), FLAT]))
    assert closed(res.trades) == [(D(-2), 1, D(100), 2, D(90), "take_profit")]
    res, _ = run(plan, bars([FLAT, QUIET, (88, 107, 87, 91), FLAT]))  # open beyond the TP
    assert closed(res.trades) == [(D(-2), 1, D(100), 2, D(88), "take_profit")]


def test_an_entry_filled_at_the_open_is_protected_on_that_bar() -> None:
    res, _ = run(bracket(), bars([FLAT, (100, 101, 94, 99), FLAT]))
    assert closed(res.trades) == [(D(1), 1, D(100), 1, D(95), "stop_loss")]
    # A stop entry the open went through fills at the open: protected on that bar too.
    plan = {0: [lambda s: s.buy(1, stop=101, sl=95)]}
    res, _ = run(plan, bars([FLAT, (103, 104, 94, 100), FLAT]))
    assert closed(res.trades) == [(D(1), 1, D(103), 1, D(95), "stop_loss")]


def test_an_entry_filled_inside_a_bar_is_protected_from_the_next_bar() -> None:
    plan = {0: [lambda s: s.buy(1, limit=99, sl=95)]}
    frame = bars([FLAT, (100, 101, 94, 99), (99, 100, 98, 99), (97, 98, 90, 91)])
    res, _ = run(plan, frame)
    # Filled at 99 inside bar 1, whose low (94) is not held against it; bar 3 stops it out.
    assert closed(res.trades) == [(D(1), 1, D(99), 3, D(95), "stop_loss")]


def test_a_stop_entry_going_on_to_its_take_profit_takes_it_on_that_bar() -> None:
    """A buy stop at 101 filled inside bar 1 whose high reaches the take-profit (105) and whose
    low not the stop-loss (98): the price passed 101 on its way up to 105, so the take-profit
    fills on that bar (as backtesting.py). Shorts mirror it."""
    plan = {0: [lambda s: s.buy(1, stop=101, sl=98, tp=105)]}
    res, _ = run(plan, bars([FLAT, (100, 106, 99.5, 105), FLAT]))
    assert closed(res.trades) == [(D(1), 1, D(101), 1, D(105), "take_profit")]
    plan = {0: [lambda s: s.sell(1, stop=99, sl=102, tp=95)]}
    res, _ = run(plan, bars([FLAT, (100, 100.5, 94, 95), FLAT]))
    assert closed(res.trades) == [(D(-1), 1, D(99), 1, D(95), "take_profit")]


def test_a_fill_inside_a_bar_that_is_not_on_the_way_to_profit_waits() -> None:
    """A bar that also reached the stop-loss is ambiguous, and a limit entry lies the other
    way from its take-profit: both are protected from the next bar."""
    plan = {0: [lambda s: s.buy(1, stop=101, sl=98, tp=105)]}
    res, _ = run(plan, bars([FLAT, (100, 106, 97, 105), (97, 98, 96, 97)]))
    assert closed(res.trades) == [(D(1), 1, D(101), 2, D(97), "stop_loss")]
    plan = {0: [lambda s: s.buy(1, limit=99, tp=105)]}
    res, _ = run(plan, bars([FLAT, (100, 106, 98, 105), FLAT]))
    assert closed(res.trades) == []
    assert res.final_position == 1
    # A stop entry whose bar stops short of the take-profit: nothing more on that bar.
    plan = {0: [lambda s: s.buy(1, stop=101, sl=98, tp=105)]}
    res, _ = run(plan, bars([FLAT, (100, 104, 99.5, 103), (103, 106, 102, 104)]))
    assert closed(res.trades) == [(D(1), 1, D(101), 2, D(105), "take_profit")]


def test_market_orders_at_the_close_are_protected_from_the_next_bar() -> None:
    res, _ = run(bracket(), bars([FLAT, (93, 101, 92, 99), FLAT]), timing=FillTiming.CLOSE)
    # Bought at bar 0's close (100); bar 1 opens through the stop: filled at its open.
    assert closed(res.trades) == [(D(1), 0, D(100), 1, D(93), "stop_loss")]


def test_levels_on_the_wrong_side_of_the_price_are_refused() -> None:
    with pytest.raises(StrategyFailed, match="SL < price < TP"):
        run({0: [lambda s: s.buy(1, sl=101)]}, bars([FLAT, FLAT]))
    with pytest.raises(StrategyFailed, match="TP < price < SL"):
        run({0: [lambda s: s.sell(1, tp=100.5)]}, bars([FLAT, FLAT]))
    with pytest.raises(StrategyFailed, match="reduce-only order cannot carry"):
        run({0: [lambda s: s.sell(1, reduce_only=True, sl=101)]}, bars([FLAT, FLAT]))
    with pytest.raises(StrategyFailed, match="trailing or trailing_pct, not both"):
        run({0: [lambda s: s.buy(1, trailing=1, trailing_pct=0.1)]}, bars([FLAT, FLAT]))


# --- trailing stops -----------------------------------------------------------------------------
def test_a_trailing_stop_follows_the_highs_and_fills_at_its_level() -> None:
    levels: list[Any] = []
    plan = {
        0: [lambda s: s.buy(1, trailing=5)],
        **{i: [lambda s: levels.append(s.trades[0].trailing_stop)] for i in (1, 2)},
    }
    frame = bars([FLAT, (100, 104, 99, 103), (103, 108, 100, 107), (107, 107, 102, 103), FLAT])
    res, _ = run(plan, frame)
    # From the fill at 100: 95; after bar 1's high 104: 99; after bar 2's 108: 103.
    assert levels == [D(99), D(103)]
    assert closed(res.trades) == [(D(1), 1, D(100), 3, D(103), "trailing_stop")]


def test_a_short_trailing_stop_in_percent() -> None:
    plan = {0: [lambda s: s.sell(1, trailing_pct=0.05)]}
    frame = bars([FLAT, (100, 101, 96, 97), (97, 99, 93, 94), (95, 98, 94, 97), FLAT])
    res, _ = run(plan, frame)
    # 105 from the fill at 100; 96 * 1.05 = 100.8 after bar 1; 93 * 1.05 = 97.65 after bar 2.
    assert closed(res.trades) == [(D(-1), 1, D(100), 3, D("97.65"), "trailing_stop")]
    assert res.trades[0].pnl == D("2.35")


def test_a_trailing_stop_never_loosens_and_ignores_its_own_bars_high() -> None:
    plan = {0: [lambda s: s.buy(1, trailing=5)]}
    # Bar 1 reaches 110 then falls to 104: the stop (95 on that bar) holds, 105 after it;
    # bar 2's lower high leaves it there, bar 3 reaches it.
    rows = [FLAT, (100, 110, 104, 104), (106, 107, 105.5, 106), (105.5, 106, 104, 104), FLAT]
    res, _ = run(plan, bars(rows))
    assert closed(res.trades) == [(D(1), 1, D(100), 3, D(105), "trailing_stop")]
    # A gap through it fills at the open.
    rows[2] = (104, 106, 103, 104)
    res, _ = run(plan, bars(rows))
    assert closed(res.trades) == [(D(1), 1, D(100), 2, D(104), "trailing_stop")]


# --- the open trade -----------------------------------------------------------------------------
def test_the_open_trade_can_be_given_and_changed_protection() -> None:
    read: list[Any] = []

    def protect(s: Strategy) -> None:
        (trade,) = s.trades
        trade.sl, trade.tp = 95, 110
        read.append((trade.sl, trade.tp, trade.entry_price, trade.tag, trade.entry_bar))
        assert trade.trailing_stop is None
        assert repr(trade).startswith("OpenTrade(X 1 @ 100.0 since 2024-01-02 00:00:00+00:00,")
        assert trade.is_long and trade.symbol == "X" and trade.qty == D(1)

    def tighten(s: Strategy) -> None:
        s.trades[0].sl = 97
        read.append((s.trades[0].sl, len(s.trades[0].orders), len(s.orders)))

    plan = {0: [lambda s: s.buy(1, tag="in")], 1: [protect], 2: [tighten]}
    frame = bars([FLAT, QUIET, QUIET, (99, 100, 96, 98), FLAT])
    res, eng = run(plan, frame)
    assert read == [(D(95), D(110), D(100), "in", 1), (D(97), 2, 2)]
    assert closed(res.trades) == [(D(1), 1, D(100), 3, D(97), "stop_loss")]
    statuses = [(o.reason, o.status.value) for o in eng.orders if o.is_protective]
    assert statuses == [
        ("stop_loss", "cancelled"),
        ("take_profit", "cancelled"),
        ("stop_loss", "filled"),
    ]


def test_protection_removed_from_the_trade_no_longer_triggers() -> None:
    def unprotect(s: Strategy) -> None:
        s.trades[0].sl = None
        s.trades[0].trail(None)

    plan = {0: [lambda s: s.buy(1, sl=95)], 1: [unprotect]}
    res, _ = run(plan, bars([FLAT, QUIET, (98, 99, 80, 85), FLAT]))
    assert res.trades == [] and res.final_position == D(1)
    with pytest.raises(StrategyFailed, match="no open trade to protect"):
        run(
            {0: [lambda s: setattr(s, "_x", s.buy(1)) or s._protect("stop_loss", 90)]}, bars([FLAT])
        )


def test_a_trailing_stop_set_on_the_trade_starts_from_the_close() -> None:
    plan = {0: [lambda s: s.buy(1)], 1: [lambda s: s.trades[0].trail(pct=0.1)]}
    frame = bars([FLAT, (100, 101, 99, 100), (100, 105, 99, 104), (104, 104, 94, 95), FLAT])
    res, _ = run(plan, frame)
    # Set at bar 1's close (100): 90; after bar 2's high 105: 94.5, reached by bar 3's low.
    assert closed(res.trades) == [(D(1), 1, D(100), 3, D("94.5"), "trailing_stop")]


def test_a_strategy_reads_its_open_and_closed_trades() -> None:
    read: list[Any] = []

    def look(s: Strategy) -> None:
        read.append(
            ([(t.qty, t.entry_price, t.entry_time, t.tag, t.pl) for t in s.trades],
             [(t.exit_reason, t.tag, t.exit_price) for t in s.closed_trades])
        )  # fmt: skip

    frame = bars([FLAT, QUIET, (101, 103, 94, 96), FLAT])
    run({0: [lambda s: s.buy(2, sl=95, tag="dip")], 1: [look], 2: [look]}, frame)
    assert read == [
        ([(D(2), D(100), frame.index[1].to_pydatetime(), "dip", D(2))], []),
        ([], [("stop_loss", "dip", D(95))]),
    ]


# --- positions changed by other orders ------------------------------------------------------------
def test_closing_the_position_cancels_its_protection() -> None:
    plan = {
        0: [lambda s: s.buy(1, sl=95, tp=110)],
        1: [lambda s: s.close()],
        2: [lambda s: s.buy(1)],
    }
    frame = bars([FLAT, QUIET, QUIET, (101, 111, 90, 100), FLAT])
    res, eng = run(plan, frame)
    assert closed(res.trades) == [(D(1), 1, D(100), 2, D(100), "signal")]
    assert res.final_position == D(1)  # the new position is not touched by the old stop
    assert [o.status.value for o in eng.orders if o.is_protective] == ["cancelled", "cancelled"]


def test_a_flip_cancels_the_old_side_protection() -> None:
    plan = {0: [lambda s: s.buy(1, sl=95)], 1: [lambda s: s.go_short()]}
    res, eng = run(plan, bars([FLAT, QUIET, (101, 102, 90, 95), FLAT]))
    assert closed(res.trades) == [(D(1), 1, D(100), 2, D(101), "signal")]
    assert res.final_position < 0
    assert [o.status.value for o in eng.orders if o.is_protective] == ["cancelled"]


def test_each_entry_protects_its_own_quantity() -> None:
    plan = {0: [lambda s: s.buy(1, sl=95)], 1: [lambda s: s.buy(1, sl=90)]}
    frame = bars([FLAT, QUIET, QUIET, (100, 100, 94, 96), (96, 96, 89, 90), FLAT])
    res, _ = run(plan, frame)
    assert [(t.qty, t.exit_bar, t.exit_price, t.exit_reason) for t in res.trades] == [
        (D(1), 3, D(95), "stop_loss"),
        (D(1), 4, D(90), "stop_loss"),
    ]
    assert res.final_position == 0


def test_a_stop_never_sells_more_than_is_held() -> None:
    plan = {0: [lambda s: s.buy(10, sl=95)], 1: [lambda s: s.sell(4)]}
    res, _ = run(plan, bars([FLAT, QUIET, QUIET, (100, 100, 94, 96), FLAT]))
    assert [(t.qty, t.exit_price, t.exit_reason) for t in res.trades] == [
        (D(4), D(100), "signal"),
        (D(6), D(95), "stop_loss"),
    ]
    assert res.final_position == 0


# --- OCO, cancel, time in force, reduce-only ------------------------------------------------------
def test_one_cancels_the_other() -> None:
    def breakout(s: Strategy) -> None:
        s.buy(1, stop=105, oco="range")
        s.sell(1, stop=95, oco="range")

    res, eng = run({0: [breakout]}, bars([FLAT, (100, 106, 99, 105), (105, 105, 90, 91)]))
    assert [(f.side, f.price) for f in res.fills] == [(Side.BUY, D(105))]
    assert [o.status.value for o in eng.orders] == ["filled", "cancelled"]
    # Both reached on one bar: the first placed fills, the other is cancelled.
    res, eng = run({0: [breakout]}, bars([FLAT, (100, 106, 94, 100), FLAT]))
    assert [(f.side, f.price) for f in res.fills] == [(Side.BUY, D(105))]
    assert [o.status.value for o in eng.orders] == ["filled", "cancelled"]


def test_cancel_one_order_and_the_protection_waiting_for_it() -> None:
    got: dict[str, Any] = {}
    plan = {
        0: [
            lambda s: got.setdefault("entry", s.buy(1, limit=90, sl=85)),
            lambda s: s.buy(1, limit=91),
        ],
        1: [lambda s: got.setdefault("open", [o.reason for o in s.orders])],
        2: [lambda s: got.setdefault("ok", (s.cancel(got["entry"]), s.cancel(got["entry"])))],
    }  # fmt: skip
    frame = bars([FLAT, QUIET, QUIET, (95, 96, 80, 85), FLAT])
    res, eng = run(plan, frame)
    assert got["open"] == ["signal", "signal", "stop_loss"]
    assert got["ok"] == (True, False)
    assert [(f.price, f.qty) for f in res.fills] == [(D(91), D(1))]  # only the other one
    assert [o.status.value for o in eng.orders] == ["cancelled", "cancelled", "filled"]


def test_cancel_a_protective_order_keeps_the_others() -> None:
    def drop_stop(s: Strategy) -> None:
        (stop,) = (o for o in s.orders if o.reason == "stop_loss")
        assert s.cancel(stop)

    plan = {0: [lambda s: s.buy(1, sl=95, tp=110)], 1: [drop_stop]}
    res, _ = run(plan, bars([FLAT, QUIET, (100, 100, 80, 90), (90, 111, 90, 105), FLAT]))
    assert closed(res.trades) == [(D(1), 1, D(100), 3, D(110), "take_profit")]


@pytest.mark.parametrize("tif", ["IOC", "FOK"])
def test_immediate_orders_get_the_open_only(tif: str) -> None:
    res, eng = run({0: [lambda s: s.buy(1, limit=101, tif=tif)]}, bars([FLAT, QUIET, FLAT]))
    assert [f.price for f in res.fills] == [D(100)]
    # The range reaches 99 later in the bar, but the open (100) did not fill it: cancelled.
    res, eng = run({0: [lambda s: s.buy(1, limit=99, tif=tif)]}, bars([FLAT, QUIET, QUIET]))
    assert res.fills == [] and eng.orders[0].status is OrderStatus.CANCELLED
    res, eng = run({0: [lambda s: s.sell(1, limit=99, tif=tif)]}, bars([FLAT, QUIET]))
    assert [f.price for f in res.fills] == [D(100)]


def test_immediate_orders_with_fills_at_the_close() -> None:
    plan = {1: [lambda s: s.buy(1, limit=102, tif="IOC"), lambda s: s.buy(1, limit=100, tif="IOC")]}
    res, eng = run(plan, bars([FLAT, QUIET, QUIET]), timing=FillTiming.CLOSE)
    assert [(f.price, f.ts) for f in res.fills] == [(D(101), res.bars.index[1])]
    assert [o.status.value for o in eng.orders] == ["filled", "cancelled"]
    with pytest.raises(StrategyFailed, match="IOC applies to market and limit orders"):
        run({0: [lambda s: s.buy(1, stop=101, tif="IOC")]}, bars([FLAT]))


def test_an_order_good_for_some_bars_expires_after_them() -> None:
    frame = bars([FLAT, (100, 101, 97, 99), (99, 100, 96, 97), (97, 98, 94, 95), FLAT])
    res, eng = run({0: [lambda s: s.buy(1, limit=95, bars=2, sl=90)]}, frame)
    assert res.fills == [] and [o.status.value for o in eng.orders] == ["cancelled"] * 2
    res, _ = run({0: [lambda s: s.buy(1, limit=95, bars=3)]}, frame)
    assert [(f.price, f.ts) for f in res.fills] == [(D(95), frame.index[3])]
    with pytest.raises(StrategyFailed, match="bars must be at least 1"):
        run({0: [lambda s: s.buy(1, bars=0)]}, frame)


def test_reduce_only_never_opens_or_flips() -> None:
    plan = {
        0: [lambda s: s.buy(10)],
        1: [lambda s: s.sell(15, reduce_only=True)],
        2: [lambda s: s.sell(5, reduce_only=True), lambda s: s.buy(limit=200, reduce_only=True)],
    }
    res, eng = run(plan, bars([FLAT, QUIET, QUIET, QUIET, FLAT]))
    assert [(f.side, f.qty) for f in res.fills] == [(Side.BUY, D(10)), (Side.SELL, D(10))]
    assert res.final_position == 0
    assert [o.status.value for o in eng.orders] == ["filled", "filled", "rejected", "rejected"]


def test_order_handles_and_validation() -> None:
    with pytest.raises(ValueError, match="must be reduce-only"):
        Order("X", Side.SELL, type=OrderType.STOP, qty=D(1), stop_price=D(1), reason="stop_loss")
    with pytest.raises(ValueError, match="is a stop order"):
        Order(
            "X",
            Side.SELL,
            qty=D(1),
            reduce_only=True,
            limit_price=D(1),
            type=OrderType.LIMIT,
            reason="stop_loss",
        )
    with pytest.raises(ValueError, match="exactly one of trail"):
        Order(
            "X",
            Side.SELL,
            type=OrderType.STOP,
            stop_price=D(1),
            reduce_only=True,
            reason="trailing_stop",
        )
    with pytest.raises(ValueError, match="good till cancelled"):
        Order(
            "X",
            Side.SELL,
            type=OrderType.STOP,
            stop_price=D(1),
            reduce_only=True,
            reason="stop_loss",
            bars=2,
        )
    market = Order("X", Side.SELL, reduce_only=True, reason="stop_loss")  # a trigger's order
    assert not market.is_protective
    trailing = {"type": OrderType.STOP, "stop_price": D(1), "reduce_only": True}
    with pytest.raises(ValueError, match="trail must be positive"):
        Order("X", Side.SELL, reason="trailing_stop", trail=D(0), **trailing)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"trail_pct must be in \(0, 1\)"):
        Order("X", Side.SELL, reason="trailing_stop", trail_pct=D(1), **trailing)  # type: ignore[arg-type]
    with pytest.raises(StrategyFailed, match="is not below the price"):
        run({0: [lambda s: s.buy(1, trailing=100)]}, bars([FLAT]))


def test_the_book_forgets_what_ended_otherwise() -> None:
    book = ProtectiveBook()
    stop = Order(
        "X", Side.SELL, type=OrderType.STOP, stop_price=D(9), reduce_only=True,
        reason="stop_loss", oco="g", parent_id="entry",
    )  # fmt: skip
    book.wait(book.add(stop))
    other = Order("X", Side.SELL, qty=D(1), oco="g")
    book.leave_group(other)  # not a member: nothing happens
    assert book.groups == {"g": [stop]}
    stop.status = OrderStatus.REJECTED
    book.drop(stop)
    assert (book.orders(), book.waiting, book.groups) == ([], {}, {})
    book.drop(stop)  # no longer held: nothing happens
    assert book.siblings(other) == [] and book.parent_dead("entry") == []


# --- accounting ---------------------------------------------------------------------------------
class RandomBrackets(Strategy):
    """Enters at random with random protection, sometimes closes by signal or moves the stop."""

    name = "random_brackets"

    def init(self) -> None:
        self.rng = np.random.default_rng(5)

    def on_bar(self) -> None:
        price = float(self.data.close[-1])
        roll = self.rng.random()
        if self.position == 0 and roll < 0.3:
            side = self.buy if self.rng.random() < 0.5 else self.sell
            sign = 1 if side == self.buy else -1
            kind = self.rng.integers(4)
            kwargs: dict[str, Any] = {"fraction": 0.5, "tag": f"k{kind}"}
            if kind in (0, 3):
                kwargs["sl"] = price * (1 - sign * 0.02)
            if kind in (1, 3):
                kwargs["tp"] = price * (1 + sign * 0.03)
            if kind == 2:
                kwargs["trailing_pct"] = 0.015
            if self.rng.random() < 0.3:
                kwargs["limit"] = price * (1 - sign * 0.002)
                kwargs["bars"] = 3
            side(**kwargs)
        elif self.position != 0 and roll < 0.05:
            self.go_flat()
        elif self.position != 0 and roll < 0.1 and self.trades:
            self.trades[0].sl = price * (0.97 if self.position > 0 else 1.03)


def test_accounting_holds_with_protective_orders() -> None:
    rng = np.random.default_rng(9)
    close = np.round(100 * np.exp(np.cumsum(rng.normal(0, 0.01, 3000))), 2)
    open_ = np.round(np.concatenate(([100.0], close[:-1])) * (1 + rng.normal(0, 0.003, 3000)), 2)
    high = np.maximum(open_, close) + np.round(rng.uniform(0, 0.8, 3000), 2)
    low = np.minimum(open_, close) - np.round(rng.uniform(0, 0.8, 3000), 2)
    frame = bars(list(zip(open_, high, low, close, strict=True)))
    res, eng = run_backtest(
        RandomBrackets(),
        frame,
        symbol="X",
        initial_cash=D(10_000),
        fill_model=FillModel(commission_pct=D("0.001"), slippage_bps=D(3), lot_size=D("0.001")),
        record_ledger=True,
    )
    reasons = {t.exit_reason for t in res.trades}
    assert reasons == {"signal", "stop_loss", "take_profit", "trailing_stop"}
    for row in eng.ledger:  # equity = cash + position value, exactly, at every close
        assert row.equity == row.cash + row.qty * row.price
    for order in eng.orders:  # fills sum to each order's quantity
        filled = sum((f.qty for f in res.fills if f.client_order_id == order.client_order_id), D(0))
        assert filled == order.filled_qty
        assert (filled > 0) == (order.status is OrderStatus.FILLED)
    assert sum((f.signed_qty for f in res.fills), D(0)) == res.final_position
    pos = eng.portfolio.position("X")
    open_fees = eng.portfolio.fees_paid - sum((t.fees for t in res.trades), D(0))
    unrealised = pos.qty * (D(repr(float(close[-1]))) - pos.avg_price)
    pnl = sum((t.pnl for t in res.trades), D(0)) + unrealised - open_fees
    assert abs(pnl - (res.final_equity - D(10_000))) < D("1e-18")  # 28-digit Decimal shares
    if res.final_position == 0:
        assert eng.book.armed == []


def test_plain_strategies_do_not_take_the_managed_path() -> None:
    from sigma.strategies.builtin import SmaCross

    _, eng = run_backtest(SmaCross(fast=3, slow=8), bars([QUIET] * 50), symbol="X")
    assert eng._managed is False and eng.book.armed == []


class _Refuse:
    """An entry gate that vetoes every entry."""

    reason = "no"

    def allows(self, order: Order, data: object) -> bool:
        return False


def test_protection_of_an_entry_that_never_fills_is_cancelled_with_it() -> None:
    Script.plan, Script.seen = {0: [lambda s: s.buy(1, sl=95, tp=110)]}, []
    res, eng = run_backtest(Script(), bars([FLAT, QUIET]), symbol="X", entry_gate=_Refuse())
    assert [o.status.value for o in eng.orders] == ["rejected", "cancelled", "cancelled"]
    assert eng.book.orders() == [] and eng.book.groups == {}
    # go_long withdraws a pending bracketed entry, and its protection with it.
    plan = {0: [lambda s: s.buy(1, limit=90, sl=85)], 1: [lambda s: s.go_long()]}
    res, eng = run(plan, bars([FLAT, QUIET, QUIET]))
    assert [o.status.value for o in eng.orders] == ["cancelled", "cancelled", "filled"]
    # An entry refused when it comes to fill (no cash for it) takes its protection along.
    res, eng = run({0: [lambda s: s.buy(fraction=1, sl=95, tif="IOC")]}, bars([FLAT, (2e6,) * 4]))
    assert res.fills == [] and [o.status.value for o in eng.orders] == ["rejected", "cancelled"]
    assert eng.book.orders() == []


def test_a_market_order_with_a_time_in_force_fills_at_the_open() -> None:
    res, _ = run({0: [lambda s: s.buy(2, tif="IOC")]}, bars([FLAT, QUIET]), slippage_bps=D(100))
    assert [(f.price, f.qty) for f in res.fills] == [(D("101.00"), D(2))]
    got: list[Any] = []
    run(
        {0: [lambda s: s.buy(2)], 2: [lambda s: got.append(s.cancel(s._ctx.orders[0]))]},
        bars([FLAT] * 3),
    )
    assert got == [False]  # filled: nothing to cancel


def test_protection_without_a_position_is_cancelled_at_once() -> None:
    def naked(s: Strategy) -> None:
        stop = Order(
            "X",
            Side.SELL,
            type=OrderType.STOP,
            stop_price=D(90),
            reduce_only=True,
            reason="stop_loss",
        )
        s._ctx.submit(stop)
        got.append(stop.status)

    got: list[Any] = []
    run({0: [naked]}, bars([FLAT, FLAT]))
    assert got == [OrderStatus.CANCELLED]


def test_a_bounded_history_keeps_expiries_and_protection_in_step() -> None:
    from sigma.domain import Bar
    from sigma.engine.engine import Engine, EngineConfig, empty_data

    rng = np.random.default_rng(2)
    close = np.round(100 * np.exp(np.cumsum(rng.normal(0, 0.01, 600))), 2)
    open_ = np.round(np.concatenate(([100.0], close[:-1])), 2)
    rows = list(
        zip(
            open_,
            np.maximum(open_, close) + 0.4,
            np.minimum(open_, close) - 0.4,
            close,
            strict=True,
        )
    )
    frame = bars(rows)
    config = EngineConfig(initial_cash=D(10_000), fill_model=FillModel(lot_size=D("0.01")))
    whole, bounded = (Engine(RandomBrackets(), "X", empty_data(), config) for _ in range(2))
    for k, (ts, row) in enumerate(frame.iterrows()):
        prices = (D(repr(float(row[c]))) for c in ("open", "high", "low", "close"))
        bar = Bar("X", ts.to_pydatetime(), *prices, D(1))
        whole.on_bar(bar)
        if k % 7 == 6 and len(bounded.data) > 12:
            bounded.drop_oldest(len(bounded.data) - 12)
        bounded.on_bar(bar)
    assert len(bounded.data) <= 19 and len(whole.trades) > 20
    assert {t.exit_reason for t in whole.trades} == {
        "signal",
        "stop_loss",
        "take_profit",
        "trailing_stop",
    }

    def key(t: Trade) -> tuple[Any, ...]:
        return (t.qty, t.entry_ts, t.entry_price, t.exit_ts, t.exit_price, t.exit_reason, t.tag)

    assert [key(t) for t in bounded.trades] == [key(t) for t in whole.trades]


def test_a_run_that_keeps_no_records_trades_the_same() -> None:
    # Without its orders and fills kept (`sigma backtest`: less memory), a run with protective
    # orders, OCO groups and expiring limits takes the same trades to the same equity.
    rng = np.random.default_rng(9)
    close = np.round(100 * np.exp(np.cumsum(rng.normal(0, 0.01, 3000))), 2)
    open_ = np.round(np.concatenate(([100.0], close[:-1])) * (1 + rng.normal(0, 0.003, 3000)), 2)
    high = np.maximum(open_, close) + np.round(rng.uniform(0, 0.8, 3000), 2)
    low = np.minimum(open_, close) - np.round(rng.uniform(0, 0.8, 3000), 2)
    frame = bars(list(zip(open_, high, low, close, strict=True)))
    fill_model = FillModel(commission_pct=D("0.001"), slippage_bps=D(3), lot_size=D("0.001"))
    runs = [
        run_backtest(
            RandomBrackets(),
            frame,
            symbol="X",
            initial_cash=D(10_000),
            fill_model=fill_model,
            keep_records=keep,
        )
        for keep in (True, False)
    ]
    (kept, kept_engine), (lean, lean_engine) = runs
    assert lean.trades == kept.trades and len(kept.trades) > 20
    assert (lean.final_equity, lean.final_cash) == (kept.final_equity, kept.final_cash)
    assert lean.stats == kept.stats
    assert lean.equity.equals(kept.equity)
    assert kept.fills and kept_engine.orders
    assert (lean.fills, lean_engine.fills, lean_engine.orders) == ([], [], [])

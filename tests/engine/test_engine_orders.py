"""Order types, fill timing, costs, sizing and the live (bar-by-bar) path of the engine."""

from __future__ import annotations

import threading
import warnings
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from sigma.domain import Bar, OrderStatus, Side
from sigma.engine.engine import (
    Cancelled,
    Engine,
    EngineConfig,
    StrategyFailed,
    empty_data,
    frame_to_data,
    run_engine,
)
from sigma.engine.fill_model import FillModel, FillTiming
from sigma.research.backtest import run_backtest
from sigma.strategies import Param, Strategy
from sigma.strategies.builtin import SmaCross
from sigma.strategies.series import COLUMNS, Cursor, Data
from tests.scripted import FromBarZero

D = Decimal


def bars(rows: list[tuple[float, float, float, float]]) -> pd.DataFrame:
    idx = pd.date_range("2024-01-01", periods=len(rows), freq="1D", tz="UTC", name="ts")
    frame = pd.DataFrame(rows, columns=["open", "high", "low", "close"], index=idx)
    frame["volume"] = 10.0
    return frame


class Script(FromBarZero):
    """Places the orders of `plan[bar_index]` (callables taking the strategy)."""

    name = "script"
    plan: ClassVar[dict[int, list]] = {}

    def on_bar(self) -> None:
        for action in self.plan.get(self.bar_index, []):
            action(self)


def run(plan: dict[int, list], frame: pd.DataFrame, **fill: object):
    Script.plan = plan
    return run_backtest(
        Script(),
        frame,
        symbol="X",
        initial_cash=D(1000),
        fill_model=FillModel(**fill),  # type: ignore[arg-type]
        record_ledger=True,
    )


PATH = bars([(10, 10, 10, 10), (10, 12, 9, 11), (11, 13, 10, 12), (12, 12, 8, 9), (9, 9, 9, 9)])


def test_market_order_fills_at_next_open_with_fees() -> None:
    res, _ = run(
        {0: [lambda s: s.buy(10)]}, PATH, commission_pct=D("0.01"), commission_fixed=D("1")
    )
    (fill,) = res.fills
    assert (fill.price, fill.qty, fill.fee) == (D(10), D(10), D("2.00"))
    assert res.final_cash == D(1000) - D(100) - D(2)
    assert res.final_equity == res.final_cash + 10 * D(9)


def test_fill_at_close_uses_the_signal_bar() -> None:
    res, _ = run({1: [lambda s: s.buy(1)]}, PATH, timing=FillTiming.CLOSE)
    assert res.fills[0].price == D(11)
    assert res.fills[0].ts == PATH.index[1]


def test_limit_buy_waits_for_the_low_and_fills_at_the_better_price() -> None:
    res, _ = run({0: [lambda s: s.buy(1, limit=8.5)]}, PATH)
    assert [f.price for f in res.fills] == [D("8.5")]
    assert res.fills[0].ts == PATH.index[3]
    gap = bars([(10, 10, 10, 10), (7, 8, 6, 7)])
    res, _ = run({0: [lambda s: s.buy(1, limit=8.5)]}, gap)
    assert res.fills[0].price == D(7)  # gapped below the limit: the open is better


def test_limit_sell_and_stop_orders() -> None:
    res, _ = run({0: [lambda s: s.sell(1, limit=12.5)]}, PATH)
    assert res.fills[0].price == D("12.5") and res.fills[0].side is Side.SELL
    res, _ = run({0: [lambda s: s.buy(1, stop=12.5)]}, PATH)
    assert res.fills[0].price == D("12.5")
    res, _ = run({0: [lambda s: s.sell(1, stop=8.5)]}, PATH)
    assert res.fills[0].price == D("8.5")
    gap = bars([(10, 10, 10, 10), (14, 15, 13, 14)])
    res, _ = run({0: [lambda s: s.buy(1, stop=12)]}, gap)
    assert res.fills[0].price == D(14)  # gapped through the stop: filled at the open


def test_unfilled_orders_stay_pending_and_can_be_cancelled() -> None:
    res, eng = run({0: [lambda s: s.buy(1, limit=1)], 2: [lambda s: s.go_flat()]}, PATH)
    assert res.fills == []
    assert eng.orders[0].status is OrderStatus.CANCELLED


def test_slippage_moves_market_fills_against_the_trader_but_not_limits() -> None:
    res, _ = run({0: [lambda s: s.buy(1)], 1: [lambda s: s.sell(1)]}, PATH, slippage_bps=D(50))
    assert [f.price for f in res.fills] == [D("10.050"), D("10.945")]
    res, _ = run({0: [lambda s: s.buy(1, limit=9.5)]}, PATH, slippage_bps=D(50))
    assert res.fills[0].price == D("9.5")


def test_fractional_sizing_and_rejection_when_broke() -> None:
    res, _ = run({0: [lambda s: s.buy(fraction=0.5)]}, PATH, lot_size=D("0.001"))
    assert res.fills[0].qty == D("50.000")
    res, eng = run(
        {0: [lambda s: s.buy(fraction=1)]}, bars([(10, 10, 10, 10), (2000, 2000, 2000, 2000)])
    )
    assert res.fills == [] and eng.orders[0].status is OrderStatus.REJECTED


def test_a_stake_commits_that_share_of_a_fraction_sized_order() -> None:
    Script.plan = {0: [lambda s: s.buy(fraction=0.5)], 2: [lambda s: s.buy(qty=7)]}
    config = EngineConfig(initial_cash=D(1000), fill_model=FillModel(lot_size=D("0.001")))
    eng = Engine(Script(), "X", frame_to_data(PATH), replace(config, stake=D("0.25")))
    run_engine(eng)
    # Half of the account at a quarter stake: 125 of 1,000 at the open of 10; a quantity
    # given in units is not scaled.
    assert [f.qty for f in eng.fills] == [D("12.500"), D(7)]


def test_partial_close_and_flip_book_trades_exactly() -> None:
    plan = {0: [lambda s: s.buy(10)], 1: [lambda s: s.sell(4)], 2: [lambda s: s.sell(10)]}
    res, eng = run(plan, PATH, commission_pct=D("0.001"))
    first, second = res.trades
    assert first.qty == D(4) and first.entry_price == D(10) and first.exit_price == D(11)
    assert second.qty == D(6) and second.exit_price == D(12)
    assert res.final_position == D(-4)
    # Closed-trade PnL + open position's unrealised PnL - its entry fee = change in equity.
    pos = eng.portfolio.position("X")
    open_fees = eng.portfolio.fees_paid - sum(t.fees for t in res.trades)
    unrealised = pos.qty * (D(9) - pos.avg_price)
    assert sum(t.pnl for t in res.trades) + unrealised - open_fees == res.final_equity - D(1000)
    for row in eng.ledger:
        assert row.equity == row.cash + row.qty * row.price


def test_close_when_flat_places_nothing() -> None:
    seen = []
    res, eng = run({0: [lambda s: seen.append(s.close())]}, PATH)
    assert seen == [None] and eng.orders == [] and res.fills == []


def test_reject_invalid_orders() -> None:
    with pytest.raises(StrategyFailed, match="ValueError: an order is either limit or stop"):
        run({0: [lambda s: s.buy(1, limit=1, stop=2)]}, PATH)
    with pytest.raises(StrategyFailed, match="finite"):
        run({0: [lambda s: s.buy(float("nan"))]}, PATH)


def test_an_exception_in_the_strategy_names_strategy_symbol_bar_and_time() -> None:
    with pytest.raises(StrategyFailed) as info:
        run({2: [lambda s: 1 / 0]}, PATH)
    failed = info.value
    assert str(failed) == (
        "strategy 'script' failed on X at bar 2 (2024-01-03T00:00:00+00:00): "
        "ZeroDivisionError: division by zero"
    )
    assert (failed.strategy, failed.symbol, failed.bar) == ("script", "X", 2)
    assert isinstance(failed.__cause__, ZeroDivisionError) and failed.error is failed.__cause__


def test_an_exception_in_init_is_named_too() -> None:
    class NoInit(Strategy):
        name = "no_init"

        def init(self) -> None:
            raise RuntimeError("indicator service down")

    with pytest.raises(StrategyFailed) as info:
        run_backtest(NoInit(), PATH, symbol="X")
    assert str(info.value) == (
        "strategy 'no_init' failed on X in init(): RuntimeError: indicator service down"
    )
    assert info.value.bar is None and info.value.ts is None


def test_live_bar_by_bar_matches_the_backtest() -> None:
    rng = np.random.default_rng(3)
    close = np.round(100 * np.exp(np.cumsum(rng.normal(0, 0.01, 600))), 2)
    frame = bars([(c, c + 0.5, c - 0.5, c) for c in close])
    batch, _ = run_backtest(
        SmaCross(fast=5, slow=15),
        frame,
        symbol="X",
        fill_model=FillModel(commission_pct=D("0.001")),
    )
    live = Engine(
        SmaCross(fast=5, slow=15),
        "X",
        empty_data(),
        EngineConfig(fill_model=FillModel(commission_pct=D("0.001"))),
    )
    for ts, row in frame.iterrows():
        live.on_bar(
            Bar(
                "X",
                ts.to_pydatetime(),
                D(repr(float(row.open))),
                D(repr(float(row.high))),
                D(repr(float(row.low))),
                D(repr(float(row.close))),
                D(10),
            )
        )
    assert [(t.entry_bar, t.qty, t.pnl) for t in live.trades] == [
        (t.entry_bar, t.qty, t.pnl) for t in batch.trades
    ]
    assert live.equity() == batch.final_equity
    assert len(batch.trades) > 5


def test_progress_and_cancel() -> None:
    frame = bars([(10.0, 10.0, 10.0, 10.0)] * 50)
    calls: list[tuple[int, int]] = []
    run_backtest(
        SmaCross(fast=2, slow=3), frame, symbol="X", progress=lambda d, t: calls.append((d, t))
    )
    assert calls[0] == (0, 50) and calls[-1] == (50, 50)
    stop = threading.Event()
    stop.set()
    eng = Engine(SmaCross(fast=2, slow=3), "X", frame_to_data(frame), EngineConfig())
    with pytest.raises(Cancelled, match="bar 0 of 50"):
        run_engine(eng, cancel=stop)
    with pytest.raises(ValueError, match="no bars"):
        run_backtest(SmaCross(), frame.iloc[:0], symbol="X")


def test_engine_equity_before_first_bar_is_cash() -> None:
    eng = Engine(SmaCross(), "X", empty_data(), EngineConfig(initial_cash=D(5)))
    assert eng.equity() == D(5) and eng.cash() == D(5)


def test_fill_model_validation() -> None:
    for kwargs, msg in [
        ({"commission_pct": D("0.5")}, "commission_pct"),
        ({"commission_fixed": D(-1)}, "commission_fixed"),
        ({"slippage_bps": D(-1)}, "slippage_bps"),
        ({"lot_size": D(0)}, "lot_size"),
    ]:
        with pytest.raises(ValueError, match=msg):
            FillModel(**kwargs)  # type: ignore[arg-type]
    assert FillModel(commission_fixed=D(5)).affordable_qty(D(4), D(1)) == 0


class Sized(Strategy):
    name = "sized"
    n = Param(3, low=1, high=10)


def test_strategy_ts_helpers() -> None:
    s = Sized(n="4")
    assert s.n == 4 and s.params == {"n": 4}
    start = datetime(2024, 1, 1, tzinfo=UTC)
    assert start + timedelta(days=1) > start


def test_bar_times_are_what_pandas_gives() -> None:
    # Order and fill times come from the integer ns stamps: the same datetimes as
    # pd.Timestamp(ts, tz="UTC").to_pydatetime(), sub-microseconds cut, before 1970 too.
    stamps = pd.DatetimeIndex(
        ["1969-12-31 23:59:59.999999999", "2024-02-29 12:00:00.123456789", "2262-04-11"]
    )
    frame = pd.DataFrame(
        dict.fromkeys(("open", "high", "low", "close", "volume"), 1.0),
        index=stamps.tz_localize("UTC"),
    )
    data = frame_to_data(frame)
    for i, ts in enumerate(stamps):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas warns that it drops the nanoseconds
            expected = pd.Timestamp(ts, tz="UTC").to_pydatetime()
        assert data.time(i) == expected and data.time(i).tzinfo is UTC
    # Stamps in another unit are held as ns.
    coarse = frame_to_data(frame).ts.astype("datetime64[s]")
    assert Data(dict.fromkeys(COLUMNS, np.ones(3)), coarse, Cursor()).time(1) == datetime(
        2024, 2, 29, 12, tzinfo=UTC
    )


def test_bar_times_asked_in_any_order_are_the_same_as_made_alone() -> None:
    # `Data.time` makes a bar's time from the last one it made plus the step between them
    # (steps are kept): uneven steps, backwards, repeated and far apart give the same times.
    rng = np.random.default_rng(7)
    ns = np.cumsum(rng.integers(1, 10**12, 400)) + np.int64(-(10**17))
    data = Data(dict.fromkeys(COLUMNS, np.ones(len(ns))), ns.astype("datetime64[ns]"), Cursor())
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    for i in [*range(0, 400, 7), 3, 3, 399, 0, *rng.integers(0, 400, 200).tolist()]:
        when = data.time(i)
        assert when == epoch + timedelta(microseconds=int(ns[i]) // 1000) and when.tzinfo is UTC


def test_bar_prices_are_exact_whatever_was_read_before() -> None:
    # Prices are converted once per distinct float and kept; zero, signed zero and NaN are
    # converted every time (equal floats with other texts, or no dictionary key).
    from sigma.engine.engine import _dec

    for value in [100.34, 0.1 + 0.2, 1e-7, 3.0, 100.34, 0.0, -0.0, float("nan"), -2.5, 1e22]:
        for _ in range(2):
            got, want = _dec(value), Decimal(repr(value))
            assert str(got) == str(want)


def test_data_value_reads_stored_bars_only() -> None:
    data = frame_to_data(PATH)
    assert (data.value("close", 0), data.value("high", -1), data.value("low", -5)) == (
        10.0,
        9.0,
        10.0,
    )
    data.append(np.datetime64("2024-01-06"), dict.fromkeys(COLUMNS, 7.0))
    assert data.value("open", -1) == 7.0 and data.value("open", 5) == 7.0
    for i in (6, -7):
        with pytest.raises(IndexError, match="not a stored bar"):
            data.value("open", i)
    with pytest.raises(IndexError, match="bar 6 is not stored"):
        data.time(6)


def test_equity_curve_equals_bar_by_bar_marking() -> None:
    # The curve drawn from the bars where the account changed equals marking every bar.
    rng = np.random.default_rng(7)
    close = np.round(100 + rng.normal(0, 1, 400).cumsum(), 2)
    frame = bars([(c, c + 0.5, c - 0.5, c) for c in close])
    for timing in FillTiming:
        result, engine = run_backtest(
            SmaCross(fast=3, slow=8),
            frame,
            symbol="X",
            fill_model=FillModel(commission_pct=D("0.001"), timing=timing),
            record_ledger=True,
        )
        assert len(result.trades) > 10
        marked = [
            float(row.cash) + float(row.qty) * row_close
            for row, row_close in zip(engine.ledger, close, strict=True)
        ]
        np.testing.assert_array_equal(result.equity.to_numpy(), marked)

"""Bars no backtest can be made on are refused before a run, by bar, time and column, on the
exact engine, the fast path (in the prices it trades on) and the sweep alike (they used to
fail inside the Decimal arithmetic blaming the strategy, or give a result: NaN, or a run over
reversed time)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from sigma.engine.fast import fast_backtest
from sigma.engine.history_check import BadHistory, check_history
from sigma.research.backtest import run_backtest
from sigma.research.sweep import sweep
from sigma.strategies.builtin import DonchianTrend, SmaCross


def _bars(n: int = 30) -> pd.DataFrame:
    close = 100.0 + np.arange(n) % 7
    idx = pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC", name="ts")
    return pd.DataFrame(
        {"open": close, "high": close + 1, "low": close - 1, "close": close, "volume": 1.0},
        index=idx,
    )


def _set(column: str, value: float) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(bars: pd.DataFrame) -> pd.DataFrame:
        bars.iloc[12, bars.columns.get_loc(column)] = value
        return bars

    return change


def _stamps(change: Callable[[pd.DatetimeIndex], pd.DatetimeIndex]) -> Callable[..., pd.DataFrame]:
    return lambda bars: bars.set_axis(change(bars.index))


BAD = {
    "nan close": (_set("close", np.nan), r"bar 12 \(2024-01-01T12:00:00\+00:00\): close is NaN"),
    "nan open": (_set("open", np.nan), r"bar 12 \(2024-01-01T12:00:00\+00:00\): open is NaN"),
    "inf high": (_set("high", np.inf), r"bar 12 \(.*\): high is infinite"),
    "zero low": (_set("low", 0.0), r"bar 12 \(.*\): low is not above zero \(0.0\)"),
    "negative close": (_set("close", -5.0), r"bar 12 \(.*\): close is not above zero \(-5.0\)"),
    "repeated time": (
        _stamps(lambda ix: ix.where(np.arange(len(ix)) != 13, ix[12])),
        r"bar 13 \(2024-01-01T12:00:00\+00:00\): ts repeats the time of bar 12",
    ),
    "unsorted": (
        _stamps(lambda ix: ix[::-1]),
        r"bar 1 \(2024-01-02T04:00:00\+00:00\): ts is before the time of bar 0",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_bars_are_named_by_every_backtest(case: str) -> None:
    change, message = BAD[case]
    bars = change(_bars())
    with pytest.raises(BadHistory, match=message) as raised:
        run_backtest(SmaCross(fast=2, slow=5), bars, symbol="X")
    assert raised.value.bar == (1 if case == "unsorted" else 13 if "time" in case else 12)
    with pytest.raises(BadHistory, match=message):
        sweep(SmaCross, bars, {"fast": [2], "slow": [5]}, workers=1)
    # The fast path answers for the prices it trades on: a Donchian channel reads all four,
    # a crossing of averages the open and the close.
    with pytest.raises(BadHistory, match=message):
        fast_backtest(DonchianTrend, {"entry": 3, "exit": 2}, bars)
    if case in ("inf high", "zero low"):
        assert fast_backtest(SmaCross, {"fast": 2, "slow": 5}, bars).n_trades > 0
    else:
        with pytest.raises(BadHistory, match=message):
            fast_backtest(SmaCross, {"fast": 2, "slow": 5}, bars)


def test_good_bars_pass_and_volume_is_not_a_price() -> None:
    bars = _bars().assign(volume=np.nan)
    check_history(bars)
    check_history(bars.iloc[:0])
    result, _ = run_backtest(SmaCross(fast=2, slow=5), bars, symbol="X")
    assert result.trades


def _frame(close: np.ndarray) -> pd.DataFrame:
    idx = pd.date_range("2024-01-01", periods=len(close), freq="1h", tz="UTC", name="ts")
    open_ = np.concatenate(([close[0]], close[:-1]))
    return pd.DataFrame(
        {"open": open_, "high": open_, "low": open_, "close": close, "volume": 1.0}, index=idx
    )


def test_closes_the_crossing_kernel_did_not_vouch_for_are_checked_after_it() -> None:
    """The crossing kernel checks the closes as it reads them: a zero close, closes too few
    for a block to read, and a close after the run ended (a short closed out at a jump) are
    still named."""
    zero = _bars()
    zero.iloc[12, zero.columns.get_loc("close")] = 0.0
    with pytest.raises(BadHistory, match=r"bar 12 \(.*\): close is not above zero \(0.0\)"):
        fast_backtest(SmaCross, {"fast": 2, "slow": 5}, zero)
    few = _bars(4)
    few.iloc[2, few.columns.get_loc("close")] = np.nan
    with pytest.raises(BadHistory, match=r"bar 2 \(.*\): close is NaN"):
        fast_backtest(SmaCross, {"fast": 2, "slow": 5}, few)
    crash = np.concatenate([np.linspace(100, 110, 30), np.linspace(110, 50, 60), [1e6] * 3])
    ended = fast_backtest(SmaCross, {"fast": 2, "slow": 5}, _frame(crash))
    assert ended.final_equity == 0.0 and ended.exit_bar[-1] == len(crash) - 3  # at the jump
    late = _frame(np.concatenate([crash, [1e6, 1e6, 1e6]]))
    late.iloc[len(crash) + 1, late.columns.get_loc("close")] = np.nan
    with pytest.raises(BadHistory, match=rf"bar {len(crash) + 1} \(.*\): close is NaN"):
        fast_backtest(SmaCross, {"fast": 2, "slow": 5}, late)


def test_a_kernel_of_its_own_inherits_no_promise_to_check_the_closes() -> None:
    """A subclass of the crossing with a fused kernel of its own (here: its parent's, without
    the check) has its closes checked before the run, as any strategy without the promise."""

    class Unchecked(SmaCross):
        name = "sma_cross_unchecked"

        @classmethod
        def fused(cls, bars: Any, params: Any, terms: Any) -> Any:
            _, *rest = SmaCross.fused(bars, params, terms)
            return (-1, *rest)  # a kernel that vouches for nothing it reads

    bars = _bars()
    bars.iloc[12, bars.columns.get_loc("close")] = -5.0
    with pytest.raises(BadHistory, match=r"bar 12 \(.*\): close is not above zero"):
        fast_backtest(Unchecked, {"fast": 2, "slow": 5}, bars)
    bars = _bars()
    bars.iloc[7, bars.columns.get_loc("open")] = np.nan
    with pytest.raises(BadHistory, match=r"bar 7 \(.*\): open is NaN"):
        fast_backtest(Unchecked, {"fast": 2, "slow": 5}, bars)


@pytest.mark.parametrize("value", [np.nan, 0.0, -1.0, np.inf])
@pytest.mark.parametrize("at", [0, 3, 4, 1_027, 1_028, 2_999])
def test_the_crossing_kernel_names_a_bad_open_wherever_it_lies(value: float, at: int) -> None:
    """The crossing kernel checks the opens itself, a block at a time and the bars before its
    first decision once: a bad open is named wherever it lies, and a bad time before it."""
    bars = _bars(3_000)
    bars.iloc[at, bars.columns.get_loc("open")] = value
    with pytest.raises(BadHistory, match=rf"bar {at} \(.*\): open (is NaN|is infinite|is not)"):
        fast_backtest(SmaCross, {"fast": 2, "slow": 5}, bars)
    repeated = bars.set_axis(bars.index.where(np.arange(len(bars)) != 2_000, bars.index[1_999]))
    with pytest.raises(BadHistory, match="bar 2000 .*: ts repeats the time of bar 1999"):
        fast_backtest(SmaCross, {"fast": 2, "slow": 5}, repeated)

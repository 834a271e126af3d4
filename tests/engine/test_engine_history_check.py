"""Bars no backtest can be made on are refused before a run, by bar, time and column, on the
exact engine, the fast path (in the prices it trades on) and the sweep alike (they used to
fail inside the Decimal arithmetic blaming the strategy, or give a result: NaN, or a run over
reversed time)."""

from __future__ import annotations

from collections.abc import Callable

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

"""The fast path's compiled history checks find the same first bad bar as numpy would, the
bar times and the open on a second thread."""

from __future__ import annotations

import multiprocessing
from typing import Any

import numpy as np
import pandas as pd
import pytest

from sigma.engine.fast_checks import AHEAD_BARS, check_ahead, check_prices, first_out_of_order
from sigma.engine.history_check import BadHistory

N = 10_000  # more than two of the checks' runs of 4096 values


def _frame(n: int = N) -> pd.DataFrame:
    idx = pd.date_range("2024-01-01", periods=n, freq="1min", tz="UTC", name="ts")
    prices = np.linspace(1.0, 2.0, n)
    return pd.DataFrame({"open": prices, "close": prices}, index=idx)


def check_times(bars: pd.DataFrame) -> None:
    check_ahead(bars, bars["open"].to_numpy())()


@pytest.mark.parametrize("value", [np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, -1e-300, -5.0])
@pytest.mark.parametrize("at", [0, 4095, 4096, 8191, N - 1])
def test_the_first_price_that_is_no_finite_number_above_zero_is_named(
    value: float, at: int
) -> None:
    bars = _frame()
    values = bars["close"].to_numpy().copy()
    values[at] = value
    if at < N - 1:
        values[-1] = value  # a later bad one is not the one named
    with pytest.raises(BadHistory) as raised:
        check_prices(bars, "close", values)
    assert (raised.value.bar, raised.value.column) == (at, "close")


def test_the_smallest_and_largest_finite_prices_pass() -> None:
    values = np.array([5e-324, 2.2250738585072014e-308, 1.0, 1.7976931348623157e308])
    check_prices(_frame(4), "close", values)


@pytest.mark.parametrize("at", [1, 4096, 4097, N - 1])
@pytest.mark.parametrize("how", ["repeats", "is before"])
def test_the_first_time_not_after_the_one_before_is_named(at: int, how: str) -> None:
    bars = _frame()
    stamps = bars.index.asi8.copy()
    stamps[at] = stamps[at - 1] - (0 if how == "repeats" else 1)
    bars.index = pd.DatetimeIndex(stamps, tz="UTC")
    with pytest.raises(BadHistory, match=f"ts {how} the time of bar {at - 1}") as raised:
        check_times(bars)
    assert raised.value.bar == at


def test_times_in_order_pass_and_one_bar_is_in_order() -> None:
    check_times(_frame())
    check_times(_frame(1))
    check_times(_frame().iloc[:0])


@pytest.mark.parametrize("at", [0, 4096, N - 1])
def test_the_open_is_checked_beside_the_times_and_a_bad_time_is_named_first(at: int) -> None:
    bars = _frame()
    opens = bars["open"].to_numpy().copy()
    opens[at] = np.nan
    with pytest.raises(BadHistory, match="open is NaN") as raised:
        check_ahead(bars, opens)()
    assert (raised.value.bar, raised.value.column) == (at, "open")
    stamps = bars.index.asi8.copy()
    stamps[N - 2] = stamps[N - 3]
    bars.index = pd.DatetimeIndex(stamps, tz="UTC")
    with pytest.raises(BadHistory, match="ts repeats") as raised:
        check_ahead(bars, opens)()
    assert raised.value.bar == N - 2


def _long(n: int = AHEAD_BARS + 5) -> pd.DataFrame:
    return _frame(n)


def test_a_long_history_is_checked_on_another_thread_with_the_same_errors() -> None:
    bars = _long()
    check_times(bars)
    opens = bars["open"].to_numpy().copy()
    opens[-2] = 0.0
    with pytest.raises(BadHistory, match=r"open is not above zero \(0.0\)") as raised:
        check_ahead(bars, opens)()
    assert raised.value.bar == len(bars) - 2
    stamps = bars.index.asi8.copy()
    stamps[AHEAD_BARS] = stamps[AHEAD_BARS - 1]
    bars.index = pd.DatetimeIndex(stamps, tz="UTC")
    with pytest.raises(BadHistory, match="ts repeats") as raised:
        check_ahead(bars, opens)()
    assert raised.value.bar == AHEAD_BARS


def _checked_in_a_child(queue: Any) -> None:  # pragma: no cover - runs in a forked child
    bars = _long()
    opens = bars["open"].to_numpy().copy()
    opens[7] = -1.0
    try:
        check_ahead(bars, opens)()
    except BadHistory as exc:
        queue.put(exc.bar)


def test_a_forked_child_checks_on_a_thread_of_its_own() -> None:
    """The pool's thread is the parent's: a child forked after a check (a sweep's or an
    optimiser's worker) would wait for it for ever; it starts its own."""
    check_ahead(_long(), _long()["open"].to_numpy())()  # the parent's thread is started
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_checked_in_a_child, args=(queue,))
    child.start()
    try:
        assert queue.get(timeout=60) == 7
    finally:
        child.join(timeout=60)
    assert child.exitcode == 0


def test_opens_a_kernel_checks_itself_are_left_to_it_and_the_times_are_still_checked() -> None:
    bars = _frame()
    opens = bars["open"].to_numpy().copy()
    opens[5] = np.nan
    check_ahead(bars, None)()  # the kernel's to name
    stamps = bars.index.asi8.copy()
    stamps[9] = stamps[8]
    bars.index = pd.DatetimeIndex(stamps, tz="UTC")
    with pytest.raises(BadHistory, match="ts repeats the time of bar 8"):
        check_ahead(bars, None)()


def test_times_are_checked_once_per_index_whatever_holds_them() -> None:
    """pandas keeps whether an index is strictly increasing: the answer is the scan's, for
    a frame run again, for an index of another kind, and for one starting at NaT (which the
    scan lets pass, as the exact engine's check does)."""
    bars = _frame()
    assert first_out_of_order(bars) == first_out_of_order(bars) == -1
    backwards = bars.iloc[::-1]
    assert first_out_of_order(backwards) == first_out_of_order(backwards) == 1
    numbered = bars.reset_index(drop=True)
    assert first_out_of_order(numbered) == -1
    assert first_out_of_order(numbered.iloc[[0, 2, 1]]) == 2
    stamps = bars.index.asi8.copy()
    stamps[0] = np.iinfo(np.int64).min  # NaT
    assert first_out_of_order(bars.set_axis(pd.DatetimeIndex(stamps, tz="UTC"))) == -1
    stamps[4] = stamps[0]
    assert first_out_of_order(bars.set_axis(pd.DatetimeIndex(stamps, tz="UTC"))) == 4

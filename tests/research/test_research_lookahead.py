"""The look-ahead check: a strategy reading the future is flagged where it first does; every
built-in passes clean."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from sigma.engine.fill_model import FillModel
from sigma.research.lookahead import check_lookahead, cut_points
from sigma.strategies import Strategy, ta
from sigma.strategies.builtin import BUILTIN_STRATEGIES
from sigma.strategies.indicators import sma
from sigma.strategies.series import FloatArray


def _bars(n: int = 1_500, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = np.round(100 * np.exp(np.cumsum(rng.normal(0, 0.01, n))), 2)
    open_ = np.round(np.concatenate(([100.0], close[:-1])), 2)
    idx = pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC", name="ts")
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) + 0.1,
            "low": np.minimum(open_, close) - 0.1,
            "close": close,
            "volume": rng.uniform(1, 10, n),
        },
        index=idx,
    )


def tomorrow(values: FloatArray) -> FloatArray:
    """The next bar's value: a cheat."""
    out = np.full(len(values), np.nan)
    out[:-1] = values[1:]
    return out


class Clairvoyant(Strategy):
    """Buys when tomorrow's close is higher: the $10k to $59 billion strategy."""

    name = "clairvoyant"

    def init(self) -> None:
        self.ma = self.indicator(sma, self.data.close, 5)
        self.next_close = self.indicator(tomorrow, self.data.close)

    def on_bar(self) -> None:
        if self.next_close[-1] > self.data.close[-1]:
            self.go_long()
        else:
            self.go_flat()


class Peeker(Strategy):
    """No cheating indicator, but `on_bar` reads the stored column past the current bar."""

    name = "peeker"

    def on_bar(self) -> None:
        column, i = self.data.column("close"), self.bar_index
        if i + 3 < len(column) and column[i + 3] > column[i]:
            self.go_long()
        else:
            self.go_flat()


class LastBarBuyer(Strategy):
    """Knows when the history ends (its length is the future): bids on the last bar only."""

    name = "last_bar_buyer"

    def on_bar(self) -> None:
        if self.bar_index == len(self.data) - 1:
            self.buy(qty=1, limit=90.5)


class LengthAware(Strategy):
    """Declares an indicator only when the history is long: its length is the future."""

    name = "length_aware"

    def init(self) -> None:
        if len(self.data) > 1_000:
            self.indicator(sma, self.data.close, 5)


class TaUser(Strategy):
    """Causal TA-Lib indicators: must pass."""

    name = "ta_user"

    def init(self) -> None:
        h, lo, c, v = self.data.high, self.data.low, self.data.close, self.data.volume
        self.macd = self.indicator(ta.macd, c)
        self.trend = self.indicator(ta.adx, h, lo, c, 14)
        self.fair = self.indicator(ta.vwap, h, lo, c, v, 20)

    def on_bar(self) -> None:
        line, signal, _ = self.macd
        if self.trend[-1] > 20 and line[-1] > signal[-1] and self.data.close[-1] > self.fair[-1]:
            self.go_long()
        elif line[-1] < signal[-1]:
            self.go_flat()


def test_a_future_reading_indicator_is_flagged_on_one_line() -> None:
    bars = _bars()
    finding = check_lookahead(Clairvoyant(), bars)
    assert finding is not None
    assert finding.what == "indicator 'next_close'"
    first = cut_points(len(bars))[0]
    assert (finding.cut, finding.bar) == (first, first - 1)
    assert finding.truncated == "nan"
    assert finding.full == repr(float(bars["close"].iloc[first]))
    text = str(finding)
    assert "\n" not in text
    assert text.startswith("look-ahead in clairvoyant: indicator 'next_close' at bar")
    assert "reads bars after its own" in text


def test_orders_decided_on_future_bars_are_flagged() -> None:
    finding = check_lookahead(Peeker(), _bars(), fill_model=FillModel())
    assert finding is not None
    assert finding.what == "order"
    assert "market" in finding.full or "market" in finding.truncated


def test_an_order_only_the_truncated_run_places_is_named() -> None:
    bars = _bars()
    finding = check_lookahead(LastBarBuyer(), bars, cuts=3)
    assert finding is not None
    assert (finding.what, finding.bar) == ("order", cut_points(len(bars), 3)[0] - 1)
    assert (finding.full, finding.truncated) == ("no order", "limit buy qty 1.0 limit 90.5")


def test_indicators_declared_by_history_length_are_flagged() -> None:
    finding = check_lookahead(LengthAware(), _bars(), cuts=2)
    assert finding is not None
    assert (finding.what, finding.full, finding.truncated) == ("the number of indicators", "1", "0")


@pytest.mark.parametrize("cls", [*BUILTIN_STRATEGIES, TaUser], ids=lambda c: c.name)
def test_builtins_and_ta_lib_indicators_pass_clean(cls: type[Strategy]) -> None:
    fm = FillModel(commission_pct=Decimal("0.001"))
    assert check_lookahead(cls(), _bars(), cuts=5, fill_model=fm) is None


def test_cut_points() -> None:
    assert cut_points(1_000, 4) == [100, 400, 699, 999]
    assert cut_points(1) == []
    assert cut_points(3, 8) == [1, 2]
    with pytest.raises(ValueError, match="cuts"):
        cut_points(100, 0)


class SlowStarter(Strategy):
    """Always long, beside an average longer than the first cuts: backtesting.py's start
    (`Strategy.decision_start`) counts an indicator with no value at all as ready, so a run on
    a history too short for the average acts from bar 1, where the full run waits for it."""

    name = "slow_starter"

    def init(self) -> None:
        self.trend = self.indicator(sma, self.data.close, 400)

    def on_bar(self) -> None:
        self.go_long()


def test_a_history_too_short_for_an_indicator_is_no_look_ahead() -> None:
    bars = _bars()
    assert cut_points(len(bars))[0] < 400  # some cuts end before the average's first value
    assert check_lookahead(SlowStarter(), bars) is None

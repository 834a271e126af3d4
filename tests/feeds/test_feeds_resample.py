from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sigma.feeds.frame import make_bar_frame
from sigma.feeds.resample import normalise_rule, resample_bars
from sigma.feeds.synthetic import generate_bars
from sigma.feeds.validation import validate_bars


def minute_bars() -> pd.DataFrame:
    ts = pd.to_datetime(
        [
            "2024-01-01 09:58",
            "2024-01-01 09:59",
            "2024-01-01 10:00",
            "2024-01-01 10:30",
            "2024-01-01 10:59",
            # 11:00-11:59 has no bars: the bucket is dropped, not filled
            "2024-01-01 12:15",
        ]
    )
    return make_bar_frame(
        ts,
        open_=[10, 11, 12, 13, 14, 15],
        high=[11, 12, 14, 13.5, 14.5, 16],
        low=[9, 10.5, 11, 12, 13.5, 14],
        close=[11, 12, 13, 14, 14.2, 15.5],
        volume=[1, 2, 3, 4, 5, 6],
    )


def test_hourly_by_hand() -> None:
    out = resample_bars(minute_bars(), "1h")
    expected = make_bar_frame(
        pd.to_datetime(["2024-01-01 09:00", "2024-01-01 10:00", "2024-01-01 12:00"]),
        open_=[10, 12, 15],
        high=[12, 14.5, 16],
        low=[9, 11, 14],
        close=[12, 14.2, 15.5],
        volume=[3, 12, 6],
    )
    pd.testing.assert_frame_equal(out, expected)


@pytest.mark.parametrize(
    ("rule", "expected"),
    [("1m", "1min"), ("5m", "5min"), ("1h", "1h"), ("4h", "4h"), ("1d", "1D"), ("90s", "90s")],
)
def test_rule_aliases(rule: str, expected: str) -> None:
    assert normalise_rule(rule) == pd.tseries.frequencies.to_offset(expected)
    assert normalise_rule("2h30min").nanos == 150 * 60 * 10**9


@pytest.mark.parametrize("rule", ["1W", "1ME", "banana", "0m"])
def test_bad_rules(rule: str) -> None:
    with pytest.raises(ValueError, match=repr(rule)):
        normalise_rule(rule)


def test_buckets_are_aligned_to_the_epoch() -> None:
    frame, _ = generate_bars(600, seed=5, start="2024-01-01 00:03")
    out = resample_bars(frame, "4h")
    assert out.index[0] == pd.Timestamp("2024-01-01 00:00", tz="UTC")
    assert (out.index.hour % 4 == 0).all()


def test_aggregates_match_a_slow_reference() -> None:
    frame, _ = generate_bars(5_000, seed=9)
    out = resample_bars(frame, "15m")
    validate_bars(out, "resampled")
    for stamp, bar in out.iloc[[0, 7, -1]].iterrows():
        chunk = frame.loc[stamp : stamp + pd.Timedelta("15min") - pd.Timedelta("1ns")]
        assert bar["open"] == chunk["open"].iloc[0]
        assert bar["high"] == chunk["high"].max()
        assert bar["low"] == chunk["low"].min()
        assert bar["close"] == chunk["close"].iloc[-1]
        assert np.isclose(bar["volume"], chunk["volume"].sum())
    assert out["volume"].sum() == pytest.approx(frame["volume"].sum())


def test_empty_frame() -> None:
    frame, _ = generate_bars(3, seed=1)
    out = resample_bars(frame.iloc[:0], "1h")
    assert out.empty
    assert list(out.columns) == list(frame.columns)


def test_a_rule_finer_than_the_bars_is_refused() -> None:
    hourly, _ = generate_bars(10, seed=1, freq="1h")
    with pytest.raises(ValueError, match=r"timeframe '1m' is finer than the bars, which are "):
        resample_bars(hourly, "1m")
    pd.testing.assert_frame_equal(resample_bars(hourly, "1h"), hourly, check_freq=False)

from __future__ import annotations

import time
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from sigma.feeds.synthetic import REGIMES, _ar1, generate_bars
from sigma.feeds.validation import validate_bars


def test_deterministic_for_a_seed() -> None:
    a, la = generate_bars(5_000, seed=42)
    b, lb = generate_bars(5_000, seed=42)
    c, _ = generate_bars(5_000, seed=43)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert (la == lb).all()
    assert not a.equals(c)


def test_ohlc_consistent_and_positive() -> None:
    frame, labels = generate_bars(200_000, seed=3)
    validate_bars(frame, "synthetic")
    o, h, low, c = (frame[k].to_numpy() for k in ("open", "high", "low", "close"))
    assert (h >= np.maximum(o, c)).all()
    assert (low <= np.minimum(o, c)).all()
    assert (low > 0).all()
    assert (frame["volume"] >= 0).all()
    assert len(labels) == len(frame)


def test_prices_are_whole_cents() -> None:
    frame, _ = generate_bars(2_000, seed=4)
    for value in frame[["open", "high", "low", "close"]].to_numpy().ravel()[:500]:
        assert Decimal(repr(float(value))).as_tuple().exponent >= -2


def test_regime_labels_cover_every_regime() -> None:
    _, labels = generate_bars(20_000, seed=0)
    assert set(labels.tolist()) == set(REGIMES)
    changes = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    runs = np.diff(np.concatenate(([0], changes, [len(labels)])))
    assert runs[:-1].min() >= 30  # the last run is cut by n
    assert 150 < runs.mean() < 600


def test_regimes_behave_as_named() -> None:
    frame, labels = generate_bars(400_000, seed=8)
    returns = np.diff(np.log(frame["close"].to_numpy()), prepend=np.log(100.0))
    by = {name: returns[labels == name] for name in REGIMES}
    assert by["trend_up"].mean() > 0 > by["trend_down"].mean()
    assert by["high_vol"].std() > 2 * by["trend_up"].std()
    assert by["range"].std() < by["trend_up"].std()


def test_gaps_occur() -> None:
    frame, _ = generate_bars(100_000, seed=2)
    jump = np.abs(frame["open"].to_numpy()[1:] / frame["close"].to_numpy()[:-1] - 1)
    assert (jump > 0.005).sum() > 5


def test_price_stays_in_a_band() -> None:
    frame, _ = generate_bars(1_000_000, seed=6)
    assert frame["low"].min() > 20 and frame["high"].max() < 500


def test_plain_random_walk() -> None:
    frame, labels = generate_bars(1_000, seed=1, regimes=False, start_price=50.0)
    validate_bars(frame, "rw")
    assert set(labels.tolist()) == {"random_walk"}
    assert frame["open"].iloc[0] == 50.0


def test_index_follows_start_and_freq() -> None:
    frame, _ = generate_bars(3, start="2024-03-01T10:00:00+01:00", freq="5m")
    assert list(frame.index) == list(
        pd.date_range("2024-03-01 09:00", periods=3, freq="5min", tz="UTC")
    )
    assert str(frame.index.dtype) == "datetime64[ns, UTC]"
    assert frame.index.name == "ts"
    assert frame.index.freq is None


@pytest.mark.parametrize(
    "kwargs",
    [{"n": 0}, {"n": 5, "start_price": 0.0}, {"n": 5, "mean_regime_bars": 30}],
)
def test_bad_arguments(kwargs: dict[str, float]) -> None:
    n = int(kwargs.pop("n"))
    with pytest.raises(ValueError):
        generate_bars(n, **kwargs)  # type: ignore[arg-type]


def test_ar1_matches_the_recursion() -> None:
    noise = np.random.default_rng(0).standard_normal(1_000)
    expected = np.empty_like(noise)
    state = 0.0
    for i, e in enumerate(noise):
        state = 0.98 * state + e
        expected[i] = state
    assert np.allclose(_ar1(noise, 0.98, block=64), expected, atol=1e-9)


def test_million_bars_is_fast() -> None:
    generate_bars(1_000, seed=0)  # warm imports
    began = time.perf_counter()
    generate_bars(1_000_000, seed=1)
    assert time.perf_counter() - began < 2.0

"""The reports' array helpers give what their plain formulas give, without those formulas'
temporaries (at a million bars each temporary is 8 MB of the command's peak memory)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sigma.engine.stats import drawdown
from sigma.reports.charts import drawdown_pct
from sigma.reports.display import price_places
from sigma.reports.downsample import minmax_decimate
from sigma.reports.svg import time_x


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
@pytest.mark.parametrize("tz", [None, "UTC", "Europe/Paris"])
def test_time_x_is_the_seconds_since_the_epoch(unit: str, tz: str | None) -> None:
    index = pd.date_range("2021-03-27 22:00:00.123", periods=500, freq="7min", tz=tz)
    index = index.as_unit(unit)
    aware = index.tz_localize("UTC") if index.tz is None else index
    expected = np.asarray((aware - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1))
    np.testing.assert_array_equal(time_x(index), expected)
    listed = list(index.to_pydatetime())
    aware = pd.DatetimeIndex(listed)
    aware = aware.tz_localize("UTC") if aware.tz is None else aware
    expected = np.asarray((aware - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1))
    np.testing.assert_array_equal(time_x(listed), expected)


def _padded_decimate(y: np.ndarray, max_points: int) -> np.ndarray:
    """The indices kept by the edge-padded reshape the decimation used to make."""
    n = len(y)
    buckets = (max_points - 2) // 2
    size = -(-n // buckets)
    rows = -(-n // size)
    padded = np.pad(y, (0, rows * size - n), mode="edge").reshape(rows, size)
    base = np.arange(rows) * size
    lo = np.minimum(base + padded.argmin(axis=1), n - 1)
    hi = np.minimum(base + padded.argmax(axis=1), n - 1)
    return np.unique(np.concatenate(([0, n - 1], lo, hi)))


@pytest.mark.parametrize("n", [1503, 4000, 9973, 12000])
def test_minmax_decimate_keeps_the_same_points(n: int) -> None:
    rng = np.random.default_rng(n)
    y = np.round(rng.normal(0, 1, n).cumsum(), 1)  # rounded: ties within buckets
    x = np.arange(n, dtype=np.float64)
    xs, ys = minmax_decimate(x, y, 1500)
    keep = _padded_decimate(y, 1500)
    np.testing.assert_array_equal(xs, x[keep])
    np.testing.assert_array_equal(ys, y[keep])
    y[[5, 700]] = np.nan  # non-finite points are dropped first
    xs, ys = minmax_decimate(x, y, 1500)
    finite = np.isfinite(y)
    keep = _padded_decimate(y[finite], 1500)
    np.testing.assert_array_equal(xs, x[finite][keep])


def test_the_drawdowns_are_their_formulas() -> None:
    equity = np.array([0.0, -1.0, 100.0, 90.0, np.nan, 120.0, 60.0, 0.0, 130.0])
    with np.errstate(divide="ignore", invalid="ignore"):
        peak = np.maximum.accumulate(equity)
        expected = np.where(peak > 0, equity / peak - 1.0, 0.0)
        fpeak = np.fmax.accumulate(equity)
        expected_pct = np.where(fpeak > 0, (equity / fpeak - 1.0) * 100.0, np.nan)
    np.testing.assert_array_equal(drawdown(equity), expected)
    np.testing.assert_array_equal(drawdown_pct(pd.Series(equity)), expected_pct)


def test_price_places_reads_the_first_finite_closes() -> None:
    close = np.full(20_000, np.nan)
    close[-3:] = [1.5, 1.25, 1.125]
    assert price_places(close) == price_places(np.array([1.5, 1.25, 1.125]))
    close[:5000] = 100.0
    close[5000] = 1.234567  # after the first thousand finite closes: not read
    assert price_places(close) == price_places(np.array([100.0]))

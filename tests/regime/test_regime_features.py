from __future__ import annotations

import math

import numpy as np
import pytest

from sigma.regime.features import FeatureConfig, FeatureTracker

CFG = FeatureConfig(
    trend_window=20,
    vol_window=10,
    volume_window=10,
    baseline_window=200,
    baseline_every=5,
    min_baseline=50,
)


def feed(tracker: FeatureTracker, closes: np.ndarray, volumes: np.ndarray) -> list:
    out = []
    for c, v in zip(closes, volumes, strict=True):
        out.append(tracker.update(c * 1.001, c * 0.999, float(c), float(v)))
    return out


def test_config_checks_windows() -> None:
    with pytest.raises(ValueError, match="trend_window"):
        FeatureConfig(trend_window=1)
    with pytest.raises(ValueError, match="baseline_every"):
        FeatureConfig(baseline_every=0)
    with pytest.raises(ValueError, match="min_baseline"):
        FeatureConfig(trend_window=300, min_baseline=200)
    assert FeatureConfig().warmup == 200


def test_none_until_warm_then_features() -> None:
    rng = np.random.default_rng(1)
    closes = 100 * np.exp(np.cumsum(0.001 * rng.standard_normal(120)))
    out = feed(FeatureTracker(CFG), closes, np.full(120, 1000.0))
    assert all(x is None for x in out[:50])
    assert all(x is not None for x in out[51:])
    features, obs = out[-1]
    assert 0.0 <= features.efficiency <= 1.0
    assert 0.0 < features.vol_percentile <= 1.0
    assert features.volume_ratio == pytest.approx(1.0)
    assert obs.log_volume == pytest.approx(math.log1p(1000.0))
    assert set(features.as_dict()) == {
        "trend_t",
        "efficiency",
        "adx",
        "vol_ratio",
        "vol_percentile",
        "volume_ratio",
    }


def test_a_steady_climb_is_a_strong_efficient_trend() -> None:
    rng = np.random.default_rng(2)
    noise = 0.001 * rng.standard_normal(150)
    noise[100:] = 0.002 + 0.0002 * rng.standard_normal(50)  # a clean climb at the end
    closes = 100 * np.exp(np.cumsum(noise))
    features, _ = feed(FeatureTracker(CFG), closes, np.full(150, 500.0))[-1]
    assert features.trend_t > 5
    assert features.efficiency > 0.9
    assert features.adx > 25


def test_a_volatile_busy_tail_shows_in_vol_and_volume_ratios() -> None:
    rng = np.random.default_rng(3)
    sigma = np.r_[np.full(150, 0.001), np.full(20, 0.004)]
    closes = 100 * np.exp(np.cumsum(sigma * rng.standard_normal(170)))
    volumes = np.r_[np.full(150, 1000.0), np.full(20, 3000.0)]
    features, _ = feed(FeatureTracker(CFG), closes, volumes)[-1]
    assert features.vol_ratio > 2
    assert features.vol_percentile > 0.9
    assert features.volume_ratio is not None and features.volume_ratio > 2.5


def test_a_feed_without_volume_has_no_volume_ratio() -> None:
    closes = 100 + np.sin(np.arange(80) / 3)
    features, obs = feed(FeatureTracker(CFG), closes, np.zeros(80))[-1]
    assert features.volume_ratio is None
    assert obs.log_volume is None and obs.base_log_volume is None


def test_flat_prices_give_neutral_features() -> None:
    features, obs = feed(FeatureTracker(CFG), np.full(60, 100.0), np.full(60, 10.0))[-1]
    assert features.trend_t == 0.0 and features.efficiency == 0.0
    assert features.vol_ratio == 1.0
    assert obs.base_sigma == 0.0

from __future__ import annotations

import itertools
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from sigma.feeds.synthetic import generate_bars
from sigma.regime.detector import (
    DetectorConfig,
    Regime,
    RegimeDetector,
    RegimeModel,
    RegimeState,
    balanced_accuracy,
    confusion_matrix,
    detect_frame,
    frame_bars,
)
from tests.regime.conftest import make_bar

# Seeds never used while calibrating the model (that used 0-4 and 100-101).
ACCURACY_SEEDS = (20, 21, 22)
TARGET = 0.85  # the issue asks for >= 0.80 balanced accuracy after warm-up


@pytest.fixture(scope="module")
def runs() -> dict[int, tuple[np.ndarray, list[RegimeState]]]:
    out = {}
    for seed in ACCURACY_SEEDS:
        bars, labels = generate_bars(15_000, seed=seed)
        out[seed] = (labels, detect_frame(bars, symbol="SYN"))
    return out


def test_finds_the_generated_regimes(runs: dict[int, tuple[np.ndarray, list[RegimeState]]]) -> None:
    warm = DetectorConfig().features.warmup
    for seed, (labels, states) in runs.items():
        predicted = [s.regime.value for s in states]
        assert set(predicted[:warm]) == {"unknown"}
        assert "unknown" not in predicted[warm:]
        matrix = confusion_matrix(labels[warm:], predicted[warm:])
        score = balanced_accuracy(matrix)
        print(f"seed {seed}: balanced accuracy {score:.3f}\n{matrix}")
        assert score >= TARGET, f"seed {seed}: {score:.3f}\n{matrix}"
        for regime in ("trend_up", "trend_down", "range", "high_vol"):
            recall = matrix.loc[regime, regime] / matrix.loc[regime].sum()
            assert recall >= 0.75, f"seed {seed} {regime} recall {recall:.2f}"


def test_hysteresis_holds_each_regime_at_least_min_dwell(
    runs: dict[int, tuple[np.ndarray, list[RegimeState]]],
) -> None:
    cfg = DetectorConfig()
    labels, states = runs[ACCURACY_SEEDS[0]]
    known = [s for s in states if s.regime is not Regime.UNKNOWN]
    raw_flips = sum(a.raw is not b.raw for a, b in itertools.pairwise(known))
    flips = [i for i, (a, b) in enumerate(itertools.pairwise(known)) if a.regime is not b.regime]
    true_flips = int((labels[1:] != labels[:-1]).sum())
    assert len(flips) < raw_flips / 2
    assert len(flips) < 3 * true_flips
    runs_ = np.diff([-1, *flips])
    assert runs_.min() >= cfg.min_dwell
    # `changed` marks exactly the switches; bars_in_regime restarts at 1 there.
    changed = [i for i, s in enumerate(known[1:]) if s.changed]
    assert changed == flips
    assert all(known[i + 1].bars_in_regime == 1 for i in flips)


def test_same_bars_same_states() -> None:
    bars, _ = generate_bars(1_500, seed=5)
    a = detect_frame(bars)
    b = detect_frame(bars)
    assert [(s.regime, s.probability, s.reason) for s in a] == [
        (s.regime, s.probability, s.reason) for s in b
    ]


def test_symbols_do_not_interfere() -> None:
    x, _ = generate_bars(800, seed=1)
    y, _ = generate_bars(800, seed=2)
    alone = [s.regime for s in detect_frame(x, symbol="X")]
    detector = RegimeDetector()
    mixed = []
    for bx, by in zip(frame_bars(x, "X"), frame_bars(y, "Y"), strict=True):
        mixed.append(detector.update(bx).regime)
        detector.update(by)
    assert mixed == alone
    assert detector.regime("X") is alone[-1]
    assert detector.regime("nothing") is Regime.UNKNOWN


def test_state_explains_itself() -> None:
    bars, _ = generate_bars(600, seed=3)
    state = detect_frame(bars)[-1]
    assert state.features is not None
    assert state.reason.split(":")[0] in {r.value for r in Regime} or "holding" in state.reason
    assert "volatility" in state.reason and "volume" in state.reason
    assert 0 < state.probability <= 1
    assert state.trend_strength == abs(state.features.trend_t)
    first = detect_frame(bars.iloc[:10])[0]
    assert first.regime is Regime.UNKNOWN and first.reason == "warming up"
    assert first.probability == 0.0 and first.trend_strength == 0.0


def test_news_can_force_high_vol_for_a_while() -> None:
    bars, _ = generate_bars(400, seed=4)
    detector = RegimeDetector()
    all_bars = list(frame_bars(bars, "SYM"))
    for bar in all_bars[:300]:
        detector.update(bar)
    until = all_bars[310].ts
    detector.force_high_vol("SYM", until, "news: exchange hacked")
    detector.force_high_vol("SYM", until - timedelta(minutes=5), "earlier, ignored")
    forced = [detector.update(bar) for bar in all_bars[300:310]]
    assert all(s.regime is Regime.HIGH_VOL for s in forced)
    assert forced[0].reason == "news: exchange hacked"


def test_prices_without_moves_or_volume_stay_defined() -> None:
    detector = RegimeDetector()
    states = [detector.update(make_bar(i, 100.0, volume=0.0)) for i in range(260)]
    assert states[-1].regime is not Regime.UNKNOWN
    assert states[-1].features is not None and states[-1].features.volume_ratio is None


def test_without_volume_volatility_still_separates() -> None:
    bars, labels = generate_bars(6_000, seed=9)
    bars = bars.assign(volume=0.0)
    states = detect_frame(bars)
    predicted = np.array([s.regime.value for s in states])
    high = labels == "high_vol"
    assert (predicted[high] == "high_vol").mean() > 0.7


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="confirm_bars"):
        DetectorConfig(confirm_bars=0)
    with pytest.raises(ValueError, match="wild_sigma"):
        RegimeModel(wild_sigma=0)
    with pytest.raises(ValueError, match="mean_dwell"):
        RegimeModel(mean_dwell=1)


def test_confusion_matrix_keeps_unknown_visible() -> None:
    matrix = confusion_matrix(["range", "range", "high_vol"], ["range", "unknown", "range"])
    assert list(matrix.columns) == ["trend_up", "trend_down", "range", "high_vol", "unknown"]
    assert matrix.loc["range", "unknown"] == 1
    assert balanced_accuracy(matrix) == pytest.approx(0.25)
    assert balanced_accuracy(pd.DataFrame()) == 0.0


def test_tighten_demands_more_confirmation_up_to_a_cap() -> None:
    bars, _ = generate_bars(3_000, seed=6)
    loose = detect_frame(bars)
    detector = RegimeDetector()
    assert detector.confirm_bars("SYN") == 3
    assert [detector.tighten("SYN") for _ in range(3)] == [6, 12, 12]
    tight = [detector.update(bar) for bar in frame_bars(bars, "SYN")]
    switches = sum(s.changed for s in tight)
    assert switches < sum(s.changed for s in loose)

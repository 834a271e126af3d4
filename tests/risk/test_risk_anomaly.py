"""AnomalyDetector on synthetic tick series with injected spikes."""

from __future__ import annotations

import math
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from sigma.domain import Tick
from sigma.feeds.ws_server import BarReplay
from sigma.risk.anomaly import AnomalyDetector, Verdict

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def synthetic_ticks(symbols: list[str], bars: int, seed: int = 3) -> list[Tick]:
    return list(BarReplay.synthetic(symbols, seed=seed, bars=bars, start=T0).ticks())


def scaled(tick: Tick, factor: str) -> Tick:
    return replace(tick, price=(tick.price * Decimal(factor)).quantize(Decimal("0.01")))


def walk(n: int, level: float = 100.0, seed: int = 1) -> list[float]:
    """A seeded random walk with 0.1% steps: a smooth market without degenerate MADs."""
    rng = random.Random(seed)
    prices = [level]
    for _ in range(n - 1):
        prices.append(prices[-1] * math.exp(rng.gauss(0, 0.001)))
    return prices


def series(prices: list[float], symbol: str = "X") -> list[Tick]:
    return [Tick.of(symbol, T0 + timedelta(seconds=i), p) for i, p in enumerate(prices)]


def test_false_positive_rate_on_the_clean_synthetic_feed() -> None:
    ticks = synthetic_ticks(["BTC", "ETH"], bars=10_000)
    verdicts = AnomalyDetector().identify_outliers(ticks)
    flagged = sum(not v.ok for v in verdicts)
    assert flagged / len(ticks) < 0.001, flagged


def test_injected_spikes_are_detected_and_do_not_move_the_baseline() -> None:
    ticks = synthetic_ticks(["BTC"], bars=2_000)
    factors = ["1.05", "0.96", "1.3", "0.5"] * 5
    spikes = dict(zip(range(400, 8000, 397), factors, strict=False))
    injected = [scaled(t, spikes[i]) if i in spikes else t for i, t in enumerate(ticks)]
    detector = AnomalyDetector()
    verdicts = detector.identify_outliers(injected)
    caught = {i for i, v in enumerate(verdicts) if not v.ok}
    assert set(spikes) <= caught
    assert len(caught - set(spikes)) <= 2  # hardly anything else
    for i in spikes:
        reason = verdicts[i].reason
        assert reason == ("jump" if spikes[i] in ("1.3", "0.5") else "zscore")
        # the tick after a spike is judged against the pre-spike price again: accepted
        assert verdicts[i + 1].ok


def test_jump_is_flagged_even_during_warm_up() -> None:
    detector = AnomalyDetector(max_jump_pct=10)
    verdicts = detector.identify_outliers(series([100, 100.5, 112, 99.5]))
    assert [v.reason for v in verdicts] == ["warmup", "warmup", "jump", "warmup"]
    assert verdicts[2].score == pytest.approx(100 * (112 / 100.5 - 1))


def test_no_zscore_flag_before_thirty_returns() -> None:
    prices = [*walk(30), 105.0]
    verdicts = AnomalyDetector().identify_outliers(series(prices))
    assert all(v.ok for v in verdicts)  # 29 returns + a big move: still warming up
    prices = [*walk(32), 105.0]
    verdicts = AnomalyDetector().identify_outliers(series(prices))
    assert verdicts[-1] == Verdict(False, "zscore", verdicts[-1].score)
    assert verdicts[-1].score > 8 and verdicts[-2].reason == "ok"


def test_level_shift_is_rebased_after_agreeing_flags() -> None:
    base = walk(50)
    shifted = walk(5, level=base[-1] * 1.1, seed=2)
    verdicts = AnomalyDetector(rebase_after=3).identify_outliers(series(base + shifted))
    tail = [v.reason for v in verdicts[50:]]
    assert tail == ["zscore", "zscore", "rebased", "ok", "ok"]


def test_scattered_bad_prints_never_rebase() -> None:
    base = walk(50)
    bad = [
        x * base[-1] for x in (1.03, 0.97, 1.03, 0.97, 1.03)
    ]  # flagged, but they disagree with each other
    verdicts = AnomalyDetector().identify_outliers(series(base + bad))
    assert [v.ok for v in verdicts[50:]] == [False] * 5


def test_stale_is_informational_and_crossed_is_rejected() -> None:
    detector = AnomalyDetector(stale_ticks=5)
    verdicts = detector.identify_outliers(series([100.0] * 8))
    assert [v.reason for v in verdicts[4:]] == ["warmup", "stale", "stale", "stale"]
    assert all(v.ok for v in verdicts) and verdicts[-1].score == 7
    crossed = Tick.of("X", T0, 100, bid=101, ask=100)
    assert detector.check(crossed) == Verdict(False, "crossed", 0.0)


def test_symbols_are_independent_bounded_and_resettable() -> None:
    detector = AnomalyDetector(max_symbols=2)
    detector.check(Tick.of("A", T0, 100))
    detector.check(Tick.of("B", T0, 1))
    assert detector.check(Tick.of("A", T0, 101)).reason == "warmup"  # not a jump from B's 1
    detector.check(Tick.of("C", T0, 5))
    assert list(detector._state) == ["A", "C"]
    detector.reset("A")
    assert list(detector._state) == ["C"]
    detector.reset()
    assert not detector._state


def test_deterministic() -> None:
    ticks = synthetic_ticks(["BTC"], bars=500)
    assert AnomalyDetector().identify_outliers(ticks) == AnomalyDetector().identify_outliers(ticks)


@pytest.mark.parametrize(
    "kwargs",
    [{"window": 10}, {"min_returns": 1}, {"z_threshold": 0}, {"max_jump_pct": -1}],
)
def test_rejects_bad_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        AnomalyDetector(**kwargs)  # type: ignore[arg-type]

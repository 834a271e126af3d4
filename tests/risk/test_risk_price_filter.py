"""The price filter cannot be blinded (issue 23): it follows a change of volatility within a
few ticks and is still not fooled by a bad print, a hostile feed or a slow ramp."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sigma.domain import Tick
from sigma.risk.anomaly import AnomalyDetector

T0 = datetime(2024, 1, 1, tzinfo=UTC)
SIGMA = 0.001  # "normal" volatility per tick


def ticks(prices: list[float], symbol: str = "X") -> list[Tick]:
    return [
        Tick.of(symbol, T0 + timedelta(seconds=i), Decimal(repr(round(p, 6))))
        for i, p in enumerate(prices)
    ]


def regimes(*legs: tuple[int, float], seed: int = 7, level: float = 100.0) -> list[float]:
    """A seeded random walk made of (ticks, volatility) legs."""
    rng = random.Random(seed)
    prices, price = [], level
    for n, vol in legs:
        for _ in range(n):
            price *= math.exp(rng.gauss(0, vol))
            prices.append(price)
    return prices


def detector() -> AnomalyDetector:
    return AnomalyDetector(reference=lambda symbol: Decimal(100))


def rejected(prices: list[float], start: int) -> int:
    verdicts = detector().identify_outliers(ticks(prices))
    return sum(not v.ok for v in verdicts[start:])


def test_calm_then_normal_volatility_is_not_rejected() -> None:
    prices = regimes((300, SIGMA), (200, SIGMA / 5), (1000, SIGMA))
    assert rejected(prices, 500) == 0  # was 368 of 1,000


def test_calm_then_three_times_normal_volatility_is_followed_within_a_few_ticks() -> None:
    prices = regimes((300, SIGMA), (200, SIGMA / 5), (1000, 3 * SIGMA))
    assert rejected(prices, 500) == 4  # was 949 of 1,000
    assert rejected(prices, 510) == 0  # none after the first ten ticks


def test_a_single_100x_print_is_rejected_and_moves_nothing() -> None:
    prices = regimes((400, SIGMA))
    bad = [*prices[:300], prices[299] * 100, *prices[300:]]
    det = detector()
    before = None
    for i, verdict in enumerate(det.identify_outliers(ticks(bad))):
        if i == 299:
            before = det.scale("X")
        assert verdict.ok is (i != 300), i
    after_print = det.scale("X")
    assert before is not None and after_print is not None and after_print < 1.2 * before


def test_a_hostile_feed_cannot_poison_the_baseline() -> None:
    """One tick in five is a bad print 5% off, trying to widen the scale until they pass."""
    honest = regimes((1200, SIGMA), seed=11)
    rng = random.Random(5)
    mixed, bad_at = [], set()
    for i, p in enumerate(honest):
        mixed.append(p)
        if i >= 100 and i % 4 == 0:
            bad_at.add(len(mixed))
            mixed.append(p * (1.05 if rng.random() < 0.5 else 0.95))
    det = detector()
    verdicts = det.identify_outliers(ticks(mixed))
    assert all(not verdicts[i].ok for i in bad_at)  # every bad print rejected
    assert sum(not v.ok for i, v in enumerate(verdicts) if i not in bad_at) == 0
    scale = det.scale("X")
    assert scale is not None and scale < 4 * SIGMA  # widened by the attack, but bounded


def test_a_slow_ramp_is_followed_and_a_bad_print_inside_it_still_rejected() -> None:
    rng = random.Random(3)
    prices, price = [], 100.0
    for _ in range(1500):  # +0.05 % a tick: +112 % over the ramp, never a single big move
        price *= math.exp(0.0005 + rng.gauss(0, SIGMA))
        prices.append(price)
    prices.insert(1000, prices[999] * 1.02)
    verdicts = detector().identify_outliers(ticks(prices))
    assert [i for i, v in enumerate(verdicts) if not v.ok] == [1000]

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from sigma.domain import Trade
from sigma.regime.detector import Regime
from sigma.regime.feedback import (
    FeedbackMechanism,
    PerformanceStats,
    QualityAssessment,
    QualityConfig,
    TradeOutcome,
)
from tests.regime.conftest import T0


def trade(ret: float, i: int = 0) -> Trade:
    entry = Decimal(100)
    pnl = Decimal(repr(ret)) * entry
    ts = T0 + timedelta(minutes=i)
    return Trade(
        "SYM", Decimal(1), ts, entry, ts + timedelta(minutes=5), entry + pnl, Decimal(0), pnl
    )


def record(fb: FeedbackMechanism, returns: list[float], regime: Regime, variant: str) -> None:
    for i, r in enumerate(returns):
        fb.record(TradeOutcome.of(trade(r, i), "toy", regime, variant))


def test_outcome_and_stats() -> None:
    outcome = TradeOutcome.of(trade(0.02), "toy", Regime.RANGE, "live")
    assert outcome.return_pct == pytest.approx(0.02)
    assert outcome.symbol == "SYM" and outcome.exit_ts > outcome.entry_ts
    with pytest.raises(ValueError, match="variant"):
        TradeOutcome.of(trade(0.0), "toy", Regime.RANGE, "other")
    stats = PerformanceStats.of([0.01, -0.02, 0.03])
    assert stats.trades == 3 and stats.hit_rate == pytest.approx(2 / 3)
    assert stats.mean_return == pytest.approx(0.02 / 3) and stats.total_return == pytest.approx(
        0.02
    )
    assert PerformanceStats.of([]) == PerformanceStats(0, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="keep"):
        FeedbackMechanism(keep=0)


def test_rollback_when_adjusting_hurt_in_a_regime() -> None:
    fb, qa = FeedbackMechanism(), QualityAssessment()
    record(fb, [-0.004] * 4, Regime.RANGE, "adjusted")
    record(fb, [0.001] * 6, Regime.RANGE, "baseline")
    verdict = qa.compare(fb, "toy", "SYM", Regime.RANGE)
    assert verdict.action == "keep" and verdict.reason.startswith("too few trades")
    record(fb, [-0.004] * 2, Regime.RANGE, "adjusted")
    verdict = qa.compare(fb, "toy", "SYM", Regime.RANGE)
    assert verdict.action == "rollback" and verdict.regime is Regime.RANGE
    assert verdict.score == pytest.approx(-0.005)
    assert "adjusted parameters made -0.400%/trade over 6 trades" in verdict.reason
    fb.forget("toy", "SYM", Regime.RANGE)
    assert fb.stats("toy", "SYM", Regime.RANGE, "adjusted").trades == 0
    assert fb.stats("toy", "SYM", Regime.RANGE, "baseline").trades == 6


def test_keep_when_adjusting_helped() -> None:
    fb, qa = FeedbackMechanism(), QualityAssessment()
    record(fb, [0.003] * 6, Regime.TREND_UP, "adjusted")
    record(fb, [0.001] * 6, Regime.TREND_UP, "baseline")
    verdict = qa.compare(fb, "toy", "SYM", Regime.TREND_UP)
    assert verdict.action == "keep" and verdict.score == pytest.approx(0.002)


def test_grades_the_strategys_recent_record() -> None:
    qa = QualityAssessment(QualityConfig(min_trades=3, window=5))
    cases = {
        "keep": [0.01, 0.01, -0.001],
        "throttle": [-0.002] * 3,
        "disable": [-0.01] * 3,
    }
    for expected, returns in cases.items():
        fb = FeedbackMechanism()
        record(fb, returns, Regime.RANGE, "live")
        record(fb, [0.05] * 3, Regime.RANGE, "baseline")  # shadow trades do not count
        assert qa.grade(fb, "toy", "SYM").action == expected
    fb = FeedbackMechanism()
    # A small average loss but too few winners (1 in 5 < min_hit_rate 25%) also throttles.
    record(fb, [0.0001, -0.0001, -0.0001, -0.0001, -0.0001], Regime.RANGE, "adjusted")
    assert qa.grade(fb, "toy", "SYM").action == "throttle"
    fb = FeedbackMechanism()
    record(fb, [0.01, -0.001], Regime.RANGE, "live")
    assert qa.grade(fb, "toy", "SYM").reason.startswith("too few trades")


def test_quality_config_validation() -> None:
    with pytest.raises(ValueError, match="min_trades"):
        QualityConfig(min_trades=5, window=3)
    with pytest.raises(ValueError, match="disable_below"):
        QualityConfig(disable_below=0.0, throttle_below=-0.1)

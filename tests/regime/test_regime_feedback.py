from __future__ import annotations

import dataclasses
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


def record(
    fb: FeedbackMechanism,
    returns: list[float],
    regime: Regime,
    variant: str,
    slippage: float | None = None,
) -> None:
    for i, r in enumerate(returns):
        outcome = TradeOutcome.of(trade(r, i), "toy", regime, variant)
        fb.record(dataclasses.replace(outcome, slippage=slippage))


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
    assert stats.slippage is None
    assert stats.decay == pytest.approx(0.005 - 0.01) and stats.newer_mean == pytest.approx(0.005)
    assert PerformanceStats.of([0.01], [None, 0.001, 0.003]).slippage == pytest.approx(0.002)
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
    with pytest.raises(ValueError, match="decay_margin"):
        QualityConfig(decay_margin=-0.1)


def test_slippage_is_measured_against_the_decision_prices() -> None:
    long = Trade(
        "SYM", Decimal(1), T0, Decimal("100.5"), T0, Decimal("99.5"), Decimal(0), Decimal(-1)
    )
    # Bought 0.5% above the close it acted on, sold 0.5% below: 1% of slippage.
    outcome = TradeOutcome.of(long, "toy", Regime.RANGE, "live", (Decimal(100), Decimal(100)))
    assert outcome.slippage == pytest.approx(0.01)
    short = dataclasses.replace(long, qty=Decimal(-1))
    # The same fills hurt a short the other way: sold above, bought back below the closes.
    assert TradeOutcome.of(
        short, "toy", Regime.RANGE, "live", (Decimal(100), Decimal(100))
    ).slippage == pytest.approx(-0.01)
    assert TradeOutcome.of(long, "toy", Regime.RANGE, "live").slippage is None
    assert (
        TradeOutcome.of(long, "toy", Regime.RANGE, "live", (Decimal(0), Decimal(100))).slippage
        is None
    )


def test_fills_costlier_than_the_model_expects_throttle() -> None:
    qa = QualityAssessment(QualityConfig(min_trades=3, window=5, max_excess_slippage=0.002))
    fb = FeedbackMechanism()
    record(fb, [0.01] * 5, Regime.RANGE, "live", slippage=0.001)
    record(fb, [0.01] * 5, Regime.RANGE, "baseline", slippage=0.0005)
    verdict = qa.grade(fb, "toy", "SYM")
    assert verdict.action == "keep"
    assert "slippage +0.100% vs +0.050% expected" in verdict.reason
    record(fb, [0.01] * 5, Regime.RANGE, "adjusted", slippage=0.004)
    verdict = qa.grade(fb, "toy", "SYM")
    assert verdict.action == "throttle"
    assert verdict.reason.startswith("fills cost 0.350% more than the model expects")
    assert fb.recent_shadow("toy", "SYM", 5).slippage == pytest.approx(0.0005)


def test_a_decaying_signal_throttles_before_the_window_mean_turns() -> None:
    qa = QualityAssessment(QualityConfig(min_trades=3, window=10))
    fb = FeedbackMechanism()
    record(fb, [0.02, -0.001] * 3 + [0.02, 0.02] + [-0.002, 0.001], Regime.RANGE, "live")
    assert qa.grade(fb, "toy", "SYM").action == "keep"
    record(fb, [-0.003] * 3, Regime.RANGE, "live")
    verdict = qa.grade(fb, "toy", "SYM")
    # Over the 10 newest trades the mean is still positive, but the newer half lost.
    assert fb.recent_live("toy", "SYM", 10).mean_return > 0
    assert verdict.action == "throttle"
    assert verdict.reason.startswith("signal decaying, newer trades -0.200%/trade")
    # Too few trades for two halves of min_trades: the same fall is not called a decay.
    strict = QualityAssessment(QualityConfig(min_trades=6, window=10))
    assert strict.grade(fb, "toy", "SYM").action == "keep"


def test_expected_slippage_comes_from_the_same_stretch_as_the_graded_trades() -> None:
    qa = QualityAssessment(QualityConfig(min_trades=3, window=5, max_excess_slippage=0.002))
    fb = FeedbackMechanism()
    # A wide-spread hour the shadow traded through, then the market the real trades met.
    record(fb, [0.01] * 5, Regime.RANGE, "baseline", slippage=0.004)
    for i in range(5, 10):
        live = TradeOutcome.of(trade(0.01, i), "toy", Regime.RANGE, "live")
        fb.record(dataclasses.replace(live, slippage=0.003))
        if i >= 7:  # fewer shadow trades than the window: the hour before must not fill it up
            outcome = TradeOutcome.of(trade(0.01, i), "toy", Regime.RANGE, "baseline")
            fb.record(dataclasses.replace(outcome, slippage=0.0005))
    since = T0 + timedelta(minutes=4, seconds=30)
    verdict = qa.grade(fb, "toy", "SYM", since)
    assert "slippage +0.300% vs +0.050% expected" in verdict.reason
    assert verdict.action == "throttle"

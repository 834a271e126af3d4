"""The loop's decisions on hand-made inputs: rollback, grading, news, attribution."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from decimal import Decimal

import pytest

from sigma.domain import Trade
from sigma.regime.adjuster import ParamAdjuster
from sigma.regime.detector import Regime
from sigma.regime.feedback import FEEDBACK, QualityAssessment, QualityConfig
from sigma.regime.loop import AdaptiveLoop
from sigma.regime.news import NewsHandler, NewsItem
from tests.regime.conftest import T0, make_bar
from tests.regime.helpers import Toy

PRESETS = {"toy": {Regime.HIGH_VOL: {"fast": 12}}}


def make_loop(news: NewsHandler | None = None) -> AdaptiveLoop:
    adjuster = ParamAdjuster(PRESETS)
    adjuster.register(Toy, "SYM", Toy().params)
    quality = QualityAssessment(QualityConfig(min_trades=3, window=5))
    return AdaptiveLoop(adjuster, quality=quality, news=news)


def trade(entry_min: int, ret: float) -> Trade:
    entry = Decimal(100)
    pnl = Decimal(repr(ret)) * entry
    ts = T0 + timedelta(minutes=entry_min)
    return Trade(
        "SYM", Decimal(1), ts, entry, ts + timedelta(minutes=1), entry + pnl, Decimal(0), pnl
    )


def test_rollback_after_adjusted_trades_lose_against_the_shadow() -> None:
    loop = make_loop()
    loop.detector.force_high_vol("SYM", T0 + timedelta(days=1), "test: forced")
    first = loop.on_bar(make_bar(0, 100.0))
    assert first.state.regime is Regime.HIGH_VOL
    assert [u.new["fast"] for u in first.updates] == [12]
    assert [d.kind for d in first.decisions] == ["regime_change"]
    loop.on_bar(make_bar(1, 100.0))
    # Entered before the change took effect (decided on bar 0): a plain live trade.
    assert loop.record_trade("toy", trade(1, 0.01)).variant == "live"
    outcomes = [loop.record_trade("toy", trade(m, -0.01)) for m in (2, 3, 4)]
    assert {o.variant for o in outcomes} == {"adjusted"}
    assert {o.regime for o in outcomes} == {Regime.HIGH_VOL}
    for m in (2, 3, 4):
        assert loop.record_trade("toy", trade(m, 0.002), shadow=True).variant == "baseline"
    step = loop.on_bar(make_bar(5, 100.0))
    (update,) = step.updates
    assert update.kind == "rollback" and update.changed_by == FEEDBACK
    assert update.new == Toy().params
    kinds = [d.kind for d in step.decisions]
    # The live record (-0.5%/trade over 4 trades) disables; the detector is made stickier.
    assert kinds == ["rollback", "detector_tuned", "disable"]
    assert step.decisions[1].details == {"confirm_bars": 6}
    assert loop.detector.confirm_bars("SYM") == 6
    assert "adjusted parameters made -1.000%/trade over 3 trades" in step.decisions[0].reason
    assert loop.adjuster.blocked("toy", "SYM") == {Regime.HIGH_VOL}
    # Winning again lifts the disable (reported once, on the change).
    for m in (6, 7, 8, 9, 10):
        loop.record_trade("toy", trade(m, 0.02))
    kinds = [d.kind for d in loop.on_bar(make_bar(11, 100.0)).decisions]
    assert kinds == ["restore"]
    assert loop.on_bar(make_bar(12, 100.0)).decisions == []


def test_trades_before_any_bar_are_unknown_regime() -> None:
    loop = make_loop()
    assert loop.regime_at("SYM", T0) is Regime.UNKNOWN
    assert loop.record_trade("toy", trade(0, 0.01)).regime is Regime.UNKNOWN


def test_news_forces_high_vol_and_asks_once_to_halt() -> None:
    news = NewsHandler()
    news.ingest(
        NewsItem(T0 + timedelta(minutes=3), "SYM exchange hacked, fraud feared", symbols=("SYM",))
    )
    news.ingest(NewsItem(T0 + timedelta(minutes=3), "SYM sued", symbols=("SYM",)))
    loop = make_loop(news)
    steps = [loop.on_bar(make_bar(i, 100.0)) for i in range(8)]
    halts = [d for s in steps for d in s.decisions if d.kind == "news_halt"]
    assert len(halts) == 1 and halts[0].ts == T0 + timedelta(minutes=3)
    assert "hacked" in halts[0].reason
    assert all(s.state.regime is Regime.HIGH_VOL for s in steps[3:])
    assert steps[3].state.reason.startswith("news:")
    assert steps[2].state.regime is Regime.UNKNOWN


def test_rollback_when_already_back_at_baseline_is_only_reported() -> None:
    loop = make_loop()
    loop.detector.force_high_vol("SYM", T0 + timedelta(days=1), "test: forced")
    loop.on_bar(make_bar(0, 100.0))
    loop.on_bar(make_bar(1, 100.0))
    for m in (2, 3, 4):
        loop.record_trade("toy", trade(m, -0.01))
        loop.record_trade("toy", trade(m, 0.01), shadow=True)
    loop.adjuster.rollback("toy", "SYM", Regime.HIGH_VOL, T0, "operator", "alice")
    loop.detector.tighten("SYM")
    loop.detector.tighten("SYM")  # already at the cap: 4 x 3 bars
    step = loop.on_bar(make_bar(5, 100.0))
    assert step.updates == []
    assert [d.kind for d in step.decisions][:2] == ["rollback", "disable"]


def test_symbols_keep_their_own_attribution() -> None:
    adjuster = ParamAdjuster(PRESETS)
    adjuster.register(Toy, "SYM", Toy().params)
    adjuster.register(Toy, "OTHER", Toy().params)
    loop = AdaptiveLoop(adjuster)
    loop.detector.force_high_vol("SYM", T0 + timedelta(days=1), "test: forced")
    assert loop.on_bar(make_bar(0, 100.0)).updates  # SYM adjusted
    loop.on_bar(make_bar(0, 50.0, symbol="OTHER"))  # another symbol's bar in between
    loop.on_bar(make_bar(1, 100.0))
    assert loop.record_trade("toy", trade(2, 0.01)).variant == "adjusted"
    # A bar of another symbol leaves SYM's trades for SYM's next bar.
    assert loop.on_bar(make_bar(3, 50.0, symbol="OTHER")).decisions == []
    assert loop._to_assess == {("toy", "SYM", Regime.HIGH_VOL)}


def test_slippage_is_taken_against_the_closes_the_trade_acted_on() -> None:
    loop = make_loop()
    assert loop.record_trade("toy", trade(0, 0.01)).slippage is None  # no bar seen yet
    for i, close in enumerate((100.0, 101.0, 102.0)):
        loop.on_bar(make_bar(i, close))
    # Entered after bar 0 closed at 100 (filled at 100), exited after bar 1 closed at 101
    # (filled at 101): no slippage against those closes.
    entry = T0 + timedelta(minutes=1)
    exact = Trade(
        "SYM",
        Decimal(1),
        entry,
        Decimal(100),
        entry + timedelta(minutes=1),
        Decimal(101),
        Decimal(0),
        Decimal(1),
    )
    assert loop.record_trade("toy", exact).slippage == 0.0
    worse = dataclasses.replace(exact, entry_price=Decimal(101), exit_price=Decimal(100))
    assert loop.record_trade("toy", worse).slippage == pytest.approx(0.01 + 1 / 101)

"""Probation and the operator's way back: a throttled or disabled strategy is graded on its
shadow's paper trades after a minimum time out, or enabled by hand; both survive a restart."""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sigma.config import Settings
from sigma.domain import Bar, Trade
from sigma.engine.engine import Engine, EngineConfig, empty_data
from sigma.feeds.synthetic import generate_bars
from sigma.notify.service import NotificationService
from sigma.regime.adjuster import ParamAdjuster
from sigma.regime.backtest import PausingEngine, build_hook
from sigma.regime.detector import Regime, frame_bars
from sigma.regime.feedback import (
    QualityAssessment,
    QualityConfig,
    Standing,
    TradeOutcome,
)
from sigma.regime.hook import AdaptiveHook
from sigma.regime.live import build_live_adaptive
from sigma.regime.loop import PROBATION, AdaptiveLoop, LoopDecision
from sigma.regime.sinks import StoreSink
from sigma.regime.state import AdaptiveStateStore
from sigma.store.db import session_scope
from sigma.store.models import ActionLog
from sigma.strategies.builtin import SmaCross
from tests.regime.conftest import T0, make_bar
from tests.regime.helpers import Toy

TIME_OUT = 30
CONFIG = QualityConfig(min_trades=3, window=5, probation_bars=TIME_OUT)


def make_loop() -> AdaptiveLoop:
    adjuster = ParamAdjuster({})
    adjuster.register(Toy, "SYM", Toy().params)
    return AdaptiveLoop(adjuster, quality=QualityAssessment(CONFIG))


def trade(entry_min: int, ret: float) -> Trade:
    entry = Decimal(100)
    pnl = Decimal(repr(ret)) * entry
    ts = T0 + timedelta(minutes=entry_min)
    return Trade(
        "SYM", Decimal(1), ts, entry, ts + timedelta(minutes=1), entry + pnl, Decimal(0), pnl
    )


def kinds(decisions: list[LoopDecision]) -> list[str]:
    return [d.kind for d in decisions if d.kind != "regime_change"]


def disabled_loop() -> AdaptiveLoop:
    """A loop that disabled `toy` on bar 10 after three -1% trades."""
    loop = make_loop()
    for i in range(10):
        loop.on_bar(make_bar(i, 100.0))
    for m in (2, 4, 6):
        loop.record_trade("toy", trade(m, -0.01))
    assert kinds(loop.on_bar(make_bar(10, 100.0)).decisions) == ["disable"]
    assert loop.standing("toy", "SYM") == Standing(
        "disable", make_bar(10, 1).ts, make_bar(10 + TIME_OUT, 1).ts
    )
    return loop


def run(loop: AdaptiveLoop, start: int, stop: int, shadow: float) -> dict[int, list[str]]:
    """Bars `start`..`stop`-1; a shadow trade returning `shadow` enters every other bar."""
    seen = {}
    for i in range(start, stop):
        if i % 2 == 0:
            loop.record_trade("toy", trade(i - 1, shadow), shadow=True)
        if found := kinds(loop.on_bar(make_bar(i, 100.0)).decisions):
            seen[i] = found
    return seen


def test_a_disabled_strategy_whose_shadow_recovers_comes_back_after_the_time_out() -> None:
    loop = disabled_loop()
    # The shadow wins from bar 12 on, but the strategy sits its time out first.
    seen = run(loop, 11, 60, 0.01)
    assert list(seen) == [10 + TIME_OUT] and seen[10 + TIME_OUT] == ["reinstate"]
    standing = loop.standing("toy", "SYM")
    assert standing.status == "keep" and standing.fresh_from == make_bar(40, 1).ts
    # Its own record starts afresh: the old losses no longer count, and one new loss alone
    # (fewer than min_trades) decides nothing.
    loop.record_trade("toy", trade(61, -0.01))
    assert kinds(loop.on_bar(make_bar(62, 100.0)).decisions) == []
    assert loop.grade("toy", "SYM") == "keep"
    # A fresh losing streak disables it again, with a new time out.
    for m in (63, 64):
        loop.record_trade("toy", trade(m, -0.01))
    assert kinds(loop.on_bar(make_bar(66, 100.0)).decisions) == ["disable"]
    assert loop.standing("toy", "SYM").until == make_bar(66 + TIME_OUT, 1).ts


def test_the_reinstate_decision_says_who_what_and_why() -> None:
    loop = disabled_loop()
    for i in range(11, 10 + TIME_OUT):
        loop.record_trade("toy", trade(i, 0.01), shadow=True)
        loop.on_bar(make_bar(i, 100.0))
    (decision,) = [
        d
        for d in loop.on_bar(make_bar(10 + TIME_OUT, 100.0)).decisions
        if d.kind != "regime_change"
    ]
    assert decision.strategy == "toy" and decision.ts == make_bar(40, 1).ts
    assert decision.details == {
        "status": "keep",
        "was": "disable",
        "by": PROBATION,
        "score": pytest.approx(0.01),
    }
    assert decision.reason.startswith("probation: disable lifted to keep, shadow's last 5 trades")


def test_a_disabled_strategy_whose_shadow_stays_poor_stays_disabled() -> None:
    loop = disabled_loop()
    assert run(loop, 11, 200, -0.01) == {}
    assert loop.grade("toy", "SYM") == "disable"


def test_the_shadow_trades_before_the_verdict_do_not_count() -> None:
    loop = make_loop()
    for i in range(10):
        loop.on_bar(make_bar(i, 100.0))
        loop.record_trade("toy", trade(i - 1, 0.01), shadow=True)
    for m in (2, 4, 6):
        loop.record_trade("toy", trade(m, -0.01))
    assert kinds(loop.on_bar(make_bar(10, 100.0)).decisions) == ["disable"]
    # Ten winning shadow trades, all from before the disable: nothing to go on.
    for i in range(11, 100):
        assert kinds(loop.on_bar(make_bar(i, 100.0)).decisions) == []
    assert loop.grade("toy", "SYM") == "disable"


def test_a_middling_shadow_lifts_a_disable_to_a_throttle_then_to_keep() -> None:
    loop = disabled_loop()
    # -0.2%/trade: above the disable level, at the throttle level.
    seen = run(loop, 11, 60, -0.002)
    assert seen == {40: ["reinstate"]}
    assert loop.standing("toy", "SYM") == Standing(
        "throttle", make_bar(40, 1).ts, make_bar(40 + TIME_OUT, 1).ts, make_bar(40, 1).ts
    )
    # The throttle has a time out of its own; then the now winning shadow lifts it.
    seen = run(loop, 60, 120, 0.01)
    assert seen == {70: ["reinstate"]} and loop.grade("toy", "SYM") == "keep"


def test_a_throttled_strategy_is_reinstated_by_its_shadow() -> None:
    loop = make_loop()
    for i in range(10):
        loop.on_bar(make_bar(i, 100.0))
    for m in (2, 4, 6):
        loop.record_trade("toy", trade(m, -0.002))
    assert kinds(loop.on_bar(make_bar(10, 100.0)).decisions) == ["throttle"]
    assert run(loop, 11, 60, 0.01) == {40: ["reinstate"]}


def test_a_saved_verdict_without_a_deadline_gets_one() -> None:
    # Saved before probation existed: the time out runs from the verdict when it is known...
    loop = make_loop()
    loop.restore("toy", "SYM", [], Standing("disable", make_bar(5, 1).ts))
    assert run(loop, 0, 60, 0.01) == {5 + TIME_OUT: ["reinstate"]}
    # ... and from the first bar it sees when it is not.
    loop = make_loop()
    loop.restore("toy", "SYM", [], Standing("disable"))
    assert run(loop, 0, 60, 0.01) == {TIME_OUT: ["reinstate"]}


def test_an_operator_enables_at_once() -> None:
    loop = disabled_loop()
    assert loop.enable("toy", "SYM", make_bar(11, 1).ts, by="alice", reason="fixed") == (
        LoopDecision(
            "enable",
            "SYM",
            make_bar(11, 1).ts,
            "enabled by alice: fixed",
            "toy",
            {"status": "keep", "was": "disable", "by": "alice"},
        )
    )
    assert loop.standing("toy", "SYM").fresh_from == make_bar(11, 1).ts
    assert loop.enable("toy", "SYM", make_bar(12, 1).ts, by="alice", reason="again") is None


def test_bad_probation_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="probation_bars"):
        QualityConfig(probation_bars=0)
    with pytest.raises(ValueError, match="status"):
        Standing("paused")
    assert Settings().regime.adaptive_probation_bars == QualityConfig().probation_bars


# --- the hook, the state store and restarts ----------------------------------------------------

SYMBOL = "SYN"


def _hook(sessions: sessionmaker[Session], probation: int = TIME_OUT) -> AdaptiveHook:
    # No shadow engine: the shadow's record is what a test writes into the feedback.
    hook = build_hook({}, quality=QualityConfig(probation_bars=probation), shadow=False)
    hook.state = AdaptiveStateStore(sessions)
    hook.enable_poll_seconds = 0.0  # read on every bar: a request applies on the next one
    hook.sinks.append(StoreSink(sessions, mode="paper"))
    return hook


def _attach(hook: AdaptiveHook) -> Engine:
    engine = PausingEngine(SmaCross(), SYMBOL, empty_data(), EngineConfig(), hook.entry_pause)
    hook.attach(engine)
    return engine


def _save_disabled(sessions: sessionmaker[Session], until_bar: int | None) -> None:
    AdaptiveStateStore(sessions).save_strategy(
        "sma_cross",
        SYMBOL,
        status="disable",
        score=-0.01,
        reason="last 20 trades: -1.000%/trade",
        blocked=frozenset(),
        baseline=SmaCross().params,
        current=SmaCross().params,
        ts=T0,
        since=T0,
        until=None if until_bar is None else T0 + timedelta(minutes=until_bar),
    )


def _wins(hook: AdaptiveHook, count: int) -> None:
    """`count` winning shadow trades entered after the verdict (as if the shadow made them)."""
    for i in range(count):
        ts = T0 + timedelta(minutes=i + 1)
        hook.loop.feedback.record(
            TradeOutcome("sma_cross", SYMBOL, Regime.RANGE, "baseline", 0.01, ts, ts)
        )


def _actions(sessions: sessionmaker[Session]) -> list[ActionLog]:
    with session_scope(sessions) as session:
        rows = list(session.scalars(select(ActionLog).order_by(ActionLog.id)))
        session.expunge_all()
    return rows


@pytest.fixture(scope="module")
def market() -> list[Bar]:
    return list(frame_bars(generate_bars(400, seed=3)[0], SYMBOL))


def test_a_restart_keeps_the_time_out_and_the_reinstatement(
    factory: sessionmaker[Session], market: list[Bar]
) -> None:
    # The market's first bar is T0; the saved disable may be lifted from bar 100 on.
    assert market[0].ts == T0
    _save_disabled(factory, until_bar=100)
    hook = _hook(factory)
    engine = _attach(hook)
    assert hook.status[("sma_cross", SYMBOL)] == "disable"
    assert hook.loop.standing("sma_cross", SYMBOL).until == T0 + timedelta(minutes=100)
    _wins(hook, 5)
    for bar in market[:100]:
        engine.on_bar(bar)
        hook.on_bar(SYMBOL, bar)
    assert hook.status[("sma_cross", SYMBOL)] == "disable"
    engine.on_bar(market[100])
    hook.on_bar(SYMBOL, market[100])
    assert hook.status[("sma_cross", SYMBOL)] == "keep"
    (row,) = [a for a in _actions(factory) if a.action == "regime_reinstate"]
    assert row.ts == market[100].ts and row.details["by"] == PROBATION
    assert row.details["status"] == "keep" and row.details["was"] == "disable"
    saved = AdaptiveStateStore(factory).load_strategy("sma_cross", SYMBOL)
    assert saved.standing == Standing("keep", market[100].ts, None, market[100].ts)
    # Restarted: it stays enabled, its record counting from the reinstatement.
    again = _hook(factory)
    _attach(again)
    assert again.status[("sma_cross", SYMBOL)] == "keep"
    assert again.loop.standing("sma_cross", SYMBOL) == saved.standing


def test_a_restart_before_the_deadline_does_not_shorten_the_time_out(
    factory: sessionmaker[Session], market: list[Bar]
) -> None:
    _save_disabled(factory, until_bar=200)
    hook = _hook(factory)
    engine = _attach(hook)
    _wins(hook, 5)
    for bar in market[:150]:
        engine.on_bar(bar)
        hook.on_bar(SYMBOL, bar)
    assert hook.status[("sma_cross", SYMBOL)] == "disable"
    # A restart at bar 150 (nothing new was decided, so nothing new was saved).
    again = _hook(factory)
    engine = _attach(again)
    _wins(again, 5)
    for i, bar in enumerate(market[150:260], start=150):
        engine.on_bar(bar)
        again.on_bar(SYMBOL, bar)
        assert again.status[("sma_cross", SYMBOL)] == ("keep" if i >= 200 else "disable")


def test_an_enable_request_reaches_a_running_hook_and_the_next_start(
    factory: sessionmaker[Session], market: list[Bar]
) -> None:
    _save_disabled(factory, until_bar=None)
    store = AdaptiveStateStore(factory)
    hook = _hook(factory, probation=10_000)
    engine = _attach(hook)
    for bar in market[:5]:
        engine.on_bar(bar)
        hook.on_bar(SYMBOL, bar)
    assert hook.status[("sma_cross", SYMBOL)] == "disable"
    # `sigma regime enable` while the hook runs: applied on its next bar of the symbol.
    saved = store.request_enable("sma_cross", SYMBOL, by="cli:alice", reason="feed fixed", ts=T0)
    assert saved.status == "disable"
    assert [(r.strategy, r.by, r.reason) for r in store.enable_requests(SYMBOL)] == [
        ("sma_cross", "cli:alice", "feed fixed")
    ]
    engine.on_bar(market[5])
    hook.on_bar(SYMBOL, market[5])
    assert hook.status[("sma_cross", SYMBOL)] == "keep"
    assert hook.entry_pause("sma_cross", SYMBOL, market[5].ts) == ""
    assert store.enable_requests(SYMBOL) == []
    (row,) = [a for a in _actions(factory) if a.action == "regime_enable"]
    assert row.ts == market[5].ts and row.strategy == "sma_cross"
    assert row.details == {
        "reason": "enabled by cli:alice: feed fixed",
        "status": "keep",
        "was": "disable",
        "by": "cli:alice",
    }
    assert store.load_strategy("sma_cross", SYMBOL).status == "keep"
    # Nothing to enable any more: no request is stored.
    assert store.request_enable("sma_cross", SYMBOL, by="b", reason="", ts=T0).status == "keep"
    assert store.enable_requests(SYMBOL) == []


def test_an_enable_request_made_while_down_applies_at_the_next_start(
    factory: sessionmaker[Session], market: list[Bar]
) -> None:
    _save_disabled(factory, until_bar=None)
    store = AdaptiveStateStore(factory)
    store.request_enable("sma_cross", SYMBOL, by="cli:bob", reason="", ts=T0)
    # A request for a strategy this process does not trade stays for the one that does.
    store.save_strategy(
        "other",
        SYMBOL,
        status="throttle",
        score=None,
        reason="",
        blocked=frozenset(),
        baseline={},
        current={},
        ts=T0,
    )
    store.request_enable("other", SYMBOL, by="cli:bob", reason="", ts=T0)
    hook = _hook(factory, probation=10_000)
    engine = _attach(hook)
    assert hook.status[("sma_cross", SYMBOL)] == "disable"
    engine.on_bar(market[0])
    hook.on_bar(SYMBOL, market[0])
    assert hook.status[("sma_cross", SYMBOL)] == "keep"
    assert [r.strategy for r in store.enable_requests(SYMBOL)] == ["other"]


def test_enable_on_the_hook_and_failing_requests(
    factory: sessionmaker[Session],
    market: list[Bar],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="sigma.regime")
    hook = _hook(factory)
    engine = _attach(hook)
    assert hook.enable("sma_cross", SYMBOL, by="alice", reason="", ts=T0) is False
    with pytest.raises(KeyError):
        hook.enable("nope", SYMBOL, by="alice", reason="", ts=T0)

    class Broken(AdaptiveStateStore):
        def enable_requests(self, symbol: str) -> list:  # type: ignore[type-arg]
            raise RuntimeError("database down")

    hook.state = Broken(factory)
    engine.on_bar(market[0])
    hook.on_bar(SYMBOL, market[0])
    assert "reading enable requests failed" in caplog.text


def test_an_applied_request_that_cannot_be_dropped_is_logged(
    factory: sessionmaker[Session],
    market: list[Bar],
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Sticky(AdaptiveStateStore):
        def drop_enable_request(self, strategy: str, symbol: str) -> None:
            raise RuntimeError("database down")

    caplog.set_level(logging.INFO, logger="sigma.regime")
    _save_disabled(factory, until_bar=None)
    hook = _hook(factory)
    hook.state = Sticky(factory)
    engine = _attach(hook)
    hook.state.request_enable("sma_cross", SYMBOL, by="a", reason="", ts=T0)
    for bar in market[:2]:
        engine.on_bar(bar)
        hook.on_bar(SYMBOL, bar)
    # Applied once; the request that stayed behind finds nothing to enable.
    assert hook.status[("sma_cross", SYMBOL)] == "keep"
    assert "dropping an applied enable request failed" in caplog.text
    assert "was not out; enable request by a dropped" in caplog.text


def test_sigma_up_takes_the_time_out_from_the_settings(
    factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIGMA_ADAPTIVE_PROBATION_BARS", "77")
    adaptive = build_live_adaptive(Settings(), factory, NotificationService())
    assert adaptive.hook.loop.quality.config.probation_bars == 77


def test_enable_requests_are_read_at_most_every_poll_interval(
    factory: sessionmaker[Session], market: list[Bar]
) -> None:
    _save_disabled(factory, until_bar=None)
    store = AdaptiveStateStore(factory)
    hook = _hook(factory, probation=10_000)
    hook.enable_poll_seconds = 5.0
    now = [100.0]
    hook.clock = lambda: now[0]
    engine = _attach(hook)
    engine.on_bar(market[0])
    hook.on_bar(SYMBOL, market[0])  # read at 100 s: nothing asked yet
    store.request_enable("sma_cross", SYMBOL, by="cli:alice", reason="feed fixed", ts=T0)
    for i, seconds in ((1, 101.0), (2, 104.9)):
        now[0] = seconds
        engine.on_bar(market[i])
        hook.on_bar(SYMBOL, market[i])
        assert hook.status[("sma_cross", SYMBOL)] == "disable"  # not read again yet
    now[0] = 105.0
    engine.on_bar(market[3])
    hook.on_bar(SYMBOL, market[3])
    assert hook.status[("sma_cross", SYMBOL)] == "keep"
    assert store.enable_requests(SYMBOL) == []

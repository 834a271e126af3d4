"""The adaptive loop's lasting state survives a restart: feedback trades (so the quality scores
go on), throttle/disable verdicts, rolled-back regimes, the baseline and the parameters in
force, and the detector's tuned thresholds - on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from sigma.engine.engine import Engine as BacktestEngine
from sigma.engine.engine import EngineConfig, empty_data
from sigma.feeds.synthetic import generate_bars
from sigma.regime.backtest import build_hook
from sigma.regime.detector import Regime, frame_bars
from sigma.regime.feedback import VARIANTS, QualityConfig, TradeOutcome
from sigma.regime.hook import AdaptiveHook
from sigma.regime.loop import LoopDecision
from sigma.regime.presets import BUILTIN_PRESETS
from sigma.regime.sinks import StoreSink, WrittenBehind
from sigma.regime.state import AdaptiveStateStore, WriteBehindStateStore
from sigma.store.db import session_factory, session_scope
from sigma.store.models import ActionLog, RegimeState, RegimeTrade
from sigma.store.params import get_active_params, set_params
from sigma.store.write_behind import WriteBehind
from sigma.strategies.builtin import SmaCross
from tests.regime.conftest import T0

SYMBOL = "SYN"
# Grades strict enough that the run below throttles and disables: every decision kind that
# must outlive a restart shows up within a few thousand bars.
STRICT = QualityConfig(min_trades=3, window=6, throttle_below=0.002, disable_below=-0.002)


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return generate_bars(4_000, seed=7)[0]


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


def _hook(sessions: sessionmaker[Session]) -> AdaptiveHook:
    hook = build_hook(BUILTIN_PRESETS, quality=STRICT)
    hook.state = AdaptiveStateStore(sessions)
    hook.sinks.append(StoreSink(sessions, mode="paper"))
    return hook


def _start(hook: AdaptiveHook, sessions: sessionmaker[Session]) -> BacktestEngine:
    """What `sigma up` does at start: the strategy with its active stored parameters."""
    with sessions() as session:
        params = get_active_params(session, "sma_cross", SYMBOL) or {}
    engine = BacktestEngine(SmaCross(**params), SYMBOL, empty_data(), EngineConfig())
    hook.attach(engine)
    return engine


def _feed(hook: AdaptiveHook, engine: BacktestEngine, bars: pd.DataFrame) -> None:
    for bar in frame_bars(bars, SYMBOL):
        engine.on_bar(bar)
        hook.on_bar(SYMBOL, bar)


def _memory(hook: AdaptiveHook) -> dict[str, Any]:
    """Everything of the loop a restart must bring back."""
    loop, name = hook.loop, "sma_cross"
    feedback = {
        (regime, variant): loop.feedback.stats(name, SYMBOL, regime, variant)
        for regime in Regime
        for variant in VARIANTS
    }
    return {
        "status": hook.status[(name, SYMBOL)],
        "grade": loop.grade(name, SYMBOL),
        "verdict": loop.quality.grade(loop.feedback, name, SYMBOL),
        "recent": loop.feedback.recent_live(name, SYMBOL, STRICT.window),
        "feedback": feedback,
        "baseline": loop.adjuster.baseline(name, SYMBOL),
        "current": loop.adjuster.current(name, SYMBOL),
        "blocked": loop.adjuster.blocked(name, SYMBOL),
        "confirm_bars": loop.detector.confirm_bars(SYMBOL),
    }


def test_a_restart_resumes_scores_verdicts_blocks_and_thresholds(
    bars: pd.DataFrame, sessions: sessionmaker[Session]
) -> None:
    first = _hook(sessions)
    engine = _start(first, sessions)
    _feed(first, engine, bars.iloc[:3_000])
    kinds = {d.kind for d in first.decisions}
    assert {"rollback", "detector_tuned"} <= kinds and kinds & {"throttle", "disable"}
    before = _memory(first)
    assert before["blocked"] and before["confirm_bars"] > 3
    assert before["current"] != before["baseline"] or before["status"] != "keep"

    # The process stops; a new one starts from the database alone.
    second = _hook(sessions)
    restarted = _start(second, sessions)
    assert restarted.strategy.params == before["current"]
    assert _memory(second) == before

    # ... and carries on.
    _feed(second, restarted, bars.iloc[3_000:3_400])
    assert second.status[("sma_cross", SYMBOL)] == second.loop.grade("sma_cross", SYMBOL)
    # What it learnt after the restart is saved as well: a second restart resumes from there.
    third = _hook(sessions)
    _start(third, sessions)
    assert _memory(third) == _memory(second)


def test_a_fresh_database_starts_from_scratch(sessions: sessionmaker[Session]) -> None:
    hook = _hook(sessions)
    _start(hook, sessions)
    assert hook.status[("sma_cross", SYMBOL)] == "keep"
    assert hook.loop.adjuster.baseline("sma_cross", SYMBOL) == SmaCross().params
    assert hook.loop.detector.confirm_bars(SYMBOL) == 3


def test_parameters_changed_while_down_become_the_new_baseline(
    sessions: sessionmaker[Session],
) -> None:
    store = AdaptiveStateStore(sessions)
    store.save_strategy(
        "sma_cross",
        SYMBOL,
        status="disable",
        score=-0.01,
        reason="last 6 trades: -1%/trade",
        blocked=frozenset({Regime.RANGE}),
        baseline=SmaCross().params,
        current={"fast": 14, "slow": 40},
        ts=T0,
    )
    with session_scope(sessions) as session:
        set_params(session, "sma_cross", SYMBOL, {"fast": 5, "slow": 50}, "operator", "alice")
    hook = _hook(sessions)
    _start(hook, sessions)
    adjuster = hook.loop.adjuster
    # Someone chose new parameters: they are the baseline now, and the old blocks are void.
    assert adjuster.baseline("sma_cross", SYMBOL) == SmaCross(fast=5, slow=50).params
    assert adjuster.blocked("sma_cross", SYMBOL) == frozenset()
    # The verdict on the strategy stands until an operator resets it.
    assert hook.status[("sma_cross", SYMBOL)] == "disable"
    assert store.reset("sma_cross", SYMBOL) is True
    assert store.reset("sma_cross", SYMBOL) is False
    again = _hook(sessions)
    _start(again, sessions)
    assert again.status[("sma_cross", SYMBOL)] == "keep"


def test_only_the_newest_trades_per_regime_and_variant_are_kept(
    sessions: sessionmaker[Session],
) -> None:
    store = AdaptiveStateStore(sessions, keep=3)
    for i in range(5):
        ts = T0 + timedelta(minutes=i)
        for variant in ("live", "baseline"):
            store.record_trade(
                TradeOutcome("s", "X", Regime.RANGE, variant, i / 100, ts, ts + timedelta(1))
            )
    store.record_trade(TradeOutcome("s", "X", Regime.HIGH_VOL, "adjusted", -0.5, T0, T0))
    store.record_trade(TradeOutcome("other", "X", Regime.RANGE, "live", 0.9, T0, T0))
    saved = store.load_strategy("s", "X")
    assert [(t.variant, t.return_pct) for t in saved.trades if t.regime is Regime.RANGE] == [
        (v, i / 100) for i in (2, 3, 4) for v in ("live", "baseline")
    ]
    assert saved.status == "keep" and saved.current is None
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(RegimeTrade)) == 3 * 2 + 2
    store.forget("s", "X", Regime.HIGH_VOL)
    assert all(t.variant != "adjusted" for t in store.load_strategy("s", "X").trades)
    store.save_detector("X", 6)
    store.save_detector("X", 12)
    assert store.load_detector("X") == 12 and store.load_detector("Y") is None
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(RegimeState)) == 1
    with pytest.raises(ValueError, match="keep"):
        AdaptiveStateStore(sessions, keep=0)


def test_a_failing_store_never_stops_the_loop(
    bars: pd.DataFrame, sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(AdaptiveStateStore):
        def record_trade(self, outcome: TradeOutcome) -> None:
            raise RuntimeError("disk full")

        def save_strategy(self, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("disk full")

    hook = build_hook(BUILTIN_PRESETS, quality=STRICT)
    hook.state = Broken(sessions)
    engine = _start(hook, sessions)
    _feed(hook, engine, bars.iloc[:1_500])
    assert hook.updates and "saving" in caplog.text


def test_a_saved_baseline_the_strategy_no_longer_accepts_is_dropped(
    sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    store = AdaptiveStateStore(sessions)
    store.save_strategy(
        "sma_cross",
        SYMBOL,
        status="throttle",
        score=-0.002,
        reason="weak",
        blocked=frozenset({Regime.RANGE}),
        baseline={"fast": 10, "slow": 30, "retired_option": 3},
        current=SmaCross().params,
        ts=T0,
    )
    hook = _hook(sessions)
    _start(hook, sessions)
    assert hook.loop.adjuster.baseline("sma_cross", SYMBOL) == SmaCross().params
    assert hook.loop.adjuster.blocked("sma_cross", SYMBOL) == frozenset()
    assert hook.status[("sma_cross", SYMBOL)] == "throttle"
    assert "saved baseline not usable" in caplog.text


@contextmanager
def writes_locked_out(engine: Engine, table: str) -> Iterator[threading.Event]:
    """Another writer holds `table` (SQLite: the database) from a thread of its own
    until the block ends, or 5 s at most (a store that writes inline then fails the test
    instead of hanging it). Yields the event set once it let go."""
    locked, release, released = threading.Event(), threading.Event(), threading.Event()

    def hold() -> None:
        # On SQLite the engine's transactions begin IMMEDIATE: the database is locked.
        with engine.begin() as other:
            if engine.dialect.name == "postgresql":
                other.exec_driver_sql(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
            locked.set()
            release.wait(5.0)
        released.set()

    holder = threading.Thread(target=hold)
    holder.start()
    assert locked.wait(10.0)
    try:
        yield released
    finally:
        release.set()
        holder.join()


def test_the_live_store_writes_behind_the_caller_in_order(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    writer = WriteBehind("the adaptive state")
    store = WriteBehindStateStore(sessions, writer)
    first = TradeOutcome("s", "X", Regime.RANGE, "adjusted", 0.01, T0, T0 + timedelta(1))
    second = TradeOutcome("s", "X", Regime.TREND_UP, "live", 0.02, T0, T0 + timedelta(2))
    with writes_locked_out(engine, "regime_trades") as released:
        store.record_trade(first)
        store.forget("s", "X", Regime.RANGE)  # after `first`, whenever that is written
        store.record_trade(second)
        assert not released.is_set()  # the calls returned while the database was locked
    assert store.load_strategy("s", "X").trades == [second]  # reads follow the writes
    store.save_strategy(
        "s", "X", status="disable", score=None, reason="weak", blocked=frozenset(),
        baseline={}, current={}, ts=T0,
    )  # fmt: skip
    store.request_enable("s", "X", by="alice")  # an operator's request, as the API makes it
    assert [r.by for r in store.enable_requests("X")] == ["alice"]
    store.drop_enable_request("s", "X")
    assert store.enable_requests("X") == []
    store.save_detector("X", 9)
    writer.close()
    assert AdaptiveStateStore(sessions).load_detector("X") == 9  # close finished the queue


def test_the_live_store_sink_writes_decisions_behind_the_caller_in_order(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    writer = WriteBehind("the adaptive state")
    sink = WrittenBehind(StoreSink(sessions, mode="paper"), writer)
    kinds = ("regime_change", "throttle", "restore")
    with writes_locked_out(engine, "action_log") as released:
        for n, kind in enumerate(kinds):
            sink.on_decision(LoopDecision(kind, SYMBOL, T0 + timedelta(minutes=n), "why", "s"))
        assert not released.is_set()
    writer.close()
    with sessions() as session:
        actions = session.scalars(select(ActionLog.action).order_by(ActionLog.id)).all()
    assert actions == [f"regime_{kind}" for kind in kinds]

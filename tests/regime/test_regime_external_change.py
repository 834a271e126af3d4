"""Parameter changes from outside the loop (an operator, the scheduled optimiser) go through the
StrategyTester and become the baseline the loop adjusts from - in the hook and in `sigma up`."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sigma.bootstrap import App
from sigma.config import load_settings
from sigma.regime.adjuster import ADJUSTER, ParamUpdate
from sigma.regime.backtest import build_hook, run_adaptive_backtest
from sigma.regime.detector import Regime
from sigma.regime.policy import TESTER
from sigma.regime.sinks import LOOP_AUTHORS, StoreSink
from sigma.regime.state import AdaptiveStateStore
from sigma.regime.tester import WalkForwardConfig
from sigma.runtime.control import BotControl
from sigma.runtime.services import Services
from sigma.store.db import session_scope
from sigma.store.models import ActionLog
from sigma.store.params import get_active_params, param_history, set_params, version_author
from sigma.strategies.builtin import SmaCross
from tests.regime.conftest import T0
from tests.regime.test_regime_tester import Direction, rising

SYMBOL = "SYM"


def test_a_change_that_fails_the_walk_forward_is_refused_and_stored(
    factory: sessionmaker[Session],
) -> None:
    hook = build_hook({}, tester=WalkForwardConfig(lookback=90, folds=3))
    hook.sinks.append(StoreSink(factory, mode="paper"))
    strategy = Direction(side=1)
    run_adaptive_backtest(strategy, rising(120), symbol=SYMBOL, hook=hook)
    reason = hook.change_params("direction", SYMBOL, {"side": -1}, by="alice", ts=T0)
    assert reason is not None and reason.startswith("refused: passed 0 of 3")
    assert strategy.params == {"side": 1}
    assert hook.loop.adjuster.baseline("direction", SYMBOL) == {"side": 1}
    decision = hook.decisions[-1]
    assert (decision.kind, decision.strategy, decision.reason) == ("refused", "direction", reason)
    assert decision.details == {"candidate": {"side": -1}, "by": "alice"}
    with session_scope(factory) as session:
        row = session.scalars(select(ActionLog).order_by(ActionLog.id.desc())).first()
    assert row is not None and row.action == "regime_refused" and row.details["by"] == "alice"
    # A change that holds up on the same bars passes and is applied.
    assert hook.change_params("direction", SYMBOL, {"side": 1}, by="alice", ts=T0) is None


def test_an_accepted_change_becomes_the_new_baseline(factory: sessionmaker[Session]) -> None:
    hook = build_hook({"direction": {Regime.RANGE: {"side": 0}}})
    hook.state = AdaptiveStateStore(factory)
    strategy = Direction(side=1)
    run_adaptive_backtest(strategy, rising(60), symbol=SYMBOL, hook=hook)
    adjuster = hook.loop.adjuster
    adjuster.rollback("direction", SYMBOL, Regime.RANGE, T0, "hurt", "test")
    assert hook.change_params("direction", SYMBOL, {"side": -1}, by="bob", ts=T0) is None
    assert strategy.params == {"side": -1}
    assert adjuster.baseline("direction", SYMBOL) == adjuster.current("direction", SYMBOL)
    assert adjuster.baseline("direction", SYMBOL) == {"side": -1}
    assert adjuster.blocked("direction", SYMBOL) == frozenset()  # tried again from here
    # The shadow, the loop's counterfactual, now runs the new baseline too.
    (binding,) = hook.bindings.on(SYMBOL)
    assert binding.shadow is not None and binding.shadow.strategy.params == {"side": -1}
    saved = hook.state.load_strategy("direction", SYMBOL)
    assert saved.baseline == {"side": -1} and saved.blocked == frozenset()


def test_an_invalid_change_raises_and_changes_nothing() -> None:
    hook = build_hook({"sma_cross": {Regime.RANGE: {"slow": 90}}})
    strategy = SmaCross()
    run_adaptive_backtest(strategy, rising(60), symbol=SYMBOL, hook=hook)
    before = dict(strategy.params)
    with pytest.raises(ValueError, match="above its maximum"):
        hook.change_params("sma_cross", SYMBOL, {"fast": 10_000}, by="x", ts=T0)
    # Valid alone, but the range preset over it (slow 90) would put fast above slow.
    with pytest.raises(ValueError, match="preset for sma_cross in range"):
        hook.change_params("sma_cross", SYMBOL, {"fast": 95, "slow": 200}, by="x", ts=T0)
    assert strategy.params == before
    assert hook.loop.adjuster.baseline("sma_cross", SYMBOL) == before
    with pytest.raises(KeyError, match="not attached"):
        hook.change_params("sma_cross", "OTHER", {}, by="x", ts=T0)


def _system(tmp_path: Path, test_bars: int) -> Services:
    settings = load_settings(
        database_url=f"sqlite:///{tmp_path / 'sigma.db'}",
        var_dir=str(tmp_path),
        symbols=[SYMBOL],
        live_strategies=["sma_cross"],
        adaptive=True,
        adaptive_test_bars=test_bars,
    )
    system = Services(App(settings), ("bot",))
    system.bot = system._bot()
    system.control = BotControl(system.bot, system.app.sessions, system.actions)
    return system


def _scheduled(system: Services, params: dict[str, object], version: int) -> bool:
    """Hand `version` to the system as the scheduler does, from a thread of its own, and wait
    for the change to be applied on the loop; False when the system found nothing to do."""

    async def run() -> bool:
        loop = asyncio.get_running_loop()
        future = await asyncio.to_thread(
            system._on_scheduled_params, loop, "sma_cross", SYMBOL, params, version
        )
        if future is None:
            return False
        await asyncio.wrap_future(future)
        return True

    return asyncio.run(run())


def test_sigma_up_sends_scheduled_changes_through_the_loop(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    system = _system(tmp_path, test_bars=300)
    assert system.bot is not None and system.adaptive is not None
    (engine,) = system.bot.engines.values()
    before = dict(engine.strategy.params)
    with caplog.at_level(logging.WARNING):
        assert _scheduled(system, {"fast": 5}, 2)
    # Nothing traded yet: no recent bars to test the change on, so it waits.
    assert engine.strategy.params == before
    assert "parameters v2 for sma_cross SYM: refused: needs 300 recent bars" in caplog.text
    # The refusal's action_log row is written behind the loop: wait for it, with a deadline.
    deadline = time.monotonic() + 10
    while True:
        with system.app.sessions() as session:
            actions = [a.action for a in session.scalars(select(ActionLog))]
        if actions or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert actions == ["regime_refused"]
    system.app.close()

    open_system = _system(tmp_path / "untested", test_bars=0)
    assert open_system.bot is not None and open_system.adaptive is not None
    (engine,) = open_system.bot.engines.values()
    hook = open_system.adaptive.hook
    # The loop's own change comes back from the database through ConfigSync: already in force,
    # so it must not become the baseline.
    adjusted = {**engine.strategy.params, "fast": 12}
    StoreSink(open_system.app.sessions).on_update(
        ParamUpdate(
            "sma_cross",
            SYMBOL,
            T0,
            Regime.RANGE,
            engine.strategy.params,
            adjusted,
            "regime range",
            ADJUSTER,
        )
    )
    with open_system.app.sessions() as session:
        # The baseline it started from, then its own change; the next version is nobody's.
        assert version_author(session, "sma_cross", SYMBOL, 1) in LOOP_AUTHORS
        assert version_author(session, "sma_cross", SYMBOL, 2) in LOOP_AUTHORS
        assert version_author(session, "sma_cross", SYMBOL, 3) not in LOOP_AUTHORS
    assert not _scheduled(open_system, adjusted, 2)
    assert hook.loop.adjuster.baseline("sma_cross", SYMBOL) == before
    assert engine.strategy.params == before
    # An operator's version is applied and becomes the baseline.
    with session_scope(open_system.app.sessions) as session:
        version = set_params(session, "sma_cross", SYMBOL, {**before, "fast": 5}, "test", "alice")
    assert _scheduled(open_system, {"fast": 5}, version)
    assert engine.strategy.params["fast"] == 5
    assert hook.loop.adjuster.baseline("sma_cross", SYMBOL)["fast"] == 5
    open_system.app.close()


def test_a_failing_state_store_does_not_undo_an_accepted_change(
    factory: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    hook = build_hook({})
    hook.state = AdaptiveStateStore(factory)
    strategy = Direction(side=1)
    run_adaptive_backtest(strategy, rising(30), symbol=SYMBOL, hook=hook)

    def down(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database down")

    monkeypatch.setattr(hook.state, "save_strategy", down)
    with caplog.at_level(logging.ERROR):
        assert hook.change_params("direction", SYMBOL, {"side": 0}, by="x", ts=T0) is None
    assert strategy.params == {"side": 0}
    assert "saving the adaptive state failed" in caplog.text


def test_a_refused_version_is_replaced_by_the_baseline_in_force(tmp_path: Path) -> None:
    system = _system(tmp_path, test_bars=300)
    assert system.bot is not None
    (engine,) = system.bot.engines.values()
    running = dict(engine.strategy.params)
    with session_scope(system.app.sessions) as session:
        version = set_params(session, "sma_cross", SYMBOL, {**running, "fast": 5}, "", "alice")
    # Nothing traded yet: no recent bars to test it on, so the tester refuses it.
    assert _scheduled(system, {"fast": 5}, version)
    assert engine.strategy.params == running
    with system.app.sessions() as session:
        assert get_active_params(session, "sma_cross", SYMBOL) == running
        last = param_history(session, "sma_cross", SYMBOL)[-1]
    assert (last.version, last.changed_by) == (version + 1, TESTER)
    assert last.reason.startswith(f"v{version} refused: needs 300 recent bars")
    # The version put back comes round again (ConfigSync): in force already, nothing to do.
    assert not _scheduled(system, running, version + 1)

    def refusals() -> int:
        with system.app.sessions() as session:
            query = select(ActionLog).where(ActionLog.action == "regime_refused")
            return len(session.scalars(query).all())

    # The decision is written behind, off the loop: wait for it, then for nothing more.
    deadline = time.monotonic() + 10
    while refusals() == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert refusals() == 1
    with system.app.sessions() as session:
        assert len(param_history(session, "sma_cross", SYMBOL)) == version + 1
    system.app.close()


def test_a_refused_version_already_replaced_is_left_to_the_newer_one(tmp_path: Path) -> None:
    system = _system(tmp_path, test_bars=300)
    assert system.bot is not None
    (engine,) = system.bot.engines.values()
    running = dict(engine.strategy.params)
    with session_scope(system.app.sessions) as session:
        first = set_params(session, "sma_cross", SYMBOL, {**running, "fast": 5}, "", "alice")
        newer = set_params(session, "sma_cross", SYMBOL, {**running, "fast": 6}, "", "bob")
    assert _scheduled(system, {"fast": 5}, first)
    with system.app.sessions() as session:
        assert get_active_params(session, "sma_cross", SYMBOL) == {**running, "fast": 6}
        assert param_history(session, "sma_cross", SYMBOL)[-1].version == newer
    system.app.close()


def test_a_put_back_that_fails_is_logged_and_runs_off_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    system = _system(tmp_path, test_bars=300)
    assert system.bot is not None
    (engine,) = system.bot.engines.values()
    with session_scope(system.app.sessions) as session:
        version = set_params(
            session, "sma_cross", SYMBOL, {**engine.strategy.params, "fast": 5}, "", "alice"
        )
    threads: list[int] = []

    def down(*args: object) -> None:
        threads.append(threading.get_ident())
        raise RuntimeError("database down")

    monkeypatch.setattr(system.control, "_put_back", down)
    with caplog.at_level(logging.ERROR), pytest.raises(RuntimeError, match="database down"):
        _scheduled(system, {"fast": 5}, version)
    assert f"applying parameters v{version} failed" in caplog.text
    # The write ran in a worker thread: neither the scheduler's caller nor the price loop.
    assert threads and threads[0] != threading.get_ident()
    system.app.close()


def test_the_walk_forward_of_a_scheduled_change_runs_off_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The StrategyTester's check runs in a worker thread on a copy of the bars; the change
    it passes is adopted on the loop."""
    system = _system(tmp_path, test_bars=300)
    assert system.bot is not None and system.adaptive is not None
    (engine,) = system.bot.engines.values()
    hook = system.adaptive.hook
    assert hook.tester is not None
    with session_scope(system.app.sessions) as session:
        version = set_params(
            session, "sma_cross", SYMBOL, {**engine.strategy.params, "fast": 5}, "", "alice"
        )
    seen: list[tuple[int, object]] = []

    def check(cls: object, current: object, candidate: object, bars: object, **kw: object) -> None:
        seen.append((threading.get_ident(), bars))

    monkeypatch.setattr(hook.tester, "check", check)
    assert _scheduled(system, {"fast": 5}, version)
    ((thread, bars),) = seen
    assert thread != threading.get_ident()  # not the loop's thread
    assert bars is not None and len(bars) == len(engine.data)  # nothing traded yet: empty
    assert engine.strategy.params["fast"] == 5
    assert hook.loop.adjuster.baseline("sma_cross", SYMBOL)["fast"] == 5
    system.app.close()

"""`sigma up` applies stored parameter versions to the running strategies: with the regime loop
on, a version its StrategyTester refuses is not run, and the baseline in force is stored again
over it, so `strategy_param` (what the API and other processes read) says what really runs."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from sigma.app import App
from sigma.config import load_settings
from sigma.runtime.system import TESTER, System
from sigma.store.db import session_scope
from sigma.store.models import ActionLog
from sigma.store.params import get_active_params, param_history, set_params

SYMBOL = "SYM"


def _system(tmp_path: Path) -> System:
    settings = load_settings(
        database_url=f"sqlite:///{tmp_path / 'sigma.db'}",
        var_dir=str(tmp_path),
        symbols=[SYMBOL],
        live_strategies=["sma_cross"],
        adaptive=True,
        adaptive_test_bars=300,
    )
    system = System(App(settings), ("bot",))
    system.bot = system._bot()
    return system


def test_a_refused_version_is_replaced_by_the_baseline_in_force(tmp_path: Path) -> None:
    system = _system(tmp_path)
    assert system.bot is not None
    (engine,) = system.bot.engines.values()
    running = dict(engine.strategy.params)
    with session_scope(system.app.sessions) as session:
        version = set_params(session, "sma_cross", SYMBOL, {**running, "fast": 5}, "", "alice")
    # Nothing traded yet: no recent bars to test it on, so the tester refuses it.
    system._apply_params("sma_cross", SYMBOL, {"fast": 5}, version)
    assert engine.strategy.params == running
    with system.app.sessions() as session:
        assert get_active_params(session, "sma_cross", SYMBOL) == running
        last = param_history(session, "sma_cross", SYMBOL)[-1]
    assert (last.version, last.changed_by) == (version + 1, TESTER)
    assert last.reason.startswith(f"v{version} refused: needs 300 recent bars")
    # The version put back comes round again (ConfigSync): in force already, nothing to do.
    system._apply_params("sma_cross", SYMBOL, running, version + 1)
    with system.app.sessions() as session:
        refusals = session.scalars(select(ActionLog).where(ActionLog.action == "regime_refused"))
        assert len(refusals.all()) == 1
        assert len(param_history(session, "sma_cross", SYMBOL)) == version + 1
    system.app.close()


def test_a_refused_version_already_replaced_is_left_to_the_newer_one(tmp_path: Path) -> None:
    system = _system(tmp_path)
    assert system.bot is not None
    (engine,) = system.bot.engines.values()
    running = dict(engine.strategy.params)
    with session_scope(system.app.sessions) as session:
        first = set_params(session, "sma_cross", SYMBOL, {**running, "fast": 5}, "", "alice")
        newer = set_params(session, "sma_cross", SYMBOL, {**running, "fast": 6}, "", "bob")
    system._apply_params("sma_cross", SYMBOL, {"fast": 5}, first)
    with system.app.sessions() as session:
        assert get_active_params(session, "sma_cross", SYMBOL) == {**running, "fast": 6}
        assert param_history(session, "sma_cross", SYMBOL)[-1].version == newer
    system.app.close()

"""The live pipeline on the embedded defaults (SQLite, in-process bus): the rows it stores are
the ones the backtest engine produces on the same prices; bad ticks never reach strategies."""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from sigma.domain import Bar
from sigma.regime.state import AdaptiveStateStore
from sigma.runtime.services import Services
from sigma.store import heartbeats
from sigma.store.control import KILL_SWITCH, set_flag
from sigma.store.models import ActionLog, OrderRecord
from tests.runtime.pipeline_helpers import (
    CASH,
    SYMBOL,
    assert_matches_backtest,
    bars,
    make_app,
    run_pipeline,
    running,
    wait_for,
)


async def test_pipeline_stores_what_the_backtest_trades(tmp_path: Path) -> None:
    app = make_app(f"sqlite:///{tmp_path / 'sigma.db'}")
    frame = bars()
    outcome = await run_pipeline(app, frame)
    assert assert_matches_backtest(outcome, app, frame) >= 6
    with app.sessions() as s:
        actions = s.scalars(select(ActionLog.action)).all()
    assert actions.count("order_sent") == len(outcome.orders)
    # What the operator's dashboards read.
    bot, metric = outcome.system.bot, outcome.system.metrics.registry.get_sample_value
    assert bot is not None
    signals = sum(
        sample.value
        for family in outcome.system.metrics.registry.collect()
        for sample in family.samples
        if sample.name == "sigma_signals_total"
    )
    assert signals == bot.counters.orders_sent + bot.counters.orders_rejected
    assert metric("sigma_bot_ticks_total") == bot.counters.ticks > 0
    assert metric("sigma_bot_orders_sent_total") == len(outcome.orders)
    assert metric("sigma_order_to_fill_seconds_count") == len(outcome.fills)
    equity = metric("sigma_equity", {"account": "paper"}) or 0
    assert equity > 0
    # Every (strategy, symbol) account opened with CASH; the gauges are set together.
    capital = float(CASH) * len(bot.engines)
    assert metric("sigma_pnl", {"account": "paper"}) == pytest.approx(equity - capital)
    assert 0 <= (metric("sigma_drawdown_pct") or 0) < 100
    app.close()


async def test_bad_messages_are_dropped_and_change_nothing(tmp_path: Path) -> None:
    app = make_app(f"sqlite:///{tmp_path / 'sigma.db'}")
    frame = bars()
    bad = [
        b"{not json",
        b'{"symbol": "XYZ", "price": "NaN", "ts": "2026-01-01T00:00:00Z"}',
        b'{"symbol": "XYZ", "price": "-5", "ts": "2026-01-01T00:00:00Z"}',
        b'{"symbol": "UNKNOWN", "price": "5", "ts": "2026-01-01T00:00:00Z"}',
    ]
    outcome = await run_pipeline(app, frame, raw_messages=bad)
    assert_matches_backtest(outcome, app, frame)
    metric = outcome.system.metrics.registry.get_sample_value
    assert metric("sigma_ticks_rejected_total", {"reason": "json"}) == 1
    assert metric("sigma_ticks_rejected_total", {"reason": "price"}) == 2
    app.close()


async def test_kill_switch_stops_every_order(tmp_path: Path) -> None:
    app = make_app(f"sqlite:///{tmp_path / 'sigma.db'}")
    with app.sessions.begin() as s:
        set_flag(s, KILL_SWITCH, True, reason="test", changed_by="pytest")
    outcome = await run_pipeline(app, bars(300))
    bot = outcome.system.bot
    assert bot is not None and bot.counters.orders_sent == 0
    assert bot.counters.orders_rejected > 0
    with app.sessions() as s:
        assert s.scalars(select(OrderRecord)).all() == []
        reasons = [a.details.get("reason") for a in s.scalars(select(ActionLog))]
    assert "kill switch is on: trading halted" in reasons
    app.close()


def test_unknown_component_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown component"):
        Services(make_app(f"sqlite:///{tmp_path / 'x.db'}"), ["bot", "dashboard"])


def test_the_api_component_is_handed_its_server(tmp_path: Path) -> None:
    """The API sits above the runtime (its routes call it): a Services is given the server."""
    with pytest.raises(ValueError, match="the api component needs `serve_api`"):
        Services(make_app(f"sqlite:///{tmp_path / 'x.db'}"), ["bot", "api"])


def test_regime_changes_reach_the_regime_gauge(tmp_path: Path) -> None:
    app = make_app(f"sqlite:///{tmp_path / 'sigma.db'}", adaptive=True)
    system = Services(app, components=("bot",))
    hook = system._adaptive_hook()
    at = datetime(2024, 1, 1, tzinfo=UTC)
    hook.loop.detector.force_high_vol(SYMBOL, at + timedelta(days=1), "test: forced")
    price = Decimal(100)
    hook.on_bar(SYMBOL, Bar(SYMBOL, at, price, price, price, price, Decimal(1)))
    metric = system.metrics.registry.get_sample_value
    assert metric("sigma_regime", {"symbol": SYMBOL, "regime": "high_vol"}) == 1
    app.close()


async def test_a_running_worker_beats_into_the_database_and_a_stopped_one_leaves(
    tmp_path: Path,
) -> None:
    app = make_app(f"sqlite:///{tmp_path / 'sigma.db'}", worker_name="worker-7")

    def named() -> list[str]:
        with app.sessions() as s:
            return [b.name for b in heartbeats.beats(s)]

    async with running(Services(app, components=("worker",))):
        await wait_for(lambda: named() == ["worker-7"], what="the worker's heartbeat row")
        with app.sessions() as s:
            (beat,) = heartbeats.beats(s)
        assert (beat.host, beat.pid) == (socket.gethostname(), os.getpid())
    assert named() == []  # stopped in order: gone on purpose, not silent
    app.close()


@pytest.mark.parametrize(("components", "warmed"), [(("bot",), True), (("worker",), False)])
async def test_compiled_indicators_are_ready_before_a_trading_component_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, components: tuple[str, ...], warmed: bool
) -> None:
    """The first RSI of a process loads numba's code (0.1-0.4 s): a bot does it at start,
    not on its first bar; a worker, which runs no strategy, does not pay for it."""
    seen: list[bool] = []
    app = make_app(f"sqlite:///{tmp_path / 'sigma.db'}")
    system = Services(app, components=components)
    monkeypatch.setattr(
        "sigma.strategies.indicators.warm_up", lambda: seen.append(system.ready.is_set())
    )
    async with running(system):
        pass
    assert seen == ([False] if warmed else [])
    app.close()


async def test_a_stopped_system_has_finished_the_adaptive_state_writes(tmp_path: Path) -> None:
    app = make_app(f"sqlite:///{tmp_path / 'sigma.db'}", adaptive=True)
    async with running(Services(app, components=("bot",))) as system:
        assert system.adaptive is not None
        state = system.adaptive.hook.state
        assert state is not None
        state.save_detector(SYMBOL, 7)  # queued behind the price loop
    assert AdaptiveStateStore(app.sessions).load_detector(SYMBOL) == 7
    with pytest.raises(RuntimeError):  # closed: nothing is left queued, nothing can be
        state.save_detector(SYMBOL, 8)
    app.close()

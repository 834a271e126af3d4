"""The hook on real engines: audit trail in the database, backtest = bar-by-bar parity,
sinks, the on/off comparison and the CLI."""

from __future__ import annotations

import itertools
import logging
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sigma.engine.engine import Cancelled, Engine, EngineConfig, empty_data
from sigma.feeds.synthetic import generate_bars
from sigma.regime.adjuster import ParamUpdate
from sigma.regime.backtest import (
    AdaptiveComparison,
    PausingEngine,
    build_hook,
    compare_adaptive,
    run_adaptive_backtest,
)
from sigma.regime.detector import Regime, frame_bars
from sigma.regime.feedback import QualityConfig
from sigma.regime.hook import AdaptiveHook
from sigma.regime.loop import LoopDecision
from sigma.regime.news import NewsHandler, NewsItem
from sigma.regime.presets import BUILTIN_PRESETS, fit_presets
from sigma.regime.sinks import AlertSink, StoreSink
from sigma.store.db import session_scope
from sigma.store.models import ActionLog
from sigma.store.params import get_active_params, param_history, set_params
from sigma.strategies.base import Strategy
from sigma.strategies.builtin import SmaCross
from tests.regime.conftest import T0

SYMBOL = "SYN"


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return generate_bars(4_000, seed=7)[0]


# Strict grading and a short time out: on these bars sma_cross is throttled, disabled, and
# reinstated by probation (to throttle, then to keep) several times.
PROBATION = QualityConfig(
    probation_bars=150, window=10, disable_below=-0.002, throttle_below=-0.0005
)
GRADINGS = pytest.mark.parametrize("quality", [None, PROBATION], ids=["default", "probation"])


def _reinstated(decisions: list[LoopDecision]) -> set[str]:
    """The statuses probation reinstated strategies to."""
    return {str(d.details["status"]) for d in decisions if d.kind == "reinstate"}


def _key(u: ParamUpdate) -> tuple[Any, ...]:
    return (u.strategy, u.symbol, u.ts, u.kind, u.old, u.new, u.reason, u.changed_by)


def test_full_loop_stores_every_change_with_its_audit_row(
    bars: pd.DataFrame, factory: sessionmaker[Session]
) -> None:
    hook = build_hook(BUILTIN_PRESETS)
    hook.sinks.append(StoreSink(factory, mode="paper"))
    strategy = SmaCross()
    run = run_adaptive_backtest(strategy, bars, symbol=SYMBOL, hook=hook)
    assert len(run.updates) >= 5
    assert {u.kind for u in run.updates} == {"adjust", "rollback"}
    assert strategy.params == run.updates[-1].new  # the running strategy follows
    assert run.result.params == run.updates[-1].new
    assert len(run.regimes) == len(bars) and set(run.regimes) >= {"trend_up", "range"}
    with session_scope(factory) as session:
        history = param_history(session, "sma_cross", SYMBOL)
        active = get_active_params(session, "sma_cross", SYMBOL)
        actions = list(session.scalars(select(ActionLog).order_by(ActionLog.id)))
    assert history[0].old is None and history[0].new == SmaCross().params
    assert "baseline" in history[0].reason
    assert [(h.old, h.new, h.reason, h.changed_by) for h in history[1:]] == [
        (u.old, u.new, u.reason, u.changed_by) for u in run.updates
    ]
    assert [h.version for h in history] == list(range(1, len(run.updates) + 2))
    assert active == run.updates[-1].new
    assert [(a.action, a.symbol, a.strategy) for a in actions] == [
        (f"regime_{d.kind}", d.symbol, d.strategy) for d in run.decisions
    ]
    assert all(a.source == "regime" and a.mode == "paper" for a in actions)
    assert actions[0].details["reason"]


@GRADINGS
def test_backtest_and_bar_by_bar_runs_decide_the_same(
    bars: pd.DataFrame, quality: QualityConfig | None
) -> None:
    batch_hook = build_hook(BUILTIN_PRESETS, quality=quality)
    batch = run_adaptive_backtest(SmaCross(), bars, symbol=SYMBOL, hook=batch_hook)

    live_hook = build_hook(BUILTIN_PRESETS, quality=quality)
    # Paper: bars one at a time on an engine that asks the same hook before adding exposure.
    engine = PausingEngine(SmaCross(), SYMBOL, empty_data(), EngineConfig(), live_hook.entry_pause)
    live_hook.attach(engine)
    live_updates = []
    for bar in frame_bars(bars, SYMBOL):
        engine.on_bar(bar)  # paper/live: bars arrive one at a time
        live_updates.extend(live_hook.on_bar(SYMBOL, bar))

    assert [_key(u) for u in live_updates] == [_key(u) for u in batch.updates]
    assert list(live_hook.decisions) == batch.decisions
    assert [(t.entry_ts, t.exit_ts, t.pnl) for t in engine.trades] == [
        (t.entry_ts, t.exit_ts, t.pnl) for t in batch.result.trades
    ]
    assert any(d.kind == "rollback" for d in batch.decisions)
    assert live_hook.status == batch_hook.status
    if quality is PROBATION:
        assert _reinstated(batch.decisions) == {"throttle", "keep"}
        assert {"disable", "throttle"} <= {d.kind for d in batch.decisions}


class _Recorder:
    def __init__(self) -> None:
        self.updates: list[ParamUpdate] = []
        self.decisions: list[LoopDecision] = []

    def on_update(self, update: ParamUpdate) -> None:
        self.updates.append(update)

    def on_decision(self, decision: LoopDecision) -> None:
        self.decisions.append(decision)


class _Broken:
    def on_update(self, update: ParamUpdate) -> None:
        raise RuntimeError("database down")

    def on_decision(self, decision: LoopDecision) -> None:
        raise RuntimeError("database down")


def test_a_failing_sink_never_stops_the_loop(
    bars: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = _Recorder()
    hook = build_hook(BUILTIN_PRESETS, shadow=False)
    hook.sinks.extend([_Broken(), recorder])
    with caplog.at_level(logging.INFO, logger="sigma.regime"):
        run = run_adaptive_backtest(SmaCross(), bars.iloc[:1500], symbol=SYMBOL, hook=hook)
    assert recorder.updates == run.updates and recorder.decisions == run.decisions
    assert "adaptive sink _Broken failed" in caplog.text
    # Every decision is logged too, whatever the sinks do.
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("regime ")]
    assert run.decisions and logged == [
        f"regime {d.kind} {d.strategy + ' ' if d.strategy else ''}{d.symbol}: {d.reason}"
        for d in run.decisions
    ]
    # Without a shadow there is no counterfactual, so nothing is ever rolled back.
    assert all(u.kind == "adjust" for u in run.updates)


class _Notifier:
    def __init__(self, running: bool) -> None:
        self.running = running
        self.alerts: list[Any] = []

    def submit(self, alert: Any) -> None:
        if not self.running:
            raise RuntimeError("no running event loop")
        self.alerts.append(alert)


def test_alert_sink_raises_what_needs_an_operator(caplog: pytest.LogCaptureFixture) -> None:
    notifier = _Notifier(running=True)
    sink = AlertSink(notifier)  # type: ignore[arg-type]
    sink.on_update(ParamUpdate("s", "X", T0, Regime.RANGE, {}, {}, "r", "me"))
    sink.on_decision(LoopDecision("regime_change", "X", T0, "why"))
    sink.on_decision(LoopDecision("disable", "X", T0, "losing", "s", {"score": -0.01}))
    sink.on_decision(LoopDecision("news_halt", "X", T0, "hacked"))
    sink.on_decision(LoopDecision("detector_tuned", "X", T0, "stickier", "s"))
    sink.on_decision(LoopDecision("refused", "X", T0, "refused: passed 0 of 3", "s"))
    assert [(a.severity, a.dedupe_key) for a in notifier.alerts] == [
        ("error", "regime_disable:s:X"),
        ("warning", "regime_news_halt:None:X"),
        ("info", "regime_detector_tuned:s:X"),
        ("info", "regime_refused:s:X"),
    ]
    assert notifier.alerts[0].message == "disable s X: losing"
    with caplog.at_level(logging.WARNING):
        AlertSink(_Notifier(running=False)).on_decision(  # type: ignore[arg-type]
            LoopDecision("rollback", "X", T0, "worse")
        )
    assert "alert not sent" in caplog.text


def test_store_sink_keeps_an_existing_history(factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as session:
        set_params(session, "toy", "X", {"fast": 10}, "operator", "alice")
    update = ParamUpdate("toy", "X", T0, Regime.RANGE, {"fast": 10}, {"fast": 12}, "range", "me")
    StoreSink(factory).on_update(update)
    with session_scope(factory) as session:
        history = param_history(session, "toy", "X")
    assert [(h.changed_by, h.new) for h in history] == [
        ("alice", {"fast": 10}),
        ("me", {"fast": 12}),
    ]


def test_hook_status_news_and_commentary(bars: pd.DataFrame) -> None:
    news = NewsHandler()
    first = bars.index[300].to_pydatetime()
    news.ingest(NewsItem(first, "SYN exchange hacked, fraud", symbols=(SYMBOL,)))
    hook = build_hook(BUILTIN_PRESETS, news=news)
    assert hook.note(SYMBOL) == "SYN: no bars seen yet."
    run_adaptive_backtest(SmaCross(), bars.iloc[:400], symbol=SYMBOL, hook=hook)
    assert hook.entries_halted(SYMBOL, first + timedelta(minutes=5))
    assert not hook.entries_halted(SYMBOL, first + timedelta(hours=3))
    assert any(d.kind == "news_halt" for d in hook.decisions)
    note = hook.note(SYMBOL)
    assert note.startswith("SYN is volatile") and "New entries are halted." in note
    assert "(news override, 100%)" in note
    assert hook.status[("sma_cross", SYMBOL)] in {"keep", "throttle", "disable"}
    assert not build_hook({}).entries_halted(SYMBOL, first)


def test_hook_follows_throttle_restore_reinstate_and_enable() -> None:
    hook = AdaptiveHook(build_hook({}).loop)
    hook.status[("s", "X")] = "keep"

    def publish(*decisions: LoopDecision) -> None:
        step = SimpleNamespace(updates=[], decisions=list(decisions), state=SimpleNamespace(ts=T0))
        hook._publish(step)  # type: ignore[arg-type]

    publish(
        LoopDecision("throttle", "X", T0, "bad", "s"), LoopDecision("regime_change", "X", T0, "x")
    )
    assert hook.status[("s", "X")] == "throttle"
    publish(LoopDecision("restore", "X", T0, "ok", "s"))
    assert hook.status[("s", "X")] == "keep"
    publish(LoopDecision("disable", "X", T0, "bad", "s"))
    publish(LoopDecision("reinstate", "X", T0, "shadow ok", "s", {"status": "throttle"}))
    assert hook.status[("s", "X")] == "throttle"
    publish(LoopDecision("enable", "X", T0, "operator", "s", {"status": "keep"}))
    assert hook.status[("s", "X")] == "keep"


def test_backtest_guards_progress_and_cancel(bars: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="no bars"):
        run_adaptive_backtest(SmaCross(), bars.iloc[:0], symbol=SYMBOL, hook=build_hook({}))
    seen: list[tuple[int, int]] = []
    run_adaptive_backtest(
        SmaCross(),
        bars.iloc[:300],
        symbol=SYMBOL,
        hook=build_hook({}),
        progress=lambda i, n: seen.append((i, n)),
        progress_every=100,
    )
    assert seen == [(0, 300), (100, 300), (200, 300), (300, 300)]
    import threading

    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled, match="bar 0"):
        run_adaptive_backtest(
            SmaCross(), bars.iloc[:300], symbol=SYMBOL, hook=build_hook({}), cancel=cancel
        )


def test_compare_adaptive_reports_both_sides(bars: pd.DataFrame) -> None:
    result = compare_adaptive(SmaCross, bars.iloc[:2000], symbol=SYMBOL, presets=BUILTIN_PRESETS)
    labels = [r[0] for r in result.rows]
    assert labels == [
        "return %",
        "max drawdown %",
        "sharpe",
        "trades",
        "win rate %",
        "parameter changes",
        "entries held",
    ]
    assert result.rows[-2] == ("parameter changes", 0, len(result.on.updates))
    assert result.rows[-1] == ("entries held", 0, len(result.on.held))
    assert result.verdict().startswith("adaptive on vs off: return ")


def _comparison(off: tuple[float, float], on: tuple[float, float]) -> AdaptiveComparison:
    def stats(ret: float, dd: float) -> dict[str, Any]:
        return {
            "total_return_pct": ret,
            "max_drawdown_pct": dd,
            "sharpe": 1.0,
            "n_trades": 1,
            "win_rate_pct": 50.0,
        }

    run = SimpleNamespace(result=SimpleNamespace(stats=stats(*on)), updates=[], held=[])
    return AdaptiveComparison(SimpleNamespace(stats=stats(*off)), run)  # type: ignore[arg-type]


def test_verdict_is_honest_in_every_case() -> None:
    helped = _comparison((1, -5), (2, -4)).verdict()
    assert helped == (
        "adaptive on vs off: return +1.00 pp, max drawdown +1.00 pp, sharpe 1.00 -> 1.00"
        " - it helped on these bars"
    )
    assert "helped" in _comparison((1, -5), (2, -5.05)).verdict()  # same drawdown, better return
    assert "did not help" in _comparison((2, -4), (1, -5)).verdict()
    assert "mixed: better return, deeper drawdown" in _comparison((1, -4), (2, -5)).verdict()
    assert "mixed: worse return, shallower drawdown" in _comparison((2, -5), (1, -4)).verdict()
    assert "no material difference" in _comparison((2, -5), (2.05, -5)).verdict()
    flat = _comparison((0, 0), (0, 0))
    flat.off.stats["sharpe"] = None
    assert "sharpe n/a -> 1.00" in flat.verdict()


def test_fit_presets_picks_per_regime_winners(bars: pd.DataFrame) -> None:
    candidates = [{"fast": 5, "slow": 15}, {"fast": 30, "slow": 90}]
    presets = fit_presets(SmaCross, bars.iloc[:2500], candidates, symbol=SYMBOL)
    assert presets  # at least one regime where a candidate beat the defaults
    assert all(p in candidates for p in presets.values())
    assert set(presets) <= {Regime.TREND_UP, Regime.TREND_DOWN, Regime.RANGE, Regime.HIGH_VOL}


def test_live_shadow_memory_is_bounded(bars: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    import sigma.regime.shadow as shadow_module

    monkeypatch.setattr(shadow_module, "MAX_BARS", 200)
    monkeypatch.setattr(shadow_module, "MAX_RECORDS", 3)
    hook = build_hook({"sma_cross": {}})
    engine = Engine(SmaCross(), SYMBOL, empty_data(), EngineConfig())
    hook.attach(engine)
    for bar in frame_bars(bars.iloc[:1200], SYMBOL):
        engine.on_bar(bar)
        hook.on_bar(SYMBOL, bar)
    twin = hook.bindings.on(SYMBOL)[0].shadow
    assert twin is not None
    assert len(twin.data) <= 400 and len(twin.trades) <= 6
    # Trimming never re-reports trades: the shadow's trades equal the real ones (same params).
    baseline = [
        o for o in hook.loop.feedback._by_key.values() for o in o if o.variant == "baseline"
    ]
    assert len(baseline) == len(engine.trades)


@GRADINGS
def test_live_engine_with_the_hook_decides_like_the_backtest(
    bars: pd.DataFrame, quality: QualityConfig | None
) -> None:
    """The bot's path: DispatchEngine sends orders through the bot's own adaptive check (held
    orders are rejected), the worker's fills arrive while the next bar is processed, the hook
    runs after each closed bar."""
    from decimal import Decimal

    from sigma.domain import Fill, Order
    from sigma.engine.live import DispatchEngine
    from sigma.runtime.bot import TradingBot, account_state

    frame = bars.iloc[:2500]
    batch = run_adaptive_backtest(
        SmaCross(),
        frame.iloc[:-1],
        symbol=SYMBOL,
        hook=build_hook(BUILTIN_PRESETS, quality=quality),
    )
    sent: list[Order] = []
    held: list[str] = []

    def dispatch(order: Order, _ref: Decimal) -> None:
        bot = SimpleNamespace(adaptive=hook, stopped={})
        reason = TradingBot._entry_pause(bot, order, account_state(engine, order))  # type: ignore[arg-type]
        if reason:
            held.append(reason)
            engine.on_rejected(order.client_order_id, reason)
        else:
            sent.append(order)

    engine = DispatchEngine(SmaCross(), SYMBOL, EngineConfig(), dispatch)
    hook = build_hook(BUILTIN_PRESETS, quality=quality)
    hook.attach(engine)
    live_updates: list[ParamUpdate] = []
    all_bars = list(frame_bars(frame, SYMBOL))
    pending: list[Fill] = []
    for bar, following in itertools.pairwise(all_bars):
        for fill in pending:  # the worker reports fills of the previous bar's orders
            engine.on_fill(fill)
        pending.clear()
        engine.on_live_bar(bar, ref_price=following.open)
        for order in sent:
            assert order.qty is not None
            pending.append(
                Fill(
                    order.client_order_id,
                    SYMBOL,
                    order.side,
                    order.qty,
                    following.open,
                    Decimal(0),
                    following.ts,
                    order.strategy,
                )
            )
        sent.clear()
        live_updates.extend(hook.on_bar(SYMBOL, bar))
    assert [_key(u) for u in live_updates] == [_key(u) for u in batch.updates]
    assert list(hook.decisions) == batch.decisions
    assert [(t.entry_ts, t.pnl) for t in engine.trades] == [
        (t.entry_ts, t.pnl) for t in batch.result.trades
    ]
    assert len(batch.updates) > 3
    # The same entries were held live and in the backtest, for the same reasons.
    assert held == [h.reason for h in batch.held] and held
    if quality is PROBATION:
        assert _reinstated(batch.decisions) == {"throttle", "keep"}
        assert any(
            h.kind == "regime loop disabled this strategy on this symbol" for h in batch.held
        )


def test_entry_pause_disables_throttles_and_halts(bars: pd.DataFrame) -> None:
    news = NewsHandler()
    hook = build_hook({}, news=news)
    hook.throttle_bars = 3
    engine = Engine(SmaCross(), SYMBOL, empty_data(), EngineConfig())
    hook.attach(engine)
    feed = iter(frame_bars(bars, SYMBOL))

    def step() -> datetime:
        bar = next(feed)
        engine.on_bar(bar)
        hook.on_bar(SYMBOL, bar)
        return bar.ts

    ts = step()
    assert hook.entry_pause("sma_cross", SYMBOL, ts) == ""
    hook.status[("sma_cross", SYMBOL)] = "throttle"
    assert hook.entry_pause("sma_cross", SYMBOL, ts) == ""  # the throttled slot is used here
    waits = []
    for _ in range(3):
        ts = step()
        waits.append(hook.entry_pause("sma_cross", SYMBOL, ts))
    assert waits[0].endswith("one new entry per 3 bars, next in 2")
    assert waits[1].endswith("next in 1") and waits[2] == ""
    hook.status[("sma_cross", SYMBOL)] = "disable"
    assert hook.entry_pause("sma_cross", SYMBOL, ts) == (
        "regime loop disabled this strategy on this symbol"
    )
    hook.status[("sma_cross", SYMBOL)] = "keep"
    news.ingest(NewsItem(ts, "SYN exchange hacked, fraud", symbols=(SYMBOL,)))
    assert hook.entry_pause("sma_cross", SYMBOL, ts) == "news halt: no new entries"
    with pytest.raises(ValueError, match="throttle_bars"):
        AdaptiveHook(hook.loop, throttle_bars=0)


class _Forced(AdaptiveHook):
    """A hook whose strategies start in a given status (as if the loop had decided it)."""

    def __init__(self, status: str, throttle_bars: int = 20) -> None:
        super().__init__(build_hook({}, shadow=False).loop, throttle_bars=throttle_bars)
        self.forced = status

    def attach(self, engine: Engine) -> None:
        super().attach(engine)
        self.status[(engine.strategy.name, engine.symbol)] = self.forced


def _entries(run: Any) -> int:
    """Positions opened: the round trips closed plus the one still open."""
    return len(run.result.trades) + (run.result.final_position != 0)


def test_disabled_and_throttled_strategies_enter_less_in_the_backtest(
    bars: pd.DataFrame,
) -> None:
    frame = bars.iloc[:1500]

    def run(status: str) -> Any:
        strategy = SmaCross(fast=5, slow=20)
        return run_adaptive_backtest(strategy, frame, symbol=SYMBOL, hook=_Forced(status, 100))

    free, throttled, disabled = run("keep"), run("throttle"), run("disable")
    assert free.held == [] and _entries(free) > 20
    # Throttled: at most one entry per 100 bars, the rest held with the hook's reason.
    assert 0 < _entries(throttled) <= len(frame) // 100 + 1 < _entries(free)
    assert throttled.held_by_reason() == {
        "regime loop throttled this strategy": len(throttled.held)
    }
    assert all("one new entry per 100 bars" in h.reason for h in throttled.held)
    # Disabled: nothing opens, every attempt is recorded.
    assert _entries(disabled) == 0 and disabled.result.stats["n_trades"] == 0
    assert disabled.held_by_reason() == {
        "regime loop disabled this strategy on this symbol": len(disabled.held)
    }
    assert len(disabled.held) > 20
    assert {h.strategy for h in disabled.held} == {"sma_cross"}


def test_a_news_halt_holds_entries_in_the_backtest(bars: pd.DataFrame) -> None:
    frame = bars.iloc[:600]
    news = NewsHandler()
    news.ingest(
        NewsItem(frame.index[200].to_pydatetime(), "SYN exchange hacked, fraud", symbols=(SYMBOL,))
    )
    run = run_adaptive_backtest(
        SmaCross(fast=5, slow=20),
        frame,
        symbol=SYMBOL,
        hook=build_hook({}, shadow=False, news=news),
    )
    assert run.held and set(run.held_by_reason()) == {"news halt"}
    assert min(h.ts for h in run.held) >= frame.index[200]


class _Script(Strategy):
    """Buys 2 on bar 1, sells 1 on bar 3, buys 1 on bar 5, reverses short on bar 7, closes
    on bar 9."""

    name = "script"

    def on_bar(self) -> None:
        i = self.bar_index
        if i == 1:
            self.buy(2)
        elif i == 3:
            self.sell(1)  # reduces: never the loop's business
        elif i == 5:
            self.buy(1)  # adds exposure
        elif i == 7:
            self.go_short()  # a close (never held) and a new entry
        elif i == 9:
            self.close()


def test_orders_that_reduce_exposure_are_never_held(bars: pd.DataFrame) -> None:
    hook = build_hook({}, shadow=False)
    asked: list[int] = []

    def pause(strategy: str, symbol: str, ts: datetime) -> str:
        asked.append(engine.strategy.bar_index)
        return hook.entry_pause(strategy, symbol, ts)

    engine = PausingEngine(_Script(), SYMBOL, empty_data(), EngineConfig(), pause)
    hook.attach(engine)
    for i, bar in enumerate(frame_bars(bars.iloc[:12], SYMBOL)):
        if i == 2:  # disabled while long 2
            hook.status[("script", SYMBOL)] = "disable"
        engine.on_bar(bar)
        hook.on_bar(SYMBOL, bar)
    # Only the orders adding exposure asked; the partial sell and the closes went through.
    assert asked == [1, 5, 7]
    assert [h.side for h in engine.held] == ["buy", "sell"]
    assert all(h.reason == "regime loop disabled this strategy on this symbol" for h in engine.held)
    filled = [(o.side.value, o.reduce_only) for o in engine.orders if o.status.value == "filled"]
    assert filled == [("buy", False), ("sell", False), ("sell", True)]
    assert engine.position_qty(SYMBOL) == 0

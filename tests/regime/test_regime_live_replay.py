"""The whole adaptive loop on the live path: a synthetic regime-switching market written to a
CSV file, read back and replayed tick by tick through the `TradingBot`, with the adaptive layer
`sigma up` builds (`build_live_adaptive`: store and alert sinks, state store, walk-forward
gate). The broker fills every order 5 basis points worse than the price it was decided at,
which the paper model of the baseline shadow does not charge: the feedback loop must see it."""

from __future__ import annotations

import statistics
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from sigma.config import Settings
from sigma.domain import Tick
from sigma.engine.engine import EngineConfig
from sigma.feeds.loaders import load_bars
from sigma.feeds.synthetic import generate_bars
from sigma.feeds.writers import write_csv
from sigma.notify.channels import LogChannel
from sigma.notify.service import NotificationService
from sigma.notify.store import AlertStore
from sigma.regime.live import build_live_adaptive
from sigma.risk.limits import RiskLimits, RiskManager
from sigma.runtime.bot import TradingBot
from sigma.store.db import init_db, session_factory, session_scope
from sigma.store.models import ActionLog, AlertLog, RegimeTrade
from sigma.store.params import get_active_params, param_history
from sigma.strategies.builtin import SmaCross
from tests.runtime.bot_helpers import Sent

SYMBOL = "SYN"
BARS = 2_400
BROKER_SLIPPAGE = Decimal("0.0005")
# Where in each one-minute bar its four prices arrive (the bar closes on the next bar's open).
_OFFSETS = (0, 15, 30, 45)
# Every decision but a plain regime change is alerted.
ALERTED = {
    "rollback",
    "throttle",
    "disable",
    "news_halt",
    "detector_tuned",
    "restore",
    "reinstate",
    "enable",
    "refused",
}


async def test_a_replayed_market_through_the_bot_tunes_and_audits_every_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_csv(generate_bars(BARS, seed=7)[0], tmp_path / "syn.csv")
    bars = load_bars(str(path), symbol=SYMBOL)
    engine = init_db(f"sqlite:///{tmp_path / 'sigma.db'}")
    sessions = session_factory(engine)
    notifier = NotificationService(store=AlertStore(sessions))
    notifier.add_channel(LogChannel())
    monkeypatch.setenv("SIGMA_ADAPTIVE_TEST_BARS", "600")
    adaptive = build_live_adaptive(Settings(), sessions, notifier)
    hook = adaptive.hook
    strategy = SmaCross()
    bot = TradingBot(
        [(strategy, SYMBOL)],
        timeframe=timedelta(minutes=1),
        config=EngineConfig(initial_cash=Decimal(10_000)),
        risk=RiskManager(RiskLimits()),
        executor=Sent(),
        decode=lambda raw: None,
        adaptive=hook,
    )
    (live,) = bot.engines.values()
    for ts, row in bars.iterrows():
        prices = (row["open"], row["high"], row["low"], row["close"])
        for offset, price in zip(_OFFSETS, prices, strict=True):
            tick_ts = ts.to_pydatetime() + timedelta(seconds=offset)
            qty = Decimal(repr(float(row["volume"]) / len(prices)))
            await bot.on_tick(Tick(SYMBOL, tick_ts, Decimal(repr(float(price))), qty))
            await bot.drain()
            # The broker fills at this tick, before the next one, a little worse than decided.
            for fill in list(live.inflight.values()):
                worse = fill.price * (1 + fill.side.sign * BROKER_SLIPPAGE)
                live.on_fill(replace(fill, price=worse, ts=tick_ts))
    await notifier.aclose()

    updates, decisions = list(hook.updates), list(hook.decisions)
    kinds = {d.kind for d in decisions}
    assert {u.kind for u in updates} == {"adjust", "rollback"}
    assert {u.changed_by for u in updates} == {"regime.adjuster", "regime.feedback"}
    # Adjusting hurt somewhere: rolled back, and the detector made stickier.
    assert {"regime_change", "refused", "rollback", "detector_tuned"} <= kinds
    # The walk-forward gate had no 600 bars to test on at first: nothing changed before.
    assert all(u.ts >= bars.index[599] for u in updates if u.kind == "adjust")
    assert strategy.params == updates[-1].new  # the running strategy follows
    # Throttled, then reinstated on its shadow's paper record once the time out was over.
    (out,) = [d for d in decisions if d.kind == "throttle"]
    (back,) = [d for d in decisions if d.kind == "reinstate"]
    assert back.ts == out.ts + timedelta(minutes=Settings().regime.adaptive_probation_bars)
    assert back.details == {
        "status": "keep",
        "was": "throttle",
        "by": "regime.probation",
        "score": pytest.approx(0.00114, abs=1e-5),
    }
    assert hook.status[("sma_cross", SYMBOL)] == "keep"
    with session_scope(sessions) as session:
        history = param_history(session, "sma_cross", SYMBOL)
        active = get_active_params(session, "sma_cross", SYMBOL)
        actions = list(session.scalars(select(ActionLog).order_by(ActionLog.id)))
        alerts = list(session.scalars(select(AlertLog).order_by(AlertLog.id)))
        trades = list(session.scalars(select(RegimeTrade)))
    # One audit row per change (old, new, why, who), after the baseline the strategy ran.
    assert history[0].old is None and history[0].new == SmaCross().params
    assert [(h.old, h.new, h.reason, h.changed_by) for h in history[1:]] == [
        (u.old, u.new, u.reason, u.changed_by) for u in updates
    ]
    assert active == updates[-1].new
    assert [(a.action, a.strategy, a.details["reason"]) for a in actions] == [
        (f"regime_{d.kind}", d.strategy, d.reason) for d in decisions
    ]
    assert all(a.mode == "paper" for a in actions)
    # Every decision an operator must hear about reached the alert log, once per key with the
    # repeats counted on its row.
    alerted = [d for d in decisions if d.kind in ALERTED]
    assert alerted and sum(a.seen for a in alerts) == len(alerted)
    assert {a.dedupe_key for a in alerts} == {
        f"regime_{d.kind}:{d.strategy}:{d.symbol}" for d in alerted
    }
    # Realised against expected: real fills cost the broker's 5 bps twice per round trip, the
    # shadow's paper fills nothing.
    real = [t.slippage for t in trades if t.variant != "baseline" and t.slippage is not None]
    shadow = [t.slippage for t in trades if t.variant == "baseline" and t.slippage is not None]
    assert real and shadow
    assert statistics.median(real) == pytest.approx(2 * float(BROKER_SLIPPAGE), rel=0.05)
    assert statistics.median(shadow) == pytest.approx(0.0, abs=1e-9)
    grade = hook.loop.quality.grade(hook.loop.feedback, "sma_cross", SYMBOL)
    assert "slippage +0.100% vs +0.000% expected" in grade.reason

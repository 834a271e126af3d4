"""FeedHealth: the rejection-ratio alarm and the entry pause a price the filter does not
believe puts on new positions (issue 23), down to the bot refusing to open one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from sigma.domain import Order, Side, Tick
from sigma.engine.engine import EngineConfig
from sigma.ops.metrics import Metrics
from sigma.risk.anomaly import Verdict
from sigma.risk.feed_health import AlertSink, FeedHealth, HealthChange
from sigma.risk.limits import AccountState, RiskLimits, RiskManager
from sigma.runtime.bot import TradingBot
from sigma.runtime.telemetry import PriceFilterGauges
from sigma.strategies import Strategy
from tests.runtime.bot_helpers import Sent, trade_minutes

T0 = datetime(2026, 3, 2, tzinfo=UTC)
OK = Verdict(True, "ok", 1.0)
BAD = Verdict(False, "zscore", 12.0)
DRIFT = Verdict(True, "ok", 1.0, "drift")


class Recorder:
    """A HealthSink that keeps what it hears."""

    def __init__(self) -> None:
        self.verdicts: list[tuple[str, Verdict, float]] = []
        self.changes: list[HealthChange] = []

    def on_verdict(self, symbol: str, verdict: Verdict, ratio: float) -> None:
        self.verdicts.append((symbol, verdict, ratio))

    def on_change(self, change: HealthChange) -> None:
        self.changes.append(change)


def feed(health: FeedHealth, *verdicts: Verdict, symbol: str = "X") -> None:
    for verdict in verdicts:
        health.record(Tick.of(symbol, T0, 100), verdict)


def test_a_blinded_symbol_pauses_entries_after_min_ticks_and_clears_with_hysteresis() -> None:
    sink = Recorder()
    health = FeedHealth(window=20, min_ticks=10, alarm_ratio=0.2, clear_ratio=0.05, sinks=[sink])
    feed(health, *[BAD] * 9)
    assert health.entry_pause("X") == ""  # not judged before ten ticks
    feed(health, BAD)
    assert "rejected 10 of the last 10 ticks" in health.entry_pause("X")
    assert health.ratio("X") == 1.0
    (change,) = sink.changes
    assert (change.symbol, change.pause, change.previous, change.ratio) == ("X", "blinded", "", 1)
    feed(health, *[OK] * 18)  # the rejections leave the window one by one
    assert health.entry_pause("X") and health.ratio("X") == 2 / 20
    feed(health, OK)
    assert health.entry_pause("X") == "" and health.ratio("X") == 1 / 20
    feed(health, *[OK] * 21)
    assert [c.pause for c in sink.changes] == ["blinded", ""]
    assert sink.changes[-1].message == "X: prices believed again at 100"
    assert len(sink.verdicts) == 50 and sink.verdicts[0] == ("X", BAD, 1.0)


def test_a_ratio_between_the_thresholds_keeps_the_state_it_has() -> None:
    health = FeedHealth(window=20, min_ticks=10, alarm_ratio=0.2, clear_ratio=0.05)
    feed(health, *[OK, OK, OK, OK, OK, OK, OK, OK, OK, BAD] * 2)  # 10 %: under the alarm
    assert health.entry_pause("X") == ""
    feed(health, *[BAD, OK, OK, OK] * 5)  # 25 %: the alarm
    assert health.entry_pause("X")
    for _ in range(3):  # 12.5 %, never under 10 % in a window: still on
        feed(health, *[OK] * 7, BAD)
        assert health.entry_pause("X")
    feed(health, *[OK] * 19, BAD)  # 5 %: off
    assert health.entry_pause("X") == ""


def test_a_doubted_price_pauses_entries_until_a_believed_one() -> None:
    sink = Recorder()
    health = FeedHealth(sinks=[sink])
    feed(health, Verdict(True, "warmup", 0.0, "unconfirmed"))
    assert "first price 100 not yet confirmed" in health.entry_pause("X")
    feed(health, OK, DRIFT, BAD)  # a rejected tick says nothing about the believed price
    assert "drifted too far" in health.entry_pause("X")
    feed(health, OK)
    assert health.entry_pause("X") == ""
    assert [c.pause for c in sink.changes] == ["unconfirmed", "", "drift", ""]
    assert health.entry_pause("Y") == "" and health.ratio("Y") == 0.0  # no verdict: no pause


def test_symbols_are_independent_and_bounded() -> None:
    health = FeedHealth(min_ticks=1, max_symbols=2)
    feed(health, BAD, symbol="A")
    feed(health, OK, symbol="B")
    assert health.entry_pause("A") and not health.entry_pause("B")
    feed(health, OK, symbol="C")  # A is forgotten
    assert health.entry_pause("A") == ""


def test_alerts_on_entering_and_leaving_a_pause_worth_waking_for() -> None:
    alerts: list[tuple[str, str, dict[str, Any]]] = []
    health = FeedHealth(min_ticks=1, sinks=[AlertSink(lambda *a: alerts.append(a))])
    feed(health, Verdict(True, "warmup", 0.0, "unconfirmed"), OK)  # a normal start: silent
    assert alerts == []
    feed(health, BAD)
    feed(health, *[OK] * 60)
    assert [(severity, details["pause"]) for severity, _, details in alerts] == [
        ("warning", "blinded"),
        ("info", ""),
    ]
    assert alerts[0][2] == {"symbol": "X", "pause": "blinded", "ratio": 0.333}
    assert "rejected 1 of the last 3 ticks" in alerts[0][1]


def test_the_metrics_count_rejections_and_follow_the_ratio_and_the_pause() -> None:
    metrics = Metrics()
    health = FeedHealth(min_ticks=2, sinks=[PriceFilterGauges(metrics)])
    feed(health, OK, BAD, Verdict(False, "jump", 50.0))
    value = metrics.registry.get_sample_value
    assert value("sigma_price_filter_rejected_total", {"symbol": "X", "reason": "zscore"}) == 1
    assert value("sigma_price_filter_rejected_total", {"symbol": "X", "reason": "jump"}) == 1
    assert value("sigma_price_filter_rejection_ratio", {"symbol": "X"}) == pytest.approx(2 / 3)
    assert value("sigma_entries_paused", {"symbol": "X"}) == 1
    feed(health, *[OK] * 60)
    assert value("sigma_entries_paused", {"symbol": "X"}) == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_ticks": 0},
        {"window": 5, "min_ticks": 6},
        {"alarm_ratio": 0.1, "clear_ratio": 0.1},
        {"alarm_ratio": 1.5},
    ],
)
def test_rejects_bad_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        FeedHealth(**kwargs)  # type: ignore[arg-type]


# --- the risk check -----------------------------------------------------------------------
def account(qty: str) -> AccountState:
    return AccountState("s:X", Decimal(10_000), Decimal(qty), 0, T0)


def test_the_risk_check_refuses_new_exposure_while_paused_and_lets_a_position_shrink() -> None:
    pause = {"X": "X: not believed"}
    risk = RiskManager(RiskLimits(), entry_pause=lambda symbol: pause.get(symbol, ""))
    buy, sell = Order("X", Side.BUY, qty=Decimal(2)), Order("X", Side.SELL, qty=Decimal(2))
    refused = risk.check(buy, Decimal(100), account("0"))
    assert (refused.accepted, refused.reason, refused.rule) == (
        False,
        "X: not believed",
        "price_feed",
    )
    assert not risk.check(sell, Decimal(100), account("1")).accepted  # flips: new exposure
    assert risk.check(sell, Decimal(100), account("5")).accepted  # reduces
    assert risk.check(Order("Y", Side.BUY, qty=Decimal(2)), Decimal(100), account("0")).accepted
    pause.clear()
    assert risk.check(buy, Decimal(100), account("0")).accepted


class Buyer(Strategy):
    """Buys on every bar."""

    name = "buyer"

    def on_bar(self) -> None:
        self.buy(1)


async def test_the_bot_opens_no_position_on_a_blinded_symbol() -> None:
    health = FeedHealth(min_ticks=1)
    sent, decisions = Sent(), []
    bot = TradingBot(
        [(Buyer(), "X")],
        timeframe=timedelta(minutes=1),
        config=EngineConfig(initial_cash=Decimal(10_000)),
        risk=RiskManager(RiskLimits(max_open_orders=None), entry_pause=health.entry_pause),
        executor=sent,
        decode=lambda raw: None,
        on_decision=lambda kind, info: decisions.append((kind, info.get("reason", ""))),
    )
    feed(health, BAD)
    await trade_minutes(bot, "X", T0, 2)
    assert sent.orders == []
    assert decisions and all(kind == "order_rejected" for kind, _ in decisions)
    assert "the price filter rejected 1 of the last 1 ticks" in decisions[0][1]
    refused = len(decisions)
    feed(health, *[OK] * 40)  # believed again: every bar's buy goes out
    await trade_minutes(bot, "X", T0 + timedelta(minutes=10), 2)
    assert sent.orders and [kind for kind, _ in decisions[refused:]] == ["order_sent"] * len(
        sent.orders
    )

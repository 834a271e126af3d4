"""The metrics and alert bridge: what the components report, as metrics."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from sigma.domain import Tick
from sigma.notify import Alert
from sigma.ops.metrics import Metrics
from sigma.regime.adjuster import ParamUpdate
from sigma.regime.detector import Regime
from sigma.regime.loop import LoopDecision
from sigma.runtime.telemetry import RegimeGauges, Telemetry


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.render().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_regime_sink_follows_regime_changes_only() -> None:
    m = Metrics()
    sink = RegimeGauges(m)
    at = datetime(2024, 1, 1, tzinfo=UTC)
    sink.on_decision(LoopDecision("regime_change", "BTC", at, "why", details={"regime": "range"}))
    sink.on_decision(LoopDecision("throttle", "BTC", at, "losing", strategy="sma"))
    sink.on_update(
        ParamUpdate("sma", "BTC", at, Regime.RANGE, {"fast": 5}, {"fast": 8}, "range", "regime")
    )
    got = samples(m)
    assert {k for k in got if k[0] == "sigma_regime"} == {
        ("sigma_regime", (("regime", "range"), ("symbol", "BTC")))
    }


class Recorded:
    """Stands in for the action log and the notifier: keeps what it is given."""

    def __init__(self) -> None:
        self.actions: list[tuple[str, dict[str, Any]]] = []
        self.alerts: list[tuple[str, str]] = []

    def log(self, action: str, **fields: Any) -> None:
        self.actions.append((action, fields))

    def submit(self, alert: Alert) -> None:
        self.alerts.append((alert.severity, alert.message))

    async def notify(self, severity: str, source: str, message: str, **_: Any) -> None:
        self.alerts.append((severity, message))


def telemetry() -> tuple[Telemetry, Recorded, Metrics]:
    metrics, seen = Metrics(), Recorded()
    return Telemetry(metrics, seen, seen), seen, metrics  # type: ignore[arg-type]


def test_decisions_are_logged_counted_and_a_breaker_refusal_alerts() -> None:
    bridge, seen, metrics = telemetry()
    order = {"strategy": "sma", "symbol": "BTC", "side": "buy"}
    bridge.on_decision("order_sent", order)
    bridge.on_decision("order_rejected", {**order, "reason": "max_open_orders: 5 open"})
    bridge.on_decision("order_rejected", {**order, "reason": "drawdown breaker: 26%"})
    bridge.on_decision("fill", order)
    bridge.tick_rejected("stale")
    got = samples(metrics)
    assert (
        got[
            (
                "sigma_orders_submitted_total",
                (("side", "buy"), ("strategy", "sma"), ("symbol", "BTC")),
            )
        ]
        == 1
    )
    assert got[("sigma_orders_rejected_total", (("reason", "max_open_orders"),))] == 1
    assert got[("sigma_fills_total", (("side", "buy"), ("symbol", "BTC")))] == 1
    assert got[("sigma_ticks_rejected_total", (("reason", "stale"),))] == 1
    assert [a for a, _ in seen.actions] == [
        "order_sent",
        "order_rejected",
        "order_rejected",
        "fill",
    ]
    assert seen.alerts == [("warning", "sma BTC: order refused: drawdown breaker: 26%")]


async def test_a_stale_feed_is_a_gauge_and_an_alert_until_prices_are_back() -> None:
    bridge, seen, metrics = telemetry()
    on_tick, on_stale, on_recovered = bridge.feed_callbacks("ws://market")
    await on_tick(Tick("BTC", datetime(2024, 1, 1, tzinfo=UTC), Decimal(1)))
    await on_stale(31.0)
    assert samples(metrics)[("sigma_feed_stale", ())] == 1
    await on_recovered(40.0)
    assert samples(metrics)[("sigma_feed_stale", ())] == 0
    assert seen.alerts == [
        ("error", "no prices from ws://market for 31s"),
        ("info", "prices back after 40s"),
    ]
    assert samples(metrics)[("sigma_ticks_received_total", (("symbol", "BTC"),))] == 1

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from sigma.ops.metrics import CONTENT_TYPE, LATENCY_BUCKETS, Metrics


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.render().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_counters_gauges_and_histograms_in_exposition() -> None:
    m = Metrics()
    m.ticks_received.labels(symbol="BTCUSDT").inc(3)
    m.ticks_rejected.labels(reason="stale").inc()
    m.signals.labels(strategy="sma", symbol="BTCUSDT", action="buy").inc()
    m.orders_submitted.labels(strategy="sma", symbol="BTCUSDT", side="buy").inc()
    m.orders_rejected.labels(reason="max_position").inc(2)
    m.fills.labels(symbol="BTCUSDT", side="buy").inc()
    m.tick_to_order.observe(0.00008)
    m.tick_to_order.observe(0.003)
    m.order_to_fill.observe(0.2)
    m.queue_depth.labels(queue="orders").set(7)
    m.feed_stale.set(1)
    m.heartbeat("order-worker", now=1_700_000_000.0)
    m.equity.labels(account="paper").set(10_250.5)
    m.drawdown_pct.set(3.25)

    got = samples(m)
    assert got[("sigma_ticks_received_total", (("symbol", "BTCUSDT"),))] == 3
    assert got[("sigma_ticks_rejected_total", (("reason", "stale"),))] == 1
    key = (("action", "buy"), ("strategy", "sma"), ("symbol", "BTCUSDT"))
    assert got[("sigma_signals_total", key)] == 1
    key = (("side", "buy"), ("strategy", "sma"), ("symbol", "BTCUSDT"))
    assert got[("sigma_orders_submitted_total", key)] == 1
    assert got[("sigma_orders_rejected_total", (("reason", "max_position"),))] == 2
    assert got[("sigma_fills_total", (("side", "buy"), ("symbol", "BTCUSDT")))] == 1
    assert got[("sigma_tick_to_order_seconds_bucket", (("le", "0.0001"),))] == 1
    assert got[("sigma_tick_to_order_seconds_bucket", (("le", "0.005"),))] == 2
    assert got[("sigma_tick_to_order_seconds_count", ())] == 2
    assert got[("sigma_order_to_fill_seconds_sum", ())] == 0.2
    assert got[("sigma_queue_depth", (("queue", "orders"),))] == 7
    assert got[("sigma_feed_stale", ())] == 1
    assert got[("sigma_worker_heartbeat_timestamp", (("worker", "order-worker"),))] == 1.7e9
    assert got[("sigma_equity", (("account", "paper"),))] == 10_250.5
    assert got[("sigma_drawdown_pct", ())] == 3.25
    assert LATENCY_BUCKETS[0] == 0.0001


def test_registries_are_independent_and_heartbeat_uses_wall_clock() -> None:
    a, b = Metrics(), Metrics()
    a.fills.labels(symbol="X", side="sell").inc()
    assert b"sigma_fills_total{" not in b.render()
    b.heartbeat("w")
    assert samples(b)[("sigma_worker_heartbeat_timestamp", (("worker", "w"),))] > 1.7e9


async def test_asgi_app_serves_registry() -> None:
    m = Metrics()
    m.feed_stale.set(1)
    transport = httpx.ASGITransport(app=m.asgi_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/")
    assert response.status_code == 200
    assert "sigma_feed_stale 1.0" in response.text


def test_standalone_server() -> None:
    m = Metrics(namespace="bot")
    m.ticks_received.labels(symbol="ETH").inc()
    server = m.serve(0)
    try:
        response = httpx.get(f"http://127.0.0.1:{server.port}/metrics", timeout=5)
    finally:
        server.close()
    assert response.headers["content-type"].startswith(CONTENT_TYPE.split(";")[0])
    assert 'bot_ticks_received_total{symbol="ETH"} 1.0' in response.text


def test_pnl_and_regime_gauges() -> None:
    m = Metrics()
    m.pnl.labels(account="paper").set(-125.5)
    m.regime_changed("BTC", "range")
    m.regime_changed("ETH", "trend_up")
    m.regime_changed("BTC", "high_vol")
    m.regime_changed("BTC", "high_vol")  # the same regime again changes nothing
    got = samples(m)
    assert got[("sigma_pnl", (("account", "paper"),))] == -125.5
    regimes = {k[1]: v for k, v in got.items() if k[0] == "sigma_regime"}
    assert regimes == {
        (("regime", "range"), ("symbol", "BTC")): 0,
        (("regime", "high_vol"), ("symbol", "BTC")): 1,
        (("regime", "trend_up"), ("symbol", "ETH")): 1,
    }


def test_dropped_frames_are_read_per_reason_at_scrape_time() -> None:
    m = Metrics()
    assert not any(name == "sigma_feed_frames_dropped_total" for name, _ in samples(m))
    drops = {"json": 2}
    m.frames_dropped.read = lambda: drops
    assert samples(m)[("sigma_feed_frames_dropped_total", (("reason", "json"),))] == 2
    drops["json"], drops["price"] = 5, 1
    got = samples(m)
    assert got[("sigma_feed_frames_dropped_total", (("reason", "json"),))] == 5
    assert got[("sigma_feed_frames_dropped_total", (("reason", "price"),))] == 1

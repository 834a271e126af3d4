"""Prometheus metrics of the trading pipeline.

Each `Metrics` owns its `CollectorRegistry` instead of using the global default, so tests and
several engines in one process never collide. The composition root makes one instance per
process and hands it to the components; the API mounts `asgi_app()` on ``/metrics``, other
processes call `serve()`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from threading import Thread
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    make_asgi_app,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

# Tick-to-order runs in-process in micro- to milliseconds; the tail up to seconds shows stalls.
LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005,
    0.001, 0.0025, 0.005,
    0.01, 0.025, 0.05,
    0.1, 0.25, 0.5,
    1.0, 2.5, 5.0,
)  # fmt: skip
# Order-to-fill crosses the network and the exchange's matching engine.
FILL_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

CONTENT_TYPE = CONTENT_TYPE_LATEST


@dataclass(frozen=True, slots=True)
class MetricsServer:
    """A running standalone exposition server (see `Metrics.serve`)."""

    server: WSGIServer
    thread: Thread

    @property
    def port(self) -> int:
        """The bound port (useful when started on port 0)."""
        return int(self.server.server_port)

    def close(self) -> None:
        """Stop serving and release the socket."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class Metrics:
    """Counters, histograms and gauges of one SIGMA process (names prefixed ``sigma_``).

    Use the attributes directly, e.g. ``metrics.fills.labels(symbol="BTCUSDT", side="buy").inc()``
    or ``metrics.tick_to_order.observe(seconds)``.
    """

    def __init__(self, namespace: str = "sigma") -> None:
        self.namespace = namespace
        self.registry = CollectorRegistry()
        common: dict[str, Any] = {"namespace": namespace, "registry": self.registry}

        self.ticks_received = Counter(
            "ticks_received", "Ticks accepted from the feed.", ["symbol"], **common
        )
        self.ticks_rejected = Counter(
            "ticks_rejected", "Ticks dropped by validation.", ["reason"], **common
        )
        self.signals = Counter(
            "signals", "Signals emitted by strategies.", ["strategy", "symbol", "action"], **common
        )
        self.orders_submitted = Counter(
            "orders_submitted",
            "Orders sent to execution.",
            ["strategy", "symbol", "side"],
            **common,
        )
        self.orders_rejected = Counter(
            "orders_rejected", "Orders refused by risk or the broker.", ["reason"], **common
        )
        self.fills = Counter("fills", "Fills received.", ["symbol", "side"], **common)
        self.ml_gate_vetoes = Counter(
            "ml_gate_vetoes",
            "Entries the ML gate refused in the bot.",
            ["strategy", "symbol", "side"],
            **common,
        )
        self.tick_to_order = Histogram(
            "tick_to_order_seconds",
            "Time from tick arrival to order submission.",
            buckets=LATENCY_BUCKETS,
            **common,
        )
        self.order_to_fill = Histogram(
            "order_to_fill_seconds",
            "Time from order submission to its (first) fill.",
            buckets=FILL_BUCKETS,
            **common,
        )
        self.queue_depth = Gauge("queue_depth", "Messages waiting per queue.", ["queue"], **common)
        self.feed_stale = Gauge(
            "feed_stale", "1 while the market data feed is stale, else 0.", **common
        )
        self.worker_heartbeat = Gauge(
            "worker_heartbeat_timestamp",
            "Unix time of each worker's last heartbeat.",
            ["worker"],
            **common,
        )
        self.equity = Gauge("equity", "Account equity in quote currency.", ["account"], **common)
        self.drawdown_pct = Gauge(
            "drawdown_pct", "Current drawdown from the equity peak, in percent.", **common
        )
        self.pnl = Gauge(
            "pnl",
            "Booked equity minus the starting capital of every strategy account.",
            ["account"],
            **common,
        )
        self.regime = Gauge(
            "regime",
            "1 for the market regime each symbol is in, 0 for the ones it left.",
            ["symbol", "regime"],
            **common,
        )
        self.price_filter_rejected = Counter(
            "price_filter_rejected",
            "Ticks the price filter rejected.",
            ["symbol", "reason"],
            **common,
        )
        self.price_filter_rejection_ratio = Gauge(
            "price_filter_rejection_ratio",
            "Share of each symbol's recent ticks the price filter rejected.",
            ["symbol"],
            **common,
        )
        self.entries_paused = Gauge(
            "entries_paused",
            "1 while no new position is opened on a symbol whose price is not believed.",
            ["symbol"],
            **common,
        )
        self.frames_dropped = LabelledReadCounter(
            f"{namespace}_feed_frames_dropped",
            "reason",
            "Feed frames the cleaner dropped, by reason.",
        )
        self.registry.register(self.frames_dropped)
        self._regimes: dict[str, str] = {}

    def count_from(self, prefix: str, read: Callable[[], Mapping[str, int]]) -> None:
        """Export the plain counters `read()` returns as ``sigma_<prefix>_<name>_total``.

        Read at scrape time, so a hot loop (the bot, per tick) only increments an int."""
        self.registry.register(_ReadCounters(f"{self.namespace}_{prefix}", read))

    def heartbeat(self, worker: str, *, now: float | None = None) -> None:
        """Record that `worker` is alive (alert rules compare against ``time()``)."""
        self.worker_heartbeat.labels(worker=worker).set(time.time() if now is None else now)

    def regime_changed(self, symbol: str, regime: str) -> None:
        """Record that `symbol` entered `regime` (the one it left drops to 0, so a state
        timeline shows one regime at a time)."""
        previous = self._regimes.get(symbol)
        if previous is not None and previous != regime:
            self.regime.labels(symbol=symbol, regime=previous).set(0)
        self.regime.labels(symbol=symbol, regime=regime).set(1)
        self._regimes[symbol] = regime

    def render(self) -> bytes:
        """The text exposition format of every metric (content type `CONTENT_TYPE`)."""
        return generate_latest(self.registry)

    def asgi_app(self) -> Any:
        """An ASGI app serving this registry; mount it on ``/metrics``."""
        return make_asgi_app(registry=self.registry)

    def serve(self, port: int, addr: str = "127.0.0.1") -> MetricsServer:
        """Serve ``/metrics`` from a background thread (processes without the API).

        Binds to localhost by default: the exposition is not meant for the open network.
        """
        server, thread = start_http_server(port, addr=addr, registry=self.registry)
        return MetricsServer(server, thread)


class _ReadCounters(Collector):
    def __init__(self, prefix: str, read: Callable[[], Mapping[str, int]]) -> None:
        self.prefix = prefix
        self.read = read

    def collect(self) -> Iterator[Metric]:
        for name, value in self.read().items():
            yield CounterMetricFamily(f"{self.prefix}_{name}", f"{name} so far.", value=value)


class LabelledReadCounter(Collector):
    """A counter ``<name>_total{<label>="<key>"}`` whose values `read()` returns per key at
    scrape time, so the hot path (a feed, per frame) only increments a plain `Counter`."""

    def __init__(self, name: str, label: str, doc: str) -> None:
        self.name = name
        self.label = label
        self.doc = doc
        self.read: Callable[[], Mapping[str, int]] = dict

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.doc, labels=[self.label])
        for key, value in sorted(self.read().items()):
            family.add_metric([key], value)
        yield family

"""Market server and PriceClient over real localhost WebSockets (ephemeral ports)."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from sigma.bus.base import CHANNEL_PRICE_UPDATE, Subscription
from sigma.bus.memory import InMemoryPubSub
from sigma.domain import Tick
from sigma.feeds import ws_client
from sigma.feeds.cleaner import DataCleaner
from sigma.feeds.frame import make_bar_frame
from sigma.feeds.ticks import decode_tick, encode_tick
from sigma.feeds.ws_client import Backoff, PriceClient, ReconnectingFeed, StaleMonitor
from sigma.feeds.ws_server import (
    BarReplay,
    MarketServer,
    _Client,
    bar_ticks,
    feed_command,
    run_feed,
)
from sigma.ops.repeats import RepeatFilter
from sigma.risk.anomaly import AnomalyDetector
from sigma.risk.feed_health import FeedHealth

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def small_frame(n: int = 3) -> pd.DataFrame:
    ts = pd.date_range(T0, periods=n, freq="1min")
    opens = [100.0 + i for i in range(n)]
    closes = [o + (1 if i % 2 == 0 else -1) for i, o in enumerate(opens)]
    highs = [max(o, c) + 0.5 for o, c in zip(opens, closes, strict=True)]
    lows = [min(o, c) - 0.5 for o, c in zip(opens, closes, strict=True)]
    return make_bar_frame(ts, opens, highs, lows, closes, [4.0] * n)


class Recorder:
    """Collects ticks and notifications; `wait` polls for a condition."""

    def __init__(self) -> None:
        self.ticks: list[Tick] = []
        self.stale: list[float] = []
        self.recovered: list[float] = []
        self.published: list[tuple[str, bytes]] = []

    async def on_tick(self, tick: Tick) -> None:
        self.ticks.append(tick)

    async def on_stale(self, seconds: float) -> None:
        self.stale.append(seconds)

    async def on_recovered(self, seconds: float) -> None:
        self.recovered.append(seconds)

    async def publish(self, channel: str, message: bytes) -> None:
        self.published.append((channel, message))

    async def subscribe(self, channel: str) -> Subscription:  # pragma: no cover - PubSub shape
        raise NotImplementedError

    async def close(self) -> None:  # pragma: no cover - PubSub shape only
        pass


async def wait(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


def fast_backoff() -> Backoff:
    return Backoff(0.02, 0.1, rng=random.Random(0))


async def running(client: ReconnectingFeed) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(client.run())
    try:
        yield task
    finally:
        await client.stop()
        await asyncio.wait_for(task, 5)


def test_bar_ticks_follow_the_likely_path() -> None:
    ticks = list(bar_ticks("BTC", small_frame(2)))
    assert [float(t.price) for t in ticks] == [100, 99.5, 101.5, 101, 101, 101.5, 99.5, 100]
    assert [t.ts.second for t in ticks[:4]] == [0, 15, 30, 45]
    assert all(t.volume == 1 for t in ticks)
    single = list(bar_ticks("BTC", small_frame(1)))
    assert single[-1].ts.second == 45  # a lone bar lasts a minute
    assert list(bar_ticks("BTC", small_frame(1).iloc[:0])) == []


def test_replay_merges_symbols_in_time_order() -> None:
    replay = BarReplay({"A": small_frame(2), "B": small_frame(2)})
    ticks = list(replay.ticks())
    assert [t.symbol for t in ticks[:4]] == ["A", "B", "A", "B"]
    assert [t.ts for t in ticks] == sorted(t.ts for t in ticks)
    with pytest.raises(ValueError, match="speed"):
        BarReplay({}, speed=-1)
    with pytest.raises(ValueError, match="symbol"):
        BarReplay({"bad symbol": small_frame()})


def test_synthetic_source_is_seeded_and_never_in_the_future() -> None:
    one = list(BarReplay.synthetic(["A", "B"], seed=4, bars=5, start=T0).ticks())
    two = list(BarReplay.synthetic(["A", "B"], seed=4, bars=5, start=T0).ticks())
    assert one == two and len(one) == 40
    live = list(BarReplay.synthetic(["A"], bars=5).ticks())
    assert live[-1].ts <= datetime.now(UTC)


async def test_client_receives_the_replay_exactly_in_order() -> None:
    replay = BarReplay({"BTC": small_frame(3), "ETH": small_frame(3)})
    expected = [t for t in replay.ticks() if t.symbol == "BTC"]
    server = MarketServer("127.0.0.1", 0, replay, min_clients=1)
    rec = Recorder()
    async with server.serve():
        client = PriceClient(
            server.url,
            symbols=["BTC"],
            on_tick=rec.on_tick,
            pubsub=rec,
            detector=AnomalyDetector(),
            backoff=fast_backoff(),
        )
        async for _ in running(client):
            await wait(lambda: len(rec.ticks) == len(expected))
            await asyncio.wait_for(server.finished.wait(), 5)
            await asyncio.sleep(0.05)
    assert rec.ticks == expected
    assert [decode_tick(m) for _, m in rec.published] == expected
    assert {c for c, _ in rec.published} == {CHANNEL_PRICE_UPDATE}
    assert client.accepted == len(expected) and client.rejected == client.received - 12
    assert server.sent == 24


async def test_subscription_messages_filter_on_the_server() -> None:
    replay = BarReplay({"BTC": small_frame(2), "ETH": small_frame(2)})
    server = MarketServer("127.0.0.1", 0, replay, min_clients=2)
    async with server.serve(), connect(server.url) as ws:
        for bad in ("not json", json.dumps({"subscribe": "BTC"}), json.dumps({"x": 1})):
            await ws.send(bad)
        await ws.send(json.dumps({"subscribe": ["ETH"]}))
        await ws.send(json.dumps({"subscribe": None}))  # back to everything
        await ws.send(json.dumps({"subscribe": ["ETH"]}))
        await wait(lambda: any(c.symbols == frozenset({"ETH"}) for c in server._clients))
        async with connect(server.url) as everything:  # the second client starts the stream
            frames = [decode_tick(await asyncio.wait_for(ws.recv(), 5)) for _ in range(8)]
            assert len([await everything.recv() for _ in range(16)]) == 16
            assert server.clients == 2
    assert frames == [t for t in replay.ticks() if t.symbol == "ETH"]


async def test_paced_replay_takes_the_scaled_time() -> None:
    replay = BarReplay({"BTC": small_frame(2)}, speed=1200.0)  # 2 minutes of bars in ~0.1s
    server = MarketServer("127.0.0.1", 0, replay)
    loop = asyncio.get_running_loop()
    start = loop.time()
    async with server.serve():
        await asyncio.wait_for(server.finished.wait(), 5)
    assert 0.08 <= loop.time() - start < 2
    assert server.sent == 8


async def hostile_server(
    frames: Sequence[bytes | str],
) -> Callable[[ServerConnection], Awaitable[None]]:
    async def handler(ws: ServerConnection) -> None:
        for frame in frames:
            await ws.send(frame)
        await ws.wait_closed()

    return handler


async def test_malformed_frames_are_rejected_and_the_client_keeps_going() -> None:
    good = [encode_tick(Tick.of("BTC", T0, 100 + i)) for i in range(3)]
    frames: list[bytes | str] = [
        good[0],
        b"\xff\xfe",
        "{oops",
        json.dumps({"symbol": "BTC", "ts": "2024-01-01T00:00:00Z", "price": "NaN"}),
        json.dumps({"symbol": "BTC", "ts": 1704067200000, "price": 1e300}),
        json.dumps({"symbol": "BTC", "ts": 4102444800000, "price": 1}),
        json.dumps({"symbol": "BTC", "ts": 1704067200000, "price": 1, "pad": "x" * 5000}),
        good[1],
        json.dumps([1, 2, 3]),
        good[2],
    ]
    rec = Recorder()
    async with serve(await hostile_server(frames), "127.0.0.1", 0) as srv:
        port = srv.sockets[0].getsockname()[1]
        client = PriceClient(f"ws://127.0.0.1:{port}", on_tick=rec.on_tick, backoff=fast_backoff())
        async for _ in running(client):
            await wait(lambda: client.received == len(frames))
    assert [t.price for t in rec.ticks] == [100, 101, 102]
    assert client.rejected == 7 and client.accepted == 3
    assert client.cleaner.drops == {
        "utf8": 1, "json": 1, "price": 1, "too_large": 1, "future": 1, "oversized": 1,
        "not_object": 1,
    }  # fmt: skip


async def test_callback_failures_do_not_stop_the_feed() -> None:
    frames: list[bytes | str] = [encode_tick(Tick.of("BTC", T0, 100 + i)) for i in range(3)]

    async def explode(tick: Tick) -> None:
        raise RuntimeError("consumer bug")

    async with serve(await hostile_server(frames), "127.0.0.1", 0) as srv:
        port = srv.sockets[0].getsockname()[1]
        client = PriceClient(f"ws://127.0.0.1:{port}", on_tick=explode)
        async for _ in running(client):
            await wait(lambda: client.received == 3)
    assert client.callback_errors == 3 and client.accepted == 3


async def test_a_bus_outage_logs_one_traceback_not_one_per_tick(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A fresh filter: other tests' failures must not count against this one's window.
    monkeypatch.setattr(ws_client.log, "filters", [RepeatFilter()])
    frames: list[bytes | str] = [encode_tick(Tick.of("BTC", T0, 100 + i)) for i in range(20)]

    class DownBus(InMemoryPubSub):
        async def publish(self, channel: str, message: bytes) -> None:
            raise ConnectionError("redis is down")

    async with serve(await hostile_server(frames), "127.0.0.1", 0) as srv:
        port = srv.sockets[0].getsockname()[1]
        client = PriceClient(f"ws://127.0.0.1:{port}", pubsub=DownBus())
        with caplog.at_level(logging.ERROR, logger="sigma.feeds.ws_client"):
            async for _ in running(client):
                await wait(lambda: client.received == 20)
    assert client.callback_errors == 20
    delivering = [r for r in caplog.records if r.getMessage().startswith("delivering")]
    assert len(delivering) == 1 and caplog.text.count("Traceback") == 1


async def test_anomalous_ticks_are_counted_as_rejected() -> None:
    prices = [100, 100, 150, 100]
    frames: list[bytes | str] = [encode_tick(Tick.of("BTC", T0, p)) for p in prices]
    rec = Recorder()
    async with serve(await hostile_server(frames), "127.0.0.1", 0) as srv:
        port = srv.sockets[0].getsockname()[1]
        client = PriceClient(
            f"ws://127.0.0.1:{port}", on_tick=rec.on_tick, detector=AnomalyDetector()
        )
        async for _ in running(client):
            await wait(lambda: client.received == 4)
    assert [t.price for t in rec.ticks] == [100, 100, 100]
    assert client.anomalies == 1 and client.rejected == 1


async def test_server_restart_client_reconnects_and_continues() -> None:
    first = [encode_tick(Tick.of("BTC", T0, 100))]
    second = [encode_tick(Tick.of("BTC", T0, 101))]
    rec = Recorder()
    srv = await serve(await hostile_server(first), "127.0.0.1", 0).__aenter__()
    port = srv.sockets[0].getsockname()[1]
    client = PriceClient(f"ws://127.0.0.1:{port}", on_tick=rec.on_tick, backoff=fast_backoff())
    async for _ in running(client):
        await wait(lambda: len(rec.ticks) == 1)
        srv.close()
        await srv.wait_closed()
        await wait(lambda: client.reconnects >= 2)  # it keeps trying while the port is down
        async with serve(await hostile_server(second), "127.0.0.1", port):
            await wait(lambda: len(rec.ticks) == 2)
    assert [t.price for t in rec.ticks] == [100, 101]


async def test_stale_feed_fires_once_per_episode_and_recovers() -> None:
    frames: list[bytes | str] = [encode_tick(Tick.of("BTC", T0, 100))]
    gate = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        await ws.send(frames[0])
        await gate.wait()
        await ws.send(encode_tick(Tick.of("BTC", T0, 100.5)))
        await ws.wait_closed()

    rec = Recorder()
    async with serve(handler, "127.0.0.1", 0) as srv:
        port = srv.sockets[0].getsockname()[1]
        client = PriceClient(
            f"ws://127.0.0.1:{port}",
            on_tick=rec.on_tick,
            stale_after=0.1,
            on_stale=rec.on_stale,
            on_recovered=rec.on_recovered,
        )
        async for _ in running(client):
            await wait(lambda: bool(rec.stale))
            await asyncio.sleep(0.25)  # still silent: no second notification
            assert len(rec.stale) == 1 and rec.stale[0] >= 0.1
            gate.set()
            await wait(lambda: bool(rec.recovered))
    assert client.monitor.episodes == 1 and rec.recovered[0] >= 0.3


async def test_a_feed_whose_every_tick_is_rejected_goes_stale_and_blinds_its_symbol() -> None:
    """Issue 23: rejected ticks are no sign of life. A feed that keeps sending prints the
    filter rejects (wild and disagreeing, so never a new level) goes stale like a silent one,
    and its symbol is blinded for new positions; a believed tick brings both back."""
    gate = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        await ws.send(encode_tick(Tick.of("BTC", T0, 100)))
        k = 0
        while not gate.is_set():
            k += 1
            wild = 150 if k % 2 else 50
            await ws.send(encode_tick(Tick.of("BTC", T0 + timedelta(milliseconds=k), wild)))
            await asyncio.sleep(0.005)
        await ws.send(encode_tick(Tick.of("BTC", T0 + timedelta(seconds=1), 100.5)))
        await ws.wait_closed()

    rec = Recorder()
    health = FeedHealth(window=20, min_ticks=10, clear_ratio=0.05)
    async with serve(handler, "127.0.0.1", 0) as srv:
        port = srv.sockets[0].getsockname()[1]
        client = PriceClient(
            f"ws://127.0.0.1:{port}",
            on_tick=rec.on_tick,
            detector=AnomalyDetector(),
            health=health,
            stale_after=0.2,
            on_stale=rec.on_stale,
            on_recovered=rec.on_recovered,
        )
        async for _ in running(client):
            await wait(lambda: bool(rec.stale))
            assert client.anomalies > 10 and [t.price for t in rec.ticks] == [100]
            assert "rejected" in health.entry_pause("BTC")
            gate.set()
            await wait(lambda: bool(rec.recovered))
    assert [t.price for t in rec.ticks] == [100, Decimal("100.5")]
    assert health.entry_pause("BTC")  # one believed tick: the ratio is still far too high


async def test_stale_callbacks_may_fail() -> None:
    async def explode(seconds: float) -> None:
        raise RuntimeError("alert channel down")

    monitor = StaleMonitor(0.02, explode, explode)
    watcher = asyncio.create_task(monitor.watch())
    await wait(lambda: monitor.stale)
    await monitor.beat()
    assert not monitor.stale
    watcher.cancel()
    await asyncio.gather(watcher, return_exceptions=True)
    with pytest.raises(ValueError):
        StaleMonitor(0)


def test_backoff_grows_caps_jitters_and_resets() -> None:
    backoff = Backoff(1, 8, jitter=0)
    assert [backoff.next_delay() for _ in range(5)] == [1, 2, 4, 8, 8]
    backoff.reset()
    assert backoff.next_delay() == 1
    jittered = Backoff(1, 8, jitter=0.5, rng=random.Random(1))
    delays = [jittered.next_delay() for _ in range(200)]
    assert all(0.5 <= d <= 8 for d in delays) and len(set(delays)) > 100
    for bad in ({"base": 0}, {"cap": 0.1}, {"factor": 0.5}, {"jitter": 2}):
        with pytest.raises(ValueError):
            Backoff(**{"base": 1.0, "cap": 8.0, **bad})  # type: ignore[arg-type]


async def test_base_feed_session_is_abstract() -> None:
    feed = ReconnectingFeed(backoff=Backoff(0.01, 0.01))
    task = asyncio.create_task(feed.run())
    await wait(lambda: feed.reconnects >= 1)
    await feed.stop()
    await asyncio.wait_for(task, 5)
    assert feed.stopping


async def test_run_feed_serves_history_until_done(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    frame = small_frame(3)
    frame.reset_index().assign(ts=lambda f: f["ts"].astype("int64") // 10**6).to_csv(
        path, index=False
    )
    urls: list[str] = []
    received: list[Tick] = []

    async def consume() -> None:
        while not urls:
            await asyncio.sleep(0.01)
        async with connect(urls[0]) as ws:
            async for message in ws:
                received.append(decode_tick(message))

    consumer = asyncio.create_task(consume())
    sent = await asyncio.wait_for(
        run_feed(str(path), ["BTC"], port=0, speed=0, announce=urls.append), 10
    )
    await asyncio.wait_for(consumer, 5)
    assert sent == 12 and received == list(bar_ticks("BTC", frame))


async def test_run_feed_synthetic() -> None:
    sent = await asyncio.wait_for(run_feed("synthetic", ["A"], port=0, speed=1e9, bars=3), 10)
    assert sent == 12


def test_feed_command(tmp_path: Path) -> None:
    app = typer.Typer()
    app.command()(feed_command)
    runner = CliRunner()
    ok = runner.invoke(app, ["--symbols", "A,B", "--port", "0", "--speed", "1e9", "--bars", "2"])
    assert ok.exit_code == 0, ok.output
    assert "serving A, B on ws://127.0.0.1:" in ok.output and "16 ticks sent" in ok.output
    for args in (["--symbols", "bad sym"], ["--symbols", ","], ["--speed", "-1"]):
        assert runner.invoke(app, args).exit_code == 2
    missing = runner.invoke(app, ["--source", str(tmp_path / "nope.csv"), "--port", "0"])
    assert missing.exit_code == 2 and "--source" in missing.output


def test_feed_command_reads_pg_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}

    async def fake_run_feed(source: str, symbols: list[str], **kwargs: object) -> int:
        seen.update(kwargs, source=source)
        return 0

    monkeypatch.setattr("sigma.feeds.ws_server.run_feed", fake_run_feed)
    app = typer.Typer()
    app.command()(feed_command)
    result = CliRunner().invoke(app, ["--source", "pg:bars", "--symbols", "BTC"])
    assert result.exit_code == 0, result.output
    assert seen["source"] == "pg:bars" and isinstance(seen["database_url"], str)


async def test_a_client_that_cannot_keep_up_is_dropped() -> None:
    class StuckConnection:
        """Stands in for a connection whose peer stopped reading (send never completes)."""

        def __init__(self) -> None:
            self.aborted = False
            self.transport = self

        async def send(self, frame: bytes, text: bool) -> None:
            await asyncio.Event().wait()

        def abort(self) -> None:
            self.aborted = True

    replay = BarReplay({"BTC": small_frame(1)})
    server = MarketServer("127.0.0.1", 0, replay, send_timeout=0.02)
    stuck = StuckConnection()
    server._clients.add(_Client(stuck))  # type: ignore[arg-type]
    async with server.serve():
        await asyncio.wait_for(server.finished.wait(), 5)
    assert stuck.aborted and server.clients == 0 and server.sent == 4


async def test_monitor_without_callbacks_and_client_options() -> None:
    monitor = StaleMonitor(0.02)
    watcher = asyncio.create_task(monitor.watch())
    await wait(lambda: monitor.stale)
    await monitor.beat()
    watcher.cancel()
    await asyncio.gather(watcher, return_exceptions=True)
    rec = Recorder()
    frames: list[bytes | str] = [encode_tick(Tick.of("BTC", T0, 100))]
    async with serve(await hostile_server(frames), "127.0.0.1", 0) as srv:
        port = srv.sockets[0].getsockname()[1]
        client = PriceClient(f"ws://127.0.0.1:{port}", pubsub=rec, cleaner=DataCleaner(["BTC"]))
        assert str(client) == f"PriceClient(ws://127.0.0.1:{port})"
        async for _ in running(client):
            await wait(lambda: bool(rec.published))
    assert decode_tick(rec.published[0][1]).price == 100

"""10,000 malformed and hostile frames through the real feed path: a WebSocket market ->
`sigma bot` (price client with its DataCleaner and AnomalyDetector, then the bot) -> Redis.

`test_integration_faults.py` shows one or two frames of each kind being dropped; this is the
flood: ten thousand of them, seeded and shuffled, a good tick after every hundred, sent to a
real `sigma bot` process. Each bad frame is dropped and counted with its reason in the
process's `sigma_feed_frames_dropped_total{reason}` metric (exact), the first of each reason is
logged and its repeats fold into a count (no line per frame), the connection is never cut,
exactly the good ticks are published on `price_update`, the process stops cleanly afterwards,
and its memory does not grow with the number of frames (traced allocations and RSS after
2,000 frames vs after 10,000).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.server import ServerConnection, serve

from sigma.bus.base import CHANNEL_PRICE_UPDATE
from sigma.bus.redis_pubsub import RedisPubSub
from sigma.domain import Tick
from sigma.feeds.ticks import decode_tick, encode_tick
from tests.integration.cli_process import Process, rss_bytes
from tests.integration.private_servers import free_port
from tests.integration.steady_orders import wait_until
from tests.runtime.pipeline_helpers import SYMBOL, make_app

pytestmark = [pytest.mark.integration, pytest.mark.pg]

HOSTILE = 10_000
GOOD_EVERY = 100
# Frames of the first part, after which the memory baseline is taken (warm caches, counters
# and the logging machinery allocated).
WARM_UP = 2_000
# What the process may grow by over the remaining 8,000 frames: a leak of even 50 bytes per
# frame would be 400 kB of traced allocations.
MAX_TRACED_GROWTH = 256 * 1024
MAX_RSS_GROWTH = 16 * 2**20  # coarse: allocator arenas, buffers; the traced bound is the tight one

Frame = str | bytes


class Flood:
    """Seeded hostile frames, each with the reason the cleaner must give for dropping it."""

    def __init__(self, now: datetime, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.base = now - timedelta(hours=1)
        self.now = now
        self.i = 0

    def ts(self) -> str:
        """A valid, recent timestamp, later than every one before (and than the good ticks
        sent so far, which are one millisecond apart starting at `base`)."""
        self.i += 1
        return (self.base + timedelta(seconds=10, microseconds=self.i)).isoformat()

    def tick(self, **fields: Any) -> dict[str, Any]:
        obj: dict[str, Any] = {"symbol": SYMBOL, "ts": self.ts(), "price": "100.5", "volume": "1"}
        obj.update(fields)
        return obj

    def text(self, **fields: Any) -> str:
        return json.dumps(self.tick(**fields))

    # --- the kinds of bad frames, by the reason they must be dropped for -------------------
    def json_(self) -> Frame:
        r = self.rng
        valid = self.text()
        return r.choice(
            [
                valid[: r.randint(0, len(valid) - 2)],  # truncated
                "".join(r.choice("{}[]:,\"'abc0123 ") for _ in range(r.randint(1, 80))) + "{",
                "[" * r.randint(1_100, 4_000),  # nested beyond the parser's recursion limit
                '{"symbol": "XYZ", "price": 1,}',
                "{'symbol': 'XYZ'}",
            ]
        )

    def not_object(self) -> Frame:
        return self.rng.choice(["[1, 2, 3]", '"tick"', "null", "true", "42", "[]", "-1e5"])

    def utf8(self) -> Frame:
        r = self.rng
        bad = r.choice([b"\xff", b"\xc3\x28", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf8\x88\x80"])
        tail = bytes(r.randrange(256) for _ in range(r.randint(0, 200)))
        head = b'{"symbol": "XYZ", "price": "1' if r.random() < 0.5 else b""
        return head + bad + tail

    def oversized(self) -> Frame:
        r = self.rng
        size = r.randint(4_097, 60_000)  # beyond the cleaner's 4 KiB, within the socket's 64
        if r.random() < 0.5:
            return self.text(pad="x" * size)
        return bytes(r.randrange(256) for _ in range(64)) * (size // 64 + 1)

    def type_(self) -> Frame:
        r = self.rng
        field, value = r.choice(
            [
                ("price", [1]),
                ("price", {"x": 1}),
                ("price", True),
                ("price", None),
                ("ts", True),
                ("ts", [2024]),
                ("ts", {"at": 1}),
                ("volume", [1]),
                ("volume", False),
                ("bid", {"p": 1}),
            ]
        )
        return self.text(**{field: value})

    def price(self) -> Frame:
        r = self.rng
        value = r.choice(
            [
                *("NaN", "nan", "sNaN", "-NaN", "Infinity", "-Infinity", "inf", "-inf"),
                *("abc", "1,5", "", "0", "-0", "-1", "-1e-8", "0E-20", "9" * 65),
                *(-1, 0, -(10**9), -0.5),
            ]
        )
        if r.random() < 0.3:
            # Bare NaN / Infinity tokens, which Python's json writes and reads.
            return json.dumps(self.tick(price=r.choice([float("nan"), float("inf"), -1e308])))
        return self.text(price=value)

    def too_large(self) -> Frame:
        r = self.rng
        field = r.choice(["price", "volume", "bid", "ask"])
        value = r.choice(["1e13", "1e300", "1e400", "9" * 20, 10**20, 10**40, 1e300, 1.5e13])
        extra: dict[str, object] = {"bid": "100", "ask": "101"} if field in ("bid", "ask") else {}
        extra[field] = value
        return self.text(**extra)

    def volume(self) -> Frame:
        return self.text(volume=self.rng.choice(["-1", -5, "NaN", "-Infinity", "x"]))

    def crossed(self) -> Frame:
        bid = 100 + self.rng.randint(1, 50)
        return self.text(bid=str(bid), ask=str(bid - 1))

    def missing(self) -> Frame:
        obj = self.tick()
        del obj[self.rng.choice(["ts", "price"])]
        if self.rng.random() < 0.3:
            obj = {k: v for k, v in obj.items() if k != "symbol"}
        return json.dumps(obj)

    def symbol(self) -> Frame:
        return self.text(
            symbol=self.rng.choice(
                [
                    *("", "A" * 33, "X Y", "'; DROP TABLE orders; --", "<script>x</script>"),
                    *("BTC\n", "ΒΤC", "\u202eCTB", "../../etc/passwd!", 5, None, ["XYZ"]),
                ]
            )
        )

    def unknown_symbol(self) -> Frame:
        # A new made-up symbol every time: the cleaner must not remember them.
        return self.text(symbol=f"Q{self.rng.randrange(10**9)}")

    def ts_(self) -> Frame:
        value = self.rng.choice(
            ["yesterday", "2024-13-45", "", "NaN", "9999-99-99T99:99:99", -5, 10**20, -1e300]
        )
        return self.text(ts=value)

    def future(self) -> Frame:
        ahead = timedelta(seconds=self.rng.uniform(30, 10 * 365 * 86_400))
        when = self.now + ahead
        if self.rng.random() < 0.5:
            return self.text(ts=when.isoformat())
        return self.text(ts=int(when.timestamp() * 1000))

    def out_of_order(self) -> Frame:
        # Valid, but older than the first good tick, so older than the last accepted one.
        back = timedelta(seconds=self.rng.uniform(1, 86_400))
        return json.dumps({**self.tick(), "ts": (self.base - back).isoformat()})

    def frames(self, n: int) -> tuple[list[Frame], Counter[str]]:
        kinds: dict[str, Callable[[], Frame]] = {
            "json": self.json_,
            "not_object": self.not_object,
            "utf8": self.utf8,
            "oversized": self.oversized,
            "type": self.type_,
            "price": self.price,
            "too_large": self.too_large,
            "volume": self.volume,
            "crossed": self.crossed,
            "missing": self.missing,
            "symbol": self.symbol,
            "unknown_symbol": self.unknown_symbol,
            "ts": self.ts_,
            "future": self.future,
            "out_of_order": self.out_of_order,
        }
        names = list(kinds)
        out: list[Frame] = []
        expected: Counter[str] = Counter()
        for _ in range(n):
            name = self.rng.choice(names)
            out.append(kinds[name]())
            expected[name] += 1
        return out, expected


def drop_logs(records: list[dict[str, object]]) -> tuple[Counter[str], int]:
    """How many of the cleaner's "dropped frame (<reason>)" log lines each reason has (repeats
    fold into a count), and how many of those lines carry a raw line break (a frame must not
    forge log lines)."""
    reasons: Counter[str] = Counter()
    forged = 0
    for record in records:
        message = str(record.get("msg", ""))
        if record.get("logger") == "sigma.feeds.cleaner" and (m := DROPPED.match(message)):
            reasons[m.group(1)] += 1
            forged += "\n" in message or "\r" in message
    return reasons, forged


DROPPED = re.compile(r"dropped frame \((\w+)\)")


def scraped_drops(port: int) -> Counter[str]:
    """The bot's ``sigma_feed_frames_dropped_total`` per reason, scraped from its /metrics."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1).text
    except httpx.HTTPError:  # not serving yet
        return Counter()
    return Counter(
        {
            sample.labels["reason"]: int(sample.value)
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "sigma_feed_frames_dropped_total"
        }
    )


async def probe(bot: Process, probe_file: Path) -> tuple[int, int]:
    """(traced bytes after a full collection, RSS bytes) of the bot process."""
    before = len(probe_file.read_text().splitlines()) if probe_file.exists() else 0
    os.kill(bot.pid, signal.SIGUSR1)
    await wait_until(
        lambda: probe_file.exists() and len(probe_file.read_text().splitlines()) > before,
        "the memory probe",
    )
    traced = json.loads(probe_file.read_text().splitlines()[-1])["traced"]
    return int(traced), rss_bytes(bot.pid)


async def test_ten_thousand_hostile_frames_are_dropped_with_reasons_in_bounded_memory(
    pg_schema_url: str, redis_url: str, amqp_url: str, bus_prefix: str, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    flood = Flood(now)
    hostile, expected = flood.frames(HOSTILE)
    good_ticks = [
        Tick(SYMBOL, flood.base + timedelta(milliseconds=k), Decimal("100.5"), Decimal(1))
        for k in range(HOSTILE // GOOD_EVERY + 1)
    ]
    # The first good tick goes first (so later "old" ticks are out of order), then a good one
    # after every hundred bad ones.
    mixed: list[Frame] = []
    goods = iter(good_ticks)
    for k, frame in enumerate(hostile):
        if k % GOOD_EVERY == 0:
            mixed.append(encode_tick(next(goods)).decode())
        mixed.append(frame)
    mixed.extend(encode_tick(t).decode() for t in goods)
    split = WARM_UP + WARM_UP // GOOD_EVERY
    go, more = asyncio.Event(), asyncio.Event()
    connections = 0

    async def feed(ws: ServerConnection) -> None:
        nonlocal connections
        connections += 1
        await go.wait()
        for k, frame in enumerate(mixed):
            if k == split:
                await more.wait()
            await ws.send(frame, text=isinstance(frame, str))
        await ws.wait_closed()

    published: list[Tick] = []
    bus = RedisPubSub(redis_url, bus_prefix)
    subscription = await bus.subscribe(CHANNEL_PRICE_UPDATE)

    async def listen() -> None:
        async for raw in subscription:
            published.append(decode_tick(raw))

    listener = asyncio.create_task(listen())
    probe_file = tmp_path / "memory.jsonl"
    metrics_port = free_port()
    async with serve(feed, "127.0.0.1", 0, max_size=None) as server:
        port = server.sockets[0].getsockname()[1]
        make_app(pg_schema_url).db  # noqa: B018 - the schema, before the process starts
        env = {
            "SIGMA_DATABASE_URL": pg_schema_url,
            "SIGMA_REDIS_URL": redis_url,
            "SIGMA_AMQP_URL": amqp_url,
            "SIGMA_BUS_PREFIX": bus_prefix,
            "SIGMA_SYMBOLS": SYMBOL,
            "SIGMA_LIVE_STRATEGIES": "sma_cross",
            "SIGMA_ADAPTIVE": "false",
            "SIGMA_FEED_URL": f"ws://127.0.0.1:{port}",
            "SIGMA_VAR_DIR": str(tmp_path / "var"),
            "SIGMA_TEST_TRACEMALLOC": str(probe_file),
            "SIGMA_METRICS_PORT": str(metrics_port),
        }
        bot = Process("bot", env, tmp_path)
        started = time.monotonic()
        try:
            await bot.start()
            go.set()
            first_goods = WARM_UP // GOOD_EVERY
            await wait_until(
                lambda: (
                    sum(scraped_drops(metrics_port).values()) == WARM_UP
                    and len(published) == first_goods
                ),
                "the warm-up frames",
            )
            traced_0, rss_0 = await probe(bot, probe_file)
            more.set()
            await wait_until(
                lambda: (
                    sum(scraped_drops(metrics_port).values()) == HOSTILE
                    and len(published) == len(good_ticks)
                ),
                "every frame",
                timeout=120,
            )
            traced_1, rss_1 = await probe(bot, probe_file)
            assert bot.running, "the bot process died"
            reasons = scraped_drops(metrics_port)
            await bot.stop()
        finally:
            await bot.kill()
            listener.cancel()
            await subscription.close()
            await bus.close()
    logged, forged = drop_logs(bot.records())
    print(
        json.dumps(
            {
                "frames": len(mixed),
                "dropped": sum(reasons.values()),
                "drop_log_lines": sum(logged.values()),
                "traced_kb": [traced_0 // 1024, traced_1 // 1024],
                "traced_growth_kb": (traced_1 - traced_0) // 1024,
                "rss_mb": [round(rss_0 / 2**20, 1), round(rss_1 / 2**20, 1)],
            }
        )
    )
    assert dict(reasons) == dict(expected)  # each dropped and counted with its reason
    # each reason is logged, its repeats folded into a count: one line per reason per minute
    minutes = 1 + int(time.monotonic() - started) // 60
    assert set(logged) == set(expected)
    assert all(n <= minutes for n in logged.values()), logged
    assert forged == 0
    assert published == good_ticks  # exactly the good ones went on to the bus, in order
    assert connections == 1  # nothing a frame says cut the connection
    assert not [r for r in bot.records() if "anomalous tick" in str(r.get("msg"))]
    assert traced_1 - traced_0 < MAX_TRACED_GROWTH, "allocations grow with the frames"
    assert rss_1 - rss_0 < MAX_RSS_GROWTH, "the process grows with the frames"

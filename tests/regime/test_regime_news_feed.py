"""NewsFeedPoller against a real HTTP server on 127.0.0.1: conditional GETs (ETag and
Last-Modified), dedupe by guid/link, retries with backoff (recorded, not slept), timeouts, size
limits, and dedupe and risk windows that survive a restart through `news_items`."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from sigma.regime.news import NewsHandler, parse_feed
from sigma.regime.news_feed import NewsFeedPoller, NewsStore, wait_or_stop
from sigma.store.models import NewsRecord

NOW = datetime(2024, 1, 1, 12, 30, tzinfo=UTC)
KEYWORDS = {"BTC": ["bitcoin"], "ETH": ["ether", "ethereum"]}


def rss(*items: tuple[str, str, str | None]) -> bytes:
    """An RSS document of (guid, title, pubDate or None) items."""
    body = "".join(
        f"<item><guid>{guid}</guid><title>{title}</title>"
        + (f"<pubDate>{date}</pubDate>" if date else "")
        + "</item>"
        for guid, title, date in items
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel>{body}</channel></rss>'.encode()


HACK = ("g1", "Bitcoin exchange hacked, withdrawals halted", "Mon, 01 Jan 2024 12:00:00 +0000")
RALLY = ("g2", "Ether rally continues", "Mon, 01 Jan 2024 11:00:00 +0000")
FRAUD = ("g3", "Bitcoin lender fraud probe", "Mon, 01 Jan 2024 12:10:00 +0000")


@dataclass
class Feed:
    """What one path serves: a body with validators, and scripted failures/delays first."""

    body: bytes = b""
    etag: str | None = None
    last_modified: str | None = None
    script: list[tuple[int, float]] = field(default_factory=list)


@dataclass
class FeedServer:
    url: str = ""
    feeds: dict[str, Feed] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def headers(self, path: str) -> list[dict[str, str]]:
        return [h for p, h in self.requests if p == path]


@pytest.fixture
def server() -> Iterator[FeedServer]:
    state = FeedServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            with state.lock:
                state.requests.append((self.path, headers))
                feed = state.feeds.get(self.path)
                status, delay = feed.script.pop(0) if feed and feed.script else (200, 0.0)
            time.sleep(delay)  # the server is slow on purpose (timeout test); the client is not
            if feed is None:
                status = 404
            elif status == 200 and (
                (feed.etag and headers.get("if-none-match") == feed.etag)
                or (feed.last_modified and headers.get("if-modified-since") == feed.last_modified)
            ):
                status = 304
            body = feed.body if feed is not None and status == 200 else b""
            try:
                self.send_response(status)
                if feed is not None and status in (200, 304):
                    if feed.etag:
                        self.send_header("etag", feed.etag)
                    if feed.last_modified:
                        self.send_header("last-modified", feed.last_modified)
                self.send_header("content-type", "application/rss+xml")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


class Sleeps:
    """Records the backoff waits instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def poller(urls: list[str], handler: NewsHandler, **options: Any) -> NewsFeedPoller:
    options.setdefault("sleep", Sleeps())
    return NewsFeedPoller(urls, handler, clock=lambda: NOW, **options)


async def test_conditional_gets_and_dedupe_by_guid(server: FeedServer) -> None:
    server.feeds["/etag"] = Feed(rss(HACK, RALLY), etag='"v1"')
    server.feeds["/modified"] = Feed(rss(RALLY), last_modified="Mon, 01 Jan 2024 11:00:00 GMT")
    handler = NewsHandler(symbol_keywords=KEYWORDS)
    feeds = poller([f"{server.url}/etag", f"{server.url}/modified"], handler)

    events = await feeds.poll_once()
    # Each feed is its own source: the same guid in two feeds is two items.
    assert [(e.item.headline, e.symbols, e.item.source) for e in events] == [
        (HACK[1], ("BTC",), f"{server.url}/etag"),
        (RALLY[1], ("ETH",), f"{server.url}/etag"),
        (RALLY[1], ("ETH",), f"{server.url}/modified"),
    ]
    hack = events[0]
    assert hack.halt_entries and hack.risk_until == hack.item.ts + timedelta(hours=2)
    assert handler.active("BTC", NOW) is hack
    assert "if-none-match" not in server.headers("/etag")[0]

    # Unchanged: a 304 each, nothing parsed or scored again.
    assert await feeds.poll_once() == []
    assert server.headers("/etag")[1]["if-none-match"] == '"v1"'
    assert server.headers("/modified")[1]["if-modified-since"] == "Mon, 01 Jan 2024 11:00:00 GMT"
    assert feeds.feeds[f"{server.url}/etag"].last_status == 304

    # Changed: only the item not seen before is scored.
    server.feeds["/etag"] = Feed(rss(FRAUD, HACK, RALLY), etag='"v2"')
    events = await feeds.poll_once()
    assert [e.item.headline for e in events] == [FRAUD[1]]
    assert feeds.feeds[f"{server.url}/etag"].new_items == 3
    await feeds.aclose()


async def test_retries_with_backoff_then_gives_up_per_feed(server: FeedServer) -> None:
    server.feeds["/flaky"] = Feed(rss(HACK), script=[(503, 0.0), (429, 0.0)])
    server.feeds["/down"] = Feed(rss(RALLY), script=[(500, 0.0)] * 3)
    sleeps = Sleeps()
    handler = NewsHandler()
    feeds = poller(
        [f"{server.url}/flaky", f"{server.url}/down", f"{server.url}/missing"],
        handler,
        sleep=sleeps,
        retries=2,
        backoff=0.5,
    )
    events = await feeds.poll_once()
    assert [e.item.headline for e in events] == [HACK[1]]
    assert sleeps.waits == [0.5, 1.0, 0.5, 1.0]  # /flaky twice, /down twice; /missing none
    down, missing = feeds.feeds[f"{server.url}/down"], feeds.feeds[f"{server.url}/missing"]
    assert (down.failures, down.last_error) == (1, "HTTP 500 after 3 attempts")
    assert (missing.failures, missing.last_error) == (1, "HTTP 404")
    assert len(server.headers("/missing")) == 1  # a client error is not retried
    # The next poll succeeds: the error is cleared.
    assert [e.item.headline for e in await feeds.poll_once()] == [RALLY[1]]
    assert down.last_error is None and down.failures == 1
    await feeds.aclose()


async def test_timeouts_size_limit_and_bad_documents(server: FeedServer) -> None:
    server.feeds["/slow"] = Feed(rss(HACK), script=[(200, 1.0)])
    server.feeds["/big"] = Feed(rss(*[(f"g{i}", "x" * 100, HACK[2]) for i in range(100)]))
    server.feeds["/html"] = Feed(b"<html><body>not a feed")
    # A generous connect timeout (a busy machine may be slow to accept), a short read timeout.
    client = httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=0.3))
    feeds = poller(
        [f"{server.url}/slow", f"{server.url}/big", f"{server.url}/html"],
        NewsHandler(),
        client=client,
        retries=0,
        max_bytes=5_000,
    )
    assert await feeds.poll_once() == []
    errors = {url.rsplit("/", 1)[1]: s.last_error for url, s in feeds.feeds.items()}
    assert errors["slow"] is not None and errors["slow"].startswith("ReadTimeout")
    assert errors["big"] == "feed larger than 5000 bytes"
    assert errors["html"] is not None and "not an RSS/Atom document" in errors["html"]
    await client.aclose()


async def test_restart_keeps_dedupe_and_risk_windows(
    server: FeedServer, factory: sessionmaker[Session]
) -> None:
    server.feeds["/wire"] = Feed(rss(HACK, RALLY, ("g4", "Undated bitcoin adoption", None)))
    store = NewsStore(factory)
    first = NewsHandler(symbol_keywords=KEYWORDS)
    feeds = poller([f"{server.url}/wire"], first, store=store)
    events = await feeds.poll_once()
    assert len(events) == 3
    assert events[2].item.ts == NOW  # no date in the feed: the fetch time
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(NewsRecord)) == 3
    await feeds.aclose()

    # A new process: nothing is scored twice, and the hack's risk window is back.
    second = NewsHandler(symbol_keywords=KEYWORDS)
    restored = store.restore(second, NOW)
    assert {e.item.headline for e in restored} == {HACK[1], RALLY[1], "Undated bitcoin adoption"}
    active = second.active("BTC", NOW)
    assert active is not None and active.item.headline == HACK[1] and active.halt_entries
    again = poller([f"{server.url}/wire"], second, store=store)
    assert await again.poll_once() == []
    assert len(second.events) == 3
    # Items older than any risk window are not restored.
    assert store.restore(NewsHandler(), NOW + timedelta(hours=3)) == []
    await again.aclose()


async def test_run_polls_until_stopped_without_sleeping(server: FeedServer) -> None:
    server.feeds["/wire"] = Feed(rss(HACK))
    waits: list[float] = []

    async def wait(stop: asyncio.Event, seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 3:
            stop.set()

    client = httpx.AsyncClient()
    feeds = poller([f"{server.url}/wire"], NewsHandler(), interval=60.0, wait=wait, client=client)
    await feeds.run(asyncio.Event())
    assert waits == [60.0, 60.0, 60.0]
    assert len(server.headers("/wire")) == 3
    assert not client.is_closed  # a client passed in belongs to the caller
    await client.aclose()
    # The real wait returns as soon as stop is set.
    stop = asyncio.Event()
    stop.set()
    await asyncio.wait_for(wait_or_stop(stop, 3600), 1.0)


def test_options_are_checked_and_atom_links_identify_entries() -> None:
    with pytest.raises(ValueError, match="interval"):
        NewsFeedPoller(["u"], NewsHandler(), interval=0)
    atom = b"""<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom">
    <entry><title>A</title><link rel="self" href="http://x/self"/>
    <link href="http://x/a"/><updated>2024-01-01T10:00:00Z</updated></entry>
    <entry><title>A</title><link rel="alternate" href="http://x/b"/>
    <updated>2024-01-01T10:00:00Z</updated></entry></feed>"""
    first, second = parse_feed(atom, "src")
    assert first.key != second.key
    assert parse_feed(atom, "src")[0].key == first.key  # stable across fetches
    assert parse_feed(atom, "other")[0].key != first.key
    with pytest.raises(ValueError, match="timestamp"):
        parse_feed(rss(("g", "no date", None)), "file.xml")  # a file has no fetch time


async def test_live_adaptive_layer_from_settings(
    server: FeedServer, factory: sessionmaker[Session], tmp_path: Any
) -> None:
    from sigma.config import load_settings
    from sigma.notify.service import NotificationService
    from sigma.regime.live import build_live_adaptive

    server.feeds["/wire"] = Feed(rss(HACK))
    NewsStore(factory).add_new(parse_feed(rss(FRAUD), "earlier"), NOW)
    settings = load_settings(
        var_dir=tmp_path, news_feed_urls=f"{server.url}/wire", news_poll_seconds=30
    )
    adaptive = build_live_adaptive(settings, factory, NotificationService(), now=NOW)
    # The stored item recent enough to matter is scored again at start.
    assert [e.item.headline for e in adaptive.news.events] == [FRAUD[1]]
    assert adaptive.hook.loop.news is adaptive.news and adaptive.hook.state is not None
    assert adaptive.hook.tester is not None and adaptive.hook.tester.config.lookback == 1500
    assert adaptive.poller is not None and adaptive.poller.interval == 30
    assert [e.symbols for e in await adaptive.poller.poll_once()] == [("BTC",)]
    stop = asyncio.Event()
    stop.set()
    await adaptive.run_news(stop)  # stopped: closes the client and returns

    quiet = build_live_adaptive(
        load_settings(var_dir=tmp_path, adaptive_test_bars=0), factory, NotificationService()
    )
    assert quiet.poller is None and quiet.hook.tester is None
    dropping = build_live_adaptive(
        load_settings(var_dir=tmp_path, news_drop_dir=tmp_path / "drop"),
        factory,
        NotificationService(),
    )
    assert dropping.poller is not None and dropping.poller.drop_dir == tmp_path / "drop"
    assert dropping.poller.feeds == {}
    await dropping.poller.aclose()
    await quiet.run_news(asyncio.Event())  # nothing to poll: returns at once


async def test_drop_folder_reads_json_lines_and_feeds_once(
    tmp_path: Path, factory: sessionmaker[Session]
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "a.json").write_text(
        json.dumps([{"ts": "2024-01-01T12:00:00Z", "headline": "Bitcoin lender insolvent"}])
    )
    (drop / "b.jsonl").write_text(
        '{"ts": "2024-01-01T12:00:00Z", "headline": "Bitcoin lender insolvent"}\n'
        '{"published": "2024-01-01T12:05:00Z", "title": "ETH upgrade approved",'
        ' "symbols": "ETH"}\n'
    )
    (drop / "c.rss").write_bytes(rss(RALLY))
    (drop / "broken.json").write_text("{not json")
    (drop / "notes.txt").write_text("ignored: not a news file")
    handler = NewsHandler(symbol_keywords=KEYWORDS)
    feeds = poller([], handler, drop_dir=drop, store=NewsStore(factory))
    events = await feeds.poll_once()
    # The same JSON item in two files is taken once; each file is moved out of the way.
    assert [(e.item.headline, e.symbols, e.item.source) for e in events] == [
        ("Bitcoin lender insolvent", ("BTC",), "drop:a.json"),
        ("ETH upgrade approved", ("ETH",), "drop:b.jsonl"),
        (RALLY[1], ("ETH",), "drop:c.rss"),
    ]
    assert events[0].high_risk and events[0].risk_until is not None
    assert sorted(p.name for p in (drop / "done").iterdir()) == ["a.json", "b.jsonl", "c.rss"]
    assert sorted(p.name for p in (drop / "failed").iterdir()) == [
        "broken.json",
        "broken.json.error",
    ]
    assert "not JSON" in (drop / "failed" / "broken.json.error").read_text()
    assert sorted(p.name for p in drop.iterdir() if p.is_file()) == ["notes.txt"]
    # Dropping a file of the same name again: processed, kept beside the first; nothing new.
    (drop / "a.json").write_text(
        json.dumps(
            {"items": [{"ts": "2024-01-01T12:00:00Z", "headline": "Bitcoin lender insolvent"}]}
        )
    )
    assert await feeds.poll_once() == []
    assert sorted(p.name for p in (drop / "done").iterdir()) == [
        "a.1.json", "a.json", "b.jsonl", "c.rss",
    ]  # fmt: skip
    assert await poller([], NewsHandler(), drop_dir=tmp_path / "missing").poll_once() == []
    await feeds.aclose()

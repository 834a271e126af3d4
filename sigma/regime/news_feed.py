"""NewsFeedPoller: market news from RSS/Atom URLs and a drop folder into the `NewsHandler`.

Every ``interval`` seconds each configured URL is fetched with httpx:

* a conditional GET - the ``ETag`` and ``Last-Modified`` of the previous answer go back as
  ``If-None-Match`` / ``If-Modified-Since``, so an unchanged feed costs a ``304`` and no parsing;
* under a timeout, with up to ``retries`` retries (exponential backoff) of transport errors,
  ``429`` and ``5xx``; any other status fails at once; a body over ``max_bytes`` is refused;
* each item is identified by its guid/id/link (`parse_feed`), and only items never seen before
  are scored: remembered in memory and, with a `NewsStore`, in the ``news_items`` table, so a
  restart neither re-scores old items nor forgets the risk windows of recent ones
  (`NewsStore.restore`).

One failing feed is logged and counted (`FeedStatus`) and never stops the others or the loop.
The waits (poll interval and backoff) go through injectable functions, so tests run without
sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import httpx

from sigma.regime.news import (
    FeedEntry,
    NewsEvent,
    NewsHandler,
    NewsItem,
    parse_feed,
    parse_json_items,
)
from sigma.store.db import session_scope
from sigma.store.handles import SessionFactory
from sigma.store.news import add_news, known_keys, news_since

__all__ = ["FeedStatus", "NewsFeedPoller", "NewsStore", "read_drop"]

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
Wait = Callable[[asyncio.Event, float], Awaitable[None]]
Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


async def wait_or_stop(stop: asyncio.Event, seconds: float) -> None:
    """Return after `seconds`, or as soon as `stop` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


class FeedError(Exception):
    """A feed could not be fetched or read."""


@dataclass(slots=True)
class FeedStatus:
    """What the poller knows about one URL."""

    url: str
    etag: str | None = None
    last_modified: str | None = None
    last_status: int | None = None
    last_polled: datetime | None = None
    new_items: int = 0
    failures: int = 0
    last_error: str | None = None


def _move(path: Path, folder: Path) -> Path:
    """Move `path` into `folder` (created), never overwriting an earlier file of that name."""
    folder.mkdir(exist_ok=True)
    target = folder / path.name
    n = 1
    while target.exists():
        target = folder / f"{path.stem}.{n}{path.suffix}"
        n += 1
    return path.rename(target)


class NewsStore:
    """`news_items`: every item taken in, unique by its feed key."""

    def __init__(self, factory: SessionFactory) -> None:
        self.factory = factory

    def add_new(self, entries: Sequence[FeedEntry], now: datetime) -> list[FeedEntry]:
        """Store the entries whose key is not stored yet; returns those (in order)."""
        if not entries:
            return []
        with session_scope(self.factory) as session:
            known = known_keys(session, [e.key for e in entries])
            fresh = []
            for entry in entries:
                if entry.key in known:
                    continue
                known.add(entry.key)
                item = entry.item
                add_news(
                    session,
                    entry.key,
                    ts=item.ts,
                    headline=item.headline,
                    body=item.body,
                    source=item.source,
                    symbols=item.symbols,
                    fetched_at=now,
                )
                fresh.append(entry)
        return fresh

    def since(self, start: datetime) -> list[NewsItem]:
        """Items published at or after `start`, oldest first."""
        with self.factory() as session:
            rows = news_since(session, start)
        return [NewsItem(r.ts, r.headline, r.body, r.source, tuple(r.symbols or ())) for r in rows]

    def restore(self, handler: NewsHandler, now: datetime) -> list[NewsEvent]:
        """Score again the items recent enough to still hold a risk window at `now` (what a
        restarted handler must not forget)."""
        return handler.ingest_all(self.since(now - handler.config.risk_window))


DROP_SUFFIXES = (".json", ".jsonl", ".xml", ".rss", ".atom")
DONE, FAILED = "done", "failed"


def read_drop(path: Path) -> list[FeedEntry]:
    """The items of a dropped file: RSS/Atom (``.xml``, ``.rss``, ``.atom``) or JSON
    (``.json`` array/object, ``.jsonl`` lines). A JSON item is identified by its headline and
    time, so the same item dropped twice (in any file) is taken once. Raises ValueError."""
    data = path.read_bytes()
    if path.suffix.lower() in (".xml", ".rss", ".atom"):
        return parse_feed(data, f"drop:{path.name}")
    try:
        items = parse_json_items(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
    entries = []
    for item in items:
        if not item.source:
            item = replace(item, source=f"drop:{path.name}")
        identity = f"drop|{item.headline}|{item.ts.isoformat()}"
        entries.append(FeedEntry(hashlib.sha256(identity.encode()).hexdigest(), item))
    return entries


class NewsFeedPoller:
    """Polls RSS/Atom URLs and a drop folder into a `NewsHandler` (see the module docstring).

    `drop_dir`: files with a news suffix (`DROP_SUFFIXES`) dropped there are read at each poll
    and moved to ``done/`` - or to ``failed/`` with a ``.error`` note when they cannot be read.
    Write a file under another name and rename it into place, so it is never read half-written.
    """

    def __init__(
        self,
        urls: Sequence[str],
        handler: NewsHandler,
        *,
        drop_dir: Path | None = None,
        store: NewsStore | None = None,
        client: httpx.AsyncClient | None = None,
        interval: float = 300.0,
        timeout: float = 10.0,
        retries: int = 2,
        backoff: float = 1.0,
        max_bytes: int = 5_000_000,
        remember: int = 10_000,
        clock: Clock = _now,
        sleep: Sleep = asyncio.sleep,
        wait: Wait = wait_or_stop,
    ) -> None:
        if interval <= 0 or retries < 0 or max_bytes < 1 or remember < 1:
            raise ValueError("need interval > 0, retries >= 0, max_bytes >= 1, remember >= 1")
        self.handler = handler
        self.store = store
        self.interval = interval
        self.retries = retries
        self.backoff = backoff
        self.max_bytes = max_bytes
        self.feeds = {url: FeedStatus(url) for url in dict.fromkeys(urls)}
        self.drop_dir = drop_dir
        self._remember = remember
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._clock = clock
        self._sleep = sleep
        self._wait = wait
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout), follow_redirects=True
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Poll every feed, then wait `interval` (or until `stop`), until `stop` is set."""
        try:
            while not stop.is_set():
                await self.poll_once()
                await self._wait(stop, self.interval)
        finally:
            await self.aclose()

    async def poll_once(self) -> list[NewsEvent]:
        """Fetch every feed and read the drop folder once; the events of the items not seen
        before."""
        events: list[NewsEvent] = []
        for status in self.feeds.values():
            try:
                entries = await self._fetch(status)
            except FeedError as exc:
                status.failures += 1
                status.last_error = str(exc)
                log.warning("news feed %s: %s", status.url, exc)
                continue
            status.last_error = None
            fresh = await self._take(entries)
            status.new_items += len(fresh)
            events.extend(self.handler.ingest_all(e.item for e in fresh))
        if self.drop_dir is not None:
            events.extend(await self._read_drops(self.drop_dir))
        return events

    async def _take(self, entries: list[FeedEntry]) -> list[FeedEntry]:
        """The entries never seen before (in memory, then in the store)."""
        fresh = self._unseen(entries)
        if fresh and self.store is not None:
            try:
                fresh = await asyncio.to_thread(self.store.add_new, fresh, self._clock())
            except Exception:
                log.exception("storing news items failed; scoring them anyway")
        return fresh

    async def _read_drops(self, folder: Path) -> list[NewsEvent]:
        events: list[NewsEvent] = []
        if not folder.is_dir():
            return events
        files = sorted(
            p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in DROP_SUFFIXES
        )
        for path in files:
            try:
                entries = read_drop(path)
            except (OSError, ValueError) as exc:
                log.warning("news drop %s: %s", path.name, exc)
                _move(path, folder / FAILED).with_name(f"{path.name}.error").write_text(
                    f"{exc}\n", encoding="utf-8"
                )
                continue
            fresh = await self._take(entries)
            events.extend(self.handler.ingest_all(e.item for e in fresh))
            _move(path, folder / DONE)
        return events

    async def aclose(self) -> None:
        """Close the HTTP client if the poller created it."""
        if self._owns_client:
            await self._client.aclose()

    def _unseen(self, entries: list[FeedEntry]) -> list[FeedEntry]:
        fresh = []
        for entry in entries:
            if entry.key in self._seen:
                continue
            self._seen[entry.key] = None
            fresh.append(entry)
        while len(self._seen) > self._remember:
            self._seen.popitem(last=False)
        return fresh

    async def _fetch(self, status: FeedStatus) -> list[FeedEntry]:
        headers = {"accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9"}
        if status.etag:
            headers["if-none-match"] = status.etag
        if status.last_modified:
            headers["if-modified-since"] = status.last_modified
        problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                await self._sleep(self.backoff * 2 ** (attempt - 1))
            now = self._clock()
            status.last_polled = now
            try:
                code, body, answer = await self._get(status.url, headers)
            except httpx.TransportError as exc:  # timeouts, refused connections, resets
                problem = f"{type(exc).__name__} {exc}".strip()
                continue
            status.last_status = code
            if code == 304:
                return []
            if code == 429 or code >= 500:
                problem = f"HTTP {code}"
                continue
            if code >= 300:
                raise FeedError(f"HTTP {code}")
            try:
                entries = parse_feed(body, status.url, default_ts=now)
            except ValueError as exc:
                raise FeedError(str(exc)) from None
            # Only a feed that was read may be skipped as unchanged next time.
            status.etag = answer.get("etag") or status.etag
            status.last_modified = answer.get("last-modified") or status.last_modified
            return entries
        raise FeedError(f"{problem} after {self.retries + 1} attempts")

    async def _get(self, url: str, headers: dict[str, str]) -> tuple[int, bytes, httpx.Headers]:
        async with self._client.stream("GET", url, headers=headers) as response:
            chunks, size = [], 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self.max_bytes:
                    raise FeedError(f"feed larger than {self.max_bytes} bytes")
                chunks.append(chunk)
            return response.status_code, b"".join(chunks), response.headers

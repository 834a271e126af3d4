"""NewsHandler: market news in, sentiment and risk windows out.

News arrives as `NewsItem`s from any source: pushed one at a time (`ingest`, what an API
webhook calls), a dropped JSON or JSON-lines file (`load_json`), an RSS/Atom file
(`load_feed`), or RSS/Atom URLs polled by `sigma.regime.news_feed.NewsFeedPoller` (feeds the
operator configured; no model is downloaded).

Sentiment is a transparent lexicon score: every word found in the lexicon adds its weight, a
negation ("not", "no", ...) in the two words before flips it, and the sum is squashed into
[-1, 1] with tanh. The matched words are kept on the event, so anyone can see why a headline
scored as it did. Symbols come from the item's own tags plus keyword matches (``"bitcoin"`` ->
``BTC``).

An event at or below ``high_risk_below`` opens a high-risk window of ``risk_window`` for its
symbols: the adaptive loop then treats the market as ``high_vol``, and at or below
``halt_below`` it also asks for new entries to be halted. Windows are keyed on the news
timestamp, so a backtest replaying old news sees them exactly where live trading did.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from sigma.domain import utc

__all__ = [
    "DEFAULT_LEXICON",
    "FeedEntry",
    "Lexicon",
    "NewsConfig",
    "NewsEvent",
    "NewsHandler",
    "NewsItem",
    "parse_feed",
    "parse_json_items",
    "parse_timestamp",
]

_WORD = re.compile(r"[a-z][a-z'-]*")
_NEGATIONS = frozenset({"not", "no", "never", "without", "denies", "denied", "isn't", "wasn't"})

DEFAULT_LEXICON: Mapping[str, float] = {
    # strongly negative: events that move markets violently
    "hack": -3.0,
    "hacked": -3.0,
    "exploit": -3.0,
    "bankrupt": -3.0,
    "bankruptcy": -3.0,
    "insolvent": -3.0,
    "fraud": -3.0,
    "collapse": -3.0,
    "crash": -2.5,
    "default": -2.5,
    "halted": -2.0,
    "ban": -2.0,
    "banned": -2.0,
    "lawsuit": -1.5,
    "sued": -1.5,
    "investigation": -1.5,
    "probe": -1.5,
    "selloff": -1.5,
    "plunge": -2.0,
    "plunges": -2.0,
    "downgrade": -1.5,
    "outage": -1.5,
    "delay": -1.0,
    "loss": -1.0,
    "losses": -1.0,
    "weak": -1.0,
    "fears": -1.0,
    "concern": -0.5,
    "volatile": -0.5,
    # positive
    "approval": 2.0,
    "approved": 2.0,
    "record": 1.5,
    "surge": 1.5,
    "surges": 1.5,
    "rally": 1.5,
    "upgrade": 1.5,
    "partnership": 1.0,
    "adoption": 1.0,
    "growth": 1.0,
    "profit": 1.0,
    "beats": 1.0,
    "strong": 1.0,
    "gain": 1.0,
    "gains": 1.0,
    "recovery": 1.0,
}


@dataclass(frozen=True, slots=True)
class Lexicon:
    """Word weights; `score` explains itself through the words it matched."""

    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_LEXICON))
    scale: float = 3.0

    def score(self, text: str) -> tuple[float, tuple[str, ...]]:
        """Sentiment in [-1, 1] and the matched words (negated ones prefixed with ``not ``)."""
        words = _WORD.findall(text.lower())
        total, matched = 0.0, []
        for i, word in enumerate(words):
            weight = self.weights.get(word)
            if weight is None:
                continue
            if any(w in _NEGATIONS for w in words[max(0, i - 2) : i]):
                weight, word = -weight, f"not {word}"
            total += weight
            matched.append(word)
        return math.tanh(total / self.scale), tuple(matched)


@dataclass(frozen=True, slots=True)
class NewsItem:
    """A headline (and optional body) published at `ts`; `symbols` are explicit tags."""

    ts: datetime
    headline: str
    body: str = ""
    source: str = ""
    symbols: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "ts", utc(self.ts))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NewsItem:
        """From a JSON object: ``ts``/``published``, ``headline``/``title``,
        ``body``/``summary``, ``source``, ``symbols`` (list or comma-separated)."""
        stamp = data.get("ts") or data.get("published")
        headline = data.get("headline") or data.get("title")
        if not stamp or not headline:
            raise ValueError(f"a news item needs a timestamp and a headline: {dict(data)!r}")
        symbols = data.get("symbols") or ()
        if isinstance(symbols, str):
            symbols = [s for s in symbols.split(",") if s.strip()]
        return cls(
            parse_timestamp(str(stamp)),
            str(headline),
            str(data.get("body") or data.get("summary") or ""),
            str(data.get("source") or ""),
            tuple(str(s).strip().upper() for s in symbols),
        )


@dataclass(frozen=True, slots=True)
class NewsEvent:
    """A scored news item and what it means for risk."""

    item: NewsItem
    symbols: tuple[str, ...]
    sentiment: float
    matched: tuple[str, ...]
    high_risk: bool
    halt_entries: bool
    risk_until: datetime | None

    def describe(self) -> str:
        """One line for logs and commentary."""
        words = ", ".join(self.matched) or "no lexicon words"
        return f"{self.item.headline!r} sentiment {self.sentiment:+.2f} ({words})"


@dataclass(frozen=True, slots=True)
class NewsConfig:
    """Thresholds on sentiment and how long a high-risk window lasts."""

    high_risk_below: float = -0.5
    halt_below: float = -0.8
    risk_window: timedelta = timedelta(hours=2)
    keep: int = 1000

    def __post_init__(self) -> None:
        if self.halt_below > self.high_risk_below:
            raise ValueError("halt_below must not exceed high_risk_below")


def parse_timestamp(text: str) -> datetime:
    """ISO 8601 or RFC 822 (RSS) text as an aware UTC datetime (naive means UTC)."""
    text = text.strip()
    try:
        return utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        pass
    try:
        return utc(parsedate_to_datetime(text))
    except (TypeError, ValueError):
        raise ValueError(f"not a timestamp: {text!r}") from None


def parse_json_items(text: str) -> list[NewsItem]:
    """News items from JSON text: an array, an object with an ``items`` array, or JSON lines
    (raises ValueError, naming the problem, for anything else)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = [json.loads(line) for line in text.splitlines() if line.strip()]
    if isinstance(data, dict):
        data = data.get("items", [])
    if not isinstance(data, list) or not all(isinstance(e, dict) for e in data):
        raise ValueError("expected a list of news objects")
    return [NewsItem.from_dict(entry) for entry in data]


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One item of an RSS/Atom feed and its identity: `key` is a hash of the item's guid (RSS)
    or id (Atom), else its link, else its title and date - what dedupes repeated fetches."""

    key: str
    item: NewsItem


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_feed(data: bytes, source: str, *, default_ts: datetime | None = None) -> list[FeedEntry]:
    """The items of an RSS 2.0 or Atom document, in document order.

    An item without a date gets `default_ts` (the fetch time for a URL); without one it is an
    error, as for a file, where no fetch time means anything. Raises ValueError for a document
    that is not XML."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise ValueError(f"{source}: not an RSS/Atom document: {exc}") from None
    entries = []
    for node in root.iter():
        if _local(node.tag) not in ("item", "entry"):
            continue
        fields: dict[str, str] = {}
        for child in node:
            name = _local(child.tag)
            if name == "link" and child.get("href"):
                # Atom: <link href=".."/>; the first (or the rel="alternate") one is the page.
                if "link" not in fields or child.get("rel", "alternate") == "alternate":
                    fields["link"] = child.get("href", "")
                continue
            fields.setdefault(name, (child.text or "").strip())
        stamp = fields.get("pubDate") or fields.get("published") or fields.get("updated")
        if not stamp and default_ts is not None:
            stamp = default_ts.isoformat()
        item = NewsItem.from_dict(
            {
                "title": fields.get("title"),
                "summary": fields.get("description") or fields.get("summary"),
                "published": stamp,
                "source": source,
            }
        )
        identity = (
            fields.get("guid")
            or fields.get("id")
            or fields.get("link")
            or f"{item.headline}|{item.ts.isoformat()}"
        )
        key = hashlib.sha256(f"{source}|{identity}".encode()).hexdigest()
        entries.append(FeedEntry(key, item))
    return entries


class NewsHandler:
    """Scores news and answers "is `symbol` in a high-risk window at `ts`?"."""

    def __init__(
        self,
        config: NewsConfig | None = None,
        *,
        lexicon: Lexicon | None = None,
        symbol_keywords: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        self.config = config or NewsConfig()
        self.lexicon = lexicon or Lexicon()
        self._keywords = {
            sym.upper(): tuple(k.lower() for k in words)
            for sym, words in (symbol_keywords or {}).items()
        }
        self.events: list[NewsEvent] = []

    def ingest(self, item: NewsItem) -> NewsEvent:
        """Score one item and remember it (the push entry point)."""
        text = f"{item.headline}. {item.body}"
        sentiment, matched = self.lexicon.score(text)
        symbols = set(item.symbols)
        lowered = text.lower()
        for symbol, words in self._keywords.items():
            if any(re.search(rf"\b{re.escape(w)}\b", lowered) for w in words):
                symbols.add(symbol)
        cfg = self.config
        high_risk = sentiment <= cfg.high_risk_below
        event = NewsEvent(
            item,
            tuple(sorted(symbols)),
            sentiment,
            matched,
            high_risk,
            sentiment <= cfg.halt_below,
            item.ts + cfg.risk_window if high_risk else None,
        )
        self.events.append(event)
        self.events.sort(key=lambda e: e.item.ts)
        del self.events[: -cfg.keep]
        return event

    def ingest_all(self, items: Iterable[NewsItem]) -> list[NewsEvent]:
        """Score several items."""
        return [self.ingest(item) for item in items]

    def load_json(self, path: str | Path) -> list[NewsEvent]:
        """A JSON array of items, an object with an ``items`` array, or JSON lines."""
        return self.ingest_all(parse_json_items(Path(path).read_text(encoding="utf-8")))

    def load_feed(self, path: str | Path) -> list[NewsEvent]:
        """An RSS 2.0 or Atom file (local; Python's expat refuses entity-expansion bombs)."""
        entries = parse_feed(Path(path).read_bytes(), str(path))
        return self.ingest_all(entry.item for entry in entries)

    def active(self, symbol: str, ts: datetime) -> NewsEvent | None:
        """The worst high-risk event whose window covers `ts` for `symbol`, if any."""
        worst: NewsEvent | None = None
        # Newest first; windows all last `risk_window`, so older events cannot cover `ts`.
        oldest = ts - self.config.risk_window
        for event in reversed(self.events):
            if event.item.ts <= oldest:
                break
            if (
                event.risk_until is not None
                and event.item.ts <= ts < event.risk_until
                and symbol in event.symbols
                and (worst is None or event.sentiment < worst.sentiment)
            ):
                worst = event
        return worst

    def recent(self, symbol: str, ts: datetime, within: timedelta) -> list[NewsEvent]:
        """Events about `symbol` published in the `within` before `ts`, newest first."""
        return [
            e
            for e in reversed(self.events)
            if symbol in e.symbols and ts - within <= e.item.ts <= ts
        ]

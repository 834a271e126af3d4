from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from sigma.regime.news import Lexicon, NewsConfig, NewsHandler, NewsItem, parse_timestamp
from tests.regime.conftest import T0

RSS = """<?xml version="1.0"?>
<rss version="2.0"><channel><title>wire</title>
<item><title>Bitcoin exchange hacked, withdrawals halted</title>
<description>Funds lost in exploit</description>
<pubDate>Mon, 01 Jan 2024 10:00:00 +0000</pubDate></item>
<item><title>Ether rally continues</title><pubDate>Mon, 01 Jan 2024 11:00:00 +0000</pubDate></item>
</channel></rss>"""

ATOM = """<?xml version="1.0"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>
<entry><title>ETF approval for bitcoin</title><summary>record inflows</summary>
<updated>2024-01-01T12:00:00Z</updated></entry></feed>"""


def handler() -> NewsHandler:
    return NewsHandler(symbol_keywords={"btc": ["bitcoin", "BTC"], "ETH": ["ether"]})


def test_lexicon_scores_transparently() -> None:
    lex = Lexicon()
    score, words = lex.score("Exchange hacked; massive fraud")
    assert score < -0.8 and words == ("hacked", "fraud")
    score, words = lex.score("Regulator says there was no fraud and not a hack")
    assert score > 0 and words == ("not fraud", "not hack")
    assert lex.score("nothing to see") == (0.0, ())
    assert Lexicon({"moon": 3.0}, scale=1.0).score("to the moon")[0] > 0.99


def test_items_map_to_symbols_and_risk_windows() -> None:
    h = handler()
    bad = h.ingest(NewsItem(T0, "Bitcoin exchange hacked", "funds lost in exploit"))
    assert bad.symbols == ("BTC",) and bad.high_risk and bad.halt_entries
    assert bad.risk_until == T0 + timedelta(hours=2)
    mild = h.ingest(NewsItem(T0, "Ether faces concern", symbols=("XRP",)))
    assert mild.symbols == ("ETH", "XRP") and not mild.high_risk and mild.risk_until is None
    assert "sentiment" in bad.describe() and "hacked" in bad.describe()
    assert h.active("BTC", T0 + timedelta(minutes=30)) is bad
    assert h.active("BTC", T0 + timedelta(hours=2)) is None
    assert h.active("BTC", T0 - timedelta(minutes=1)) is None
    assert h.active("ETH", T0 + timedelta(minutes=1)) is None
    worse = h.ingest(NewsItem(T0 + timedelta(minutes=5), "BTC fraud, bankrupt, collapse"))
    assert h.active("BTC", T0 + timedelta(minutes=30)) is worse
    assert h.recent("BTC", T0 + timedelta(minutes=10), timedelta(hours=1)) == [worse, bad]


def test_events_are_bounded_and_sorted() -> None:
    h = NewsHandler(NewsConfig(keep=2))
    h.ingest(NewsItem(T0 + timedelta(hours=1), "b"))
    h.ingest(NewsItem(T0, "a"))
    h.ingest(NewsItem(T0 + timedelta(hours=2), "c"))
    assert [e.item.headline for e in h.events] == ["b", "c"]
    with pytest.raises(ValueError, match="halt_below"):
        NewsConfig(halt_below=0.0, high_risk_below=-0.5)


def test_json_files_array_object_and_lines(tmp_path: Path) -> None:
    items = [
        {"ts": "2024-01-01T10:00:00Z", "headline": "BTC plunges on ban", "symbols": "BTC, ETH"},
        {"published": "2024-01-01T11:00:00", "title": "Ether gains", "summary": "strong"},
    ]
    array = tmp_path / "a.json"
    array.write_text(json.dumps(items))
    events = handler().load_json(array)
    assert [e.symbols for e in events] == [("BTC", "ETH"), ("ETH",)]
    assert events[1].item.body == "strong" and events[1].item.ts.tzinfo is not None
    obj = tmp_path / "b.json"
    obj.write_text(json.dumps({"items": items}))
    assert len(handler().load_json(obj)) == 2
    lines = tmp_path / "c.jsonl"
    lines.write_text("\n".join(json.dumps(i) for i in items) + "\n\n")
    assert len(handler().load_json(lines)) == 2
    broken = tmp_path / "d.json"
    broken.write_text(json.dumps([{"headline": "no time"}]))
    with pytest.raises(ValueError, match="timestamp and a headline"):
        handler().load_json(broken)


def test_rss_and_atom_files(tmp_path: Path) -> None:
    rss = tmp_path / "wire.xml"
    rss.write_text(RSS)
    events = handler().load_feed(rss)
    assert [e.symbols for e in events] == [("BTC",), ("ETH",)]
    assert events[0].halt_entries and events[0].item.ts == T0 + timedelta(hours=10)
    assert events[1].sentiment > 0
    atom = tmp_path / "feed.atom"
    atom.write_text(ATOM)
    (event,) = handler().load_feed(atom)
    assert event.symbols == ("BTC",) and event.sentiment > 0.5
    assert event.item.body == "record inflows"


def test_parse_timestamp() -> None:
    assert parse_timestamp("2024-01-01T00:00:00Z") == T0
    assert parse_timestamp("2024-01-01T01:00:00+01:00") == T0
    assert parse_timestamp("Mon, 01 Jan 2024 00:00:00 GMT") == T0
    with pytest.raises(ValueError, match="not a timestamp"):
        parse_timestamp("yesterday")

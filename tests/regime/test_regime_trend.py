from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sigma.feeds.synthetic import generate_bars
from sigma.regime.commentary import CommentaryModule
from sigma.regime.detector import RegimeState, detect_frame
from sigma.regime.news import NewsHandler, NewsItem
from sigma.regime.trend import TrendReading, TrendScanner, save_trends
from sigma.store.db import session_scope
from sigma.store.models import TrendData


def test_scans_many_symbols_incrementally_and_ranks_them() -> None:
    frames = {f"S{i}": generate_bars(1_200, seed=i)[0] for i in range(4)}
    scanner = TrendScanner()
    halves = {k: v.iloc[:700] for k, v in frames.items()}
    scanner.scan(halves)
    readings = scanner.scan(frames)
    assert [r.symbol for r in readings] == sorted(
        frames, key=lambda s: (-readings[[r.symbol for r in readings].index(s)].strength, s)
    )
    strengths = [r.strength for r in readings]
    assert strengths == sorted(strengths, reverse=True)
    for r in readings:
        full = detect_frame(frames[r.symbol], symbol=r.symbol)[-1]
        assert r.regime is full.regime and r.ts == full.ts  # same as one pass over all bars
        assert r.data()["features"] == full.features.as_dict()  # type: ignore[union-attr]
    assert [r.symbol for r in scanner.scan({"S1": frames["S1"]})] == ["S1"]


def test_readings_are_stored_and_updated(factory: sessionmaker[Session]) -> None:
    frames = {"A": generate_bars(300, seed=1)[0], "B": generate_bars(100, seed=2)[0]}
    readings = TrendScanner().scan(frames)
    with session_scope(factory) as session:
        assert save_trends(session, readings, "1m") == 2
    with session_scope(factory) as session:
        assert save_trends(session, readings, "1m") == 2  # same bar: updated, not duplicated
    with session_scope(factory) as session:
        rows = {r.symbol: r for r in session.scalars(select(TrendData))}
    assert set(rows) == {"A", "B"}
    assert rows["B"].trend == "unknown" and rows["B"].data["features"] is None
    assert rows["A"].data["reason"] and rows["A"].strength is not None
    # The plain-language note goes with each reading (the API's trend readings show it).
    assert rows["A"].data["commentary"].startswith("A ")
    assert rows["A"].data["commentary"] == CommentaryModule().generate(readings_by(readings, "A"))
    assert rows["B"].data["commentary"] == "B: not enough history yet to judge the market."


def readings_by(readings: list[TrendReading], symbol: str) -> RegimeState:
    return next(r.state for r in readings if r.symbol == symbol)


def test_the_note_of_a_reading_mentions_the_symbols_recent_news() -> None:
    frame = generate_bars(400, seed=3)[0]
    last = frame.index[-1].to_pydatetime()
    news = NewsHandler(symbol_keywords={"A": ["acme"]})
    news.ingest(NewsItem(last - timedelta(minutes=30), "Acme exchange hacked"))
    news.ingest(NewsItem(last - timedelta(hours=5), "Acme record profit"))  # outside the window
    news.ingest(NewsItem(last - timedelta(minutes=10), "Other coin rally"))  # not about A
    (reading,) = TrendScanner(news=news).scan({"A": frame})
    assert [e.item.headline for e in reading.news] == ["Acme exchange hacked"]
    note = reading.data()["commentary"]
    assert "News (negative -0.76): Acme exchange hacked. Treated as a high-risk window." in note
    assert note == CommentaryModule().generate(reading.state, reading.news)
    (plain,) = TrendScanner().scan({"A": frame})
    assert plain.news == () and "News" not in plain.data()["commentary"]

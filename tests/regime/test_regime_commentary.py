from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from sigma.regime.commentary import CommentaryModule
from sigma.regime.detector import Regime
from sigma.regime.features import Features
from sigma.regime.news import NewsHandler, NewsItem
from tests.regime.conftest import T0
from tests.regime.helpers import state

CALM = Features(0.3, 0.1, 15.0, 1.0, 0.5, 1.0)


def test_unknown_while_warming_up() -> None:
    note = CommentaryModule().generate(state(Regime.UNKNOWN, 0))
    assert note == "SYM: not enough history yet to judge the market."


def test_each_regime_reads_plainly_and_deterministically() -> None:
    module = CommentaryModule(bar_label="minutes")
    cases = {
        Regime.TREND_UP: (Features(3.5, 0.6, 45.0, 1.0, 0.5, 1.0), "trending up", "strong upward"),
        Regime.TREND_DOWN: (
            Features(-2.0, 0.3, 20.0, 0.7, 0.2, 0.7),
            "trending down",
            "clear downward",
        ),
        Regime.RANGE: (CALM, "sideways", "no meaningful direction"),
        Regime.HIGH_VOL: (
            Features(0.5, 0.1, 20.0, 2.5, 0.98, None),
            "volatile",
            "Volatility is high",
        ),
    }
    for regime, (features, phrase, detail) in cases.items():
        s = replace(state(regime, 0), features=features)
        note = module.generate(s)
        assert note == module.generate(s)
        assert phrase in note and detail in note and "for 5 minutes" in note
    low = replace(state(Regime.RANGE, 0), features=CALM, probability=0.4)
    assert "low confidence" in module.generate(low)
    mid = replace(state(Regime.RANGE, 0), features=CALM, probability=0.7)
    assert "moderate confidence" in module.generate(mid)
    assert "volume is low (0.7x)" in module.generate(
        replace(state(Regime.TREND_DOWN, 0), features=cases[Regime.TREND_DOWN][0])
    )


def test_news_lines() -> None:
    news = NewsHandler()
    halt = news.ingest(NewsItem(T0, "Exchange hacked, fraud suspected", symbols=("SYM",)))
    risky = news.ingest(NewsItem(T0, "Exchange sued over losses", symbols=("SYM",)))
    good = news.ingest(NewsItem(T0 + timedelta(minutes=1), "Record rally", symbols=("SYM",)))
    s = replace(state(Regime.HIGH_VOL, 0), features=CALM)
    note = CommentaryModule().generate(s, [halt, risky])
    assert "New entries are halted." in note and "high-risk window" in note
    assert "News (positive" in CommentaryModule().generate(s, [good])

"""TrendScanner: the regime and trend strength of many symbols at once.

The scanner owns one `RegimeDetector` and feeds it, per symbol, only the bars newer than the
last scan, so repeated scans (a scheduled job) are incremental and agree with what the live
detector would say on the same bars. Readings are ranked by trend strength and can be stored in
`trend_data` with `save_trends`, each with the `CommentaryModule`'s plain-language note (what
the API's trend readings and the performance reports show). Given a `NewsHandler`, each reading
carries the symbol's news of the last risk window, which the note then mentions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from sigma.regime.commentary import CommentaryModule
from sigma.regime.detector import DetectorConfig, Regime, RegimeDetector, RegimeState, frame_bars
from sigma.regime.news import NewsEvent, NewsHandler
from sigma.store.handles import Session
from sigma.store.regime_trends import Trend, put_trends

__all__ = ["TrendReading", "TrendScanner", "save_trends"]


@dataclass(frozen=True, slots=True)
class TrendReading:
    """One symbol's state at its latest bar."""

    symbol: str
    ts: datetime
    regime: Regime
    strength: float
    state: RegimeState
    news: tuple[NewsEvent, ...] = ()  # newest first

    def data(self) -> dict[str, Any]:
        """The explanation stored with the reading."""
        features = self.state.features
        return {
            "probability": round(self.state.probability, 4),
            "bars_in_regime": self.state.bars_in_regime,
            "reason": self.state.reason,
            "features": None if features is None else features.as_dict(),
            "commentary": CommentaryModule().generate(self.state, self.news),
        }


class TrendScanner:
    """Scans symbols' bar frames (index ``ts`` UTC; open, high, low, close, volume)."""

    def __init__(
        self, config: DetectorConfig | None = None, *, news: NewsHandler | None = None
    ) -> None:
        self.detector = RegimeDetector(config)
        self.news = news
        self._last: dict[str, RegimeState] = {}

    def scan(self, frames: Mapping[str, pd.DataFrame]) -> list[TrendReading]:
        """Feed each symbol its new bars; readings for every symbol with data, strongest
        trend first (ties by symbol, so the order is deterministic)."""
        for symbol, frame in frames.items():
            seen = self._last.get(symbol)
            fresh = frame if seen is None else frame[frame.index > pd.Timestamp(seen.ts)]
            for bar in frame_bars(fresh, symbol):
                self._last[symbol] = self.detector.update(bar)
        readings = [
            TrendReading(s.symbol, s.ts, s.regime, s.trend_strength, s, self._news(s))
            for symbol, s in self._last.items()
            if symbol in frames
        ]
        return sorted(readings, key=lambda r: (-r.strength, r.symbol))

    def _news(self, state: RegimeState) -> tuple[NewsEvent, ...]:
        news = self.news
        if news is None:
            return ()
        return tuple(news.recent(state.symbol, state.ts, news.config.risk_window))


def save_trends(session: Session, readings: list[TrendReading], timeframe: str) -> int:
    """Insert or update one `trend_data` row per reading; returns the rows written."""
    trends = [Trend(r.symbol, r.ts, r.regime.value, r.strength, r.data()) for r in readings]
    return put_trends(session, trends, timeframe)

"""CommentaryModule: a short plain-language market note per symbol, from templates.

The note is built only from the detector's state (regime, how long it has held, the features
behind it) and the news events given, so the same inputs always give the same words; no
language model is involved.
"""

from __future__ import annotations

from collections.abc import Sequence

from sigma.regime.detector import Regime, RegimeState
from sigma.regime.news import NewsEvent

__all__ = ["CommentaryModule"]

_REGIME_PHRASES = {
    Regime.TREND_UP: "is trending up",
    Regime.TREND_DOWN: "is trending down",
    Regime.RANGE: "is moving sideways in a range",
    Regime.HIGH_VOL: "is volatile",
}
_ADVICE = {
    Regime.TREND_UP: "Trend-following setups fit; fading strength is risky.",
    Regime.TREND_DOWN: "Trend-following setups fit; buying dips is risky.",
    Regime.RANGE: "Mean-reversion setups fit; breakouts tend to fail.",
    Regime.HIGH_VOL: "Expect wide swings; smaller positions and wider stops.",
}


class CommentaryModule:
    """Writes the note; `bar_label` names the bar unit in the text (e.g. "bars", "hours")."""

    def __init__(self, bar_label: str = "bars") -> None:
        self.bar_label = bar_label

    def generate(self, state: RegimeState, news: Sequence[NewsEvent] = ()) -> str:
        """The commentary for one symbol's latest state and its recent news."""
        symbol = state.symbol
        if state.regime is Regime.UNKNOWN or state.features is None:
            return f"{symbol}: not enough history yet to judge the market."
        f = state.features
        held = f"for {state.bars_in_regime} {self.bar_label}"
        confidence = (
            f"{state.reason.split(':')[0]} override"
            if state.forced
            else _confidence(state.probability)
        )
        parts = [
            f"{symbol} {_REGIME_PHRASES[state.regime]} {held} ({confidence}, "
            f"{state.probability:.0%}).",
            f"Drift t={f.trend_t:+.1f} with efficiency {f.efficiency:.2f} and ADX {f.adx:.0f}: "
            f"{_trend_words(f.trend_t, f.adx)}.",
            f"Volatility is {_level_words(f.vol_ratio)} ({f.vol_ratio:.1f}x normal, "
            f"{f.vol_percentile:.0%} percentile)"
            + (
                "."
                if f.volume_ratio is None
                else f"; volume is {_level_words(f.volume_ratio)} ({f.volume_ratio:.1f}x)."
            ),
            _ADVICE[state.regime],
        ]
        for event in news[:2]:
            tone = "negative" if event.sentiment < 0 else "positive"
            line = f"News ({tone} {event.sentiment:+.2f}): {event.item.headline}."
            if event.halt_entries:
                line += " New entries are halted."
            elif event.high_risk:
                line += " Treated as a high-risk window."
            parts.append(line)
        return " ".join(parts)


def _confidence(probability: float) -> str:
    if probability >= 0.9:
        return "high confidence"
    if probability >= 0.6:
        return "moderate confidence"
    return "low confidence"


def _trend_words(trend_t: float, adx: float) -> str:
    size = abs(trend_t)
    direction = "upward" if trend_t > 0 else "downward"
    if size >= 3 or adx >= 40:
        return f"a strong {direction} push"
    if size >= 1.5:
        return f"a clear {direction} lean"
    return "no meaningful direction"


def _level_words(ratio: float) -> str:
    if ratio >= 1.6:
        return "high"
    if ratio <= 0.75:
        return "low"
    return "normal"

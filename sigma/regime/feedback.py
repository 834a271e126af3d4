"""FeedbackMechanism and QualityAssessment: did the adjustments help, and is the strategy sound?

`FeedbackMechanism` keeps the realised round trips of every (strategy, symbol), each tagged with
the regime at entry and a variant:

* ``adjusted`` - a live trade entered while regime-adjusted parameters were in force;
* ``live`` - a live trade entered with the baseline parameters;
* ``baseline`` - a trade of the shadow copy that always runs the baseline parameters on the
  same bars (the counterfactual "what if we had not adjusted").

`QualityAssessment` reads them. Per regime it compares ``adjusted`` with ``baseline`` trades;
when the adjusted ones are worse by more than ``rollback_margin`` per trade over at least
``min_trades`` of each, the verdict is a rollback (the adjuster returns to the baseline and
stops using that regime's preset). Over the last ``window`` live trades it grades the strategy
itself: mean return per trade and hit rate against ``throttle_below`` and ``disable_below``.
Both are plain functions of the recorded trades, so a backtest and a live run that saw the same
trades reach the same verdicts.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime

from sigma.domain import Trade
from sigma.regime.detector import Regime

__all__ = [
    "FEEDBACK",
    "FeedbackMechanism",
    "PerformanceStats",
    "QualityAssessment",
    "QualityConfig",
    "QualityVerdict",
    "TradeOutcome",
]

FEEDBACK = "regime.feedback"
VARIANTS = ("adjusted", "live", "baseline")


@dataclass(frozen=True, slots=True)
class TradeOutcome:
    """One closed round trip as the feedback loop sees it."""

    strategy: str
    symbol: str
    regime: Regime
    variant: str
    return_pct: float
    entry_ts: datetime
    exit_ts: datetime

    @classmethod
    def of(cls, trade: Trade, strategy: str, regime: Regime, variant: str) -> TradeOutcome:
        """From an engine `Trade` (net return on the entry notional, fees included)."""
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        return cls(
            strategy,
            trade.symbol,
            regime,
            variant,
            float(trade.return_pct),
            trade.entry_ts,
            trade.exit_ts,
        )


@dataclass(frozen=True, slots=True)
class PerformanceStats:
    """Realised performance of a group of trades."""

    trades: int
    hit_rate: float
    mean_return: float
    total_return: float

    @classmethod
    def of(cls, returns: list[float]) -> PerformanceStats:
        """Statistics of per-trade returns (all zero for no trades)."""
        if not returns:
            return cls(0, 0.0, 0.0, 0.0)
        wins = sum(1 for r in returns if r > 0)
        return cls(len(returns), wins / len(returns), sum(returns) / len(returns), sum(returns))


class FeedbackMechanism:
    """Realised trades per (strategy, symbol), the newest ``keep`` of each variant and regime."""

    def __init__(self, keep: int = 200) -> None:
        if keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        self.keep = keep
        self._by_key: dict[tuple[str, str, Regime, str], deque[TradeOutcome]] = {}
        self._live: dict[tuple[str, str], deque[TradeOutcome]] = {}

    def record(self, outcome: TradeOutcome) -> None:
        """Add one closed trade."""
        key = (outcome.strategy, outcome.symbol, outcome.regime, outcome.variant)
        self._by_key.setdefault(key, deque(maxlen=self.keep)).append(outcome)
        if outcome.variant != "baseline":
            pair = (outcome.strategy, outcome.symbol)
            self._live.setdefault(pair, deque(maxlen=self.keep)).append(outcome)

    def stats(self, strategy: str, symbol: str, regime: Regime, variant: str) -> PerformanceStats:
        """Performance of one variant in one regime."""
        trades = self._by_key.get((strategy, symbol, regime, variant), ())
        return PerformanceStats.of([t.return_pct for t in trades])

    def recent_live(self, strategy: str, symbol: str, count: int) -> PerformanceStats:
        """Performance of the newest `count` real (non-shadow) trades."""
        trades = list(self._live.get((strategy, symbol), ()))[-count:]
        return PerformanceStats.of([t.return_pct for t in trades])

    def forget(self, strategy: str, symbol: str, regime: Regime) -> None:
        """Drop the adjusted trades of a regime (after a rollback they describe a past setup)."""
        self._by_key.pop((strategy, symbol, regime, "adjusted"), None)


@dataclass(frozen=True, slots=True)
class QualityConfig:
    """When to roll back an adjustment and how to grade a strategy."""

    min_trades: int = 5
    rollback_margin: float = 0.001
    window: int = 20
    throttle_below: float = -0.001
    disable_below: float = -0.004
    min_hit_rate: float = 0.25

    def __post_init__(self) -> None:
        if self.min_trades < 1 or self.window < self.min_trades:
            raise ValueError("need 1 <= min_trades <= window")
        if self.disable_below > self.throttle_below:
            raise ValueError("disable_below must not exceed throttle_below")


@dataclass(frozen=True, slots=True)
class QualityVerdict:
    """An assessment: ``action`` is ``keep``, ``rollback``, ``throttle`` or ``disable``."""

    action: str
    strategy: str
    symbol: str
    reason: str
    score: float
    regime: Regime | None = None


class QualityAssessment:
    """Turns recorded feedback into verdicts (see the module docstring)."""

    def __init__(self, config: QualityConfig | None = None) -> None:
        self.config = config or QualityConfig()

    def compare(
        self, feedback: FeedbackMechanism, strategy: str, symbol: str, regime: Regime
    ) -> QualityVerdict:
        """Adjusted vs baseline in `regime`: ``rollback`` when adjusting clearly hurt."""
        cfg = self.config
        adjusted = feedback.stats(strategy, symbol, regime, "adjusted")
        baseline = feedback.stats(strategy, symbol, regime, "baseline")
        edge = adjusted.mean_return - baseline.mean_return
        summary = (
            f"in {regime.value} adjusted parameters made {adjusted.mean_return:+.3%}/trade over "
            f"{adjusted.trades} trades vs baseline {baseline.mean_return:+.3%} over "
            f"{baseline.trades}"
        )
        if min(adjusted.trades, baseline.trades) < cfg.min_trades:
            return QualityVerdict(
                "keep", strategy, symbol, f"too few trades: {summary}", 0.0, regime
            )
        if edge < -cfg.rollback_margin:
            return QualityVerdict("rollback", strategy, symbol, summary, edge, regime)
        return QualityVerdict("keep", strategy, symbol, summary, edge, regime)

    def grade(self, feedback: FeedbackMechanism, strategy: str, symbol: str) -> QualityVerdict:
        """The strategy's own recent record: ``keep``, ``throttle`` or ``disable``."""
        cfg = self.config
        recent = feedback.recent_live(strategy, symbol, cfg.window)
        summary = (
            f"last {recent.trades} trades: {recent.mean_return:+.3%}/trade, "
            f"hit rate {recent.hit_rate:.0%}"
        )
        score = recent.mean_return
        if recent.trades < cfg.min_trades:
            return QualityVerdict("keep", strategy, symbol, f"too few trades: {summary}", score)
        if score <= cfg.disable_below:
            return QualityVerdict("disable", strategy, symbol, summary, score)
        if score <= cfg.throttle_below or recent.hit_rate < cfg.min_hit_rate:
            return QualityVerdict("throttle", strategy, symbol, summary, score)
        return QualityVerdict("keep", strategy, symbol, summary, score)

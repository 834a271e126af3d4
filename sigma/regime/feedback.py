"""FeedbackMechanism and QualityAssessment: did the adjustments help, and is the strategy sound?

`FeedbackMechanism` keeps the realised round trips of every (strategy, symbol), each tagged with
the regime at entry and a variant:

* ``adjusted`` - a live trade entered while regime-adjusted parameters were in force;
* ``live`` - a live trade entered with the baseline parameters;
* ``baseline`` - a trade of the shadow copy that always runs the baseline parameters on the
  same bars (the counterfactual "what if we had not adjusted").

Each outcome also carries its slippage: what the fills cost against the decision prices (the
closes of the bars on which the entry and the exit were decided), as a fraction of price,
positive when the fills were worse. The shadow fills through the engine's fill model, so its
slippage is what the model expects; a real trade's is what the market (or the broker) charged.

`QualityAssessment` reads them. Per regime it compares ``adjusted`` with ``baseline`` trades;
when the adjusted ones are worse by more than ``rollback_margin`` per trade over at least
``min_trades`` of each, the verdict is a rollback (the adjuster returns to the baseline and
stops using that regime's preset). Over the last ``window`` real trades it grades the strategy
itself, realised against expected:

* mean return per trade against ``throttle_below`` and ``disable_below``, hit rate against
  ``min_hit_rate``;
* slippage: the real trades' mean against the shadow's (the fill model's expectation) over the
  same window; more than ``max_excess_slippage`` above it throttles;
* signal decay: the newer half of the window against the older half (each of at least
  ``min_trades``); when the newer half earns ``decay_margin`` per trade less and has itself
  fallen to ``throttle_below``, the edge is fading and the strategy is throttled before the
  whole window's mean shows it.

A throttled or disabled strategy is on probation: its real record hardly grows (a disabled one
makes no new trades at all), so `probation` grades its baseline shadow's paper trades since the
verdict with the same rules (without the slippage comparison: the shadow's fills are the
model's expectation). `Standing` is where a strategy stands: its status, since when, when
probation may lift it, and from when its own trades count again.

Both are plain functions of the recorded trades, so a backtest and a live run that saw the same
trades reach the same verdicts.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sigma.domain import Trade
from sigma.regime.detector import Regime

__all__ = [
    "FEEDBACK",
    "FeedbackMechanism",
    "PerformanceStats",
    "QualityAssessment",
    "QualityConfig",
    "QualityVerdict",
    "Standing",
    "TradeOutcome",
]

FEEDBACK = "regime.feedback"
VARIANTS = ("adjusted", "live", "baseline")
# Statuses from best to worst: probation only ever moves a strategy to a better one.
STATUSES = ("keep", "throttle", "disable")


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
    slippage: float | None = None  # None: the decision prices were not known

    @classmethod
    def of(
        cls,
        trade: Trade,
        strategy: str,
        regime: Regime,
        variant: str,
        decided: tuple[Decimal, Decimal] | None = None,
    ) -> TradeOutcome:
        """From an engine `Trade` (net return on the entry notional, fees included);
        `decided` are the prices the entry and the exit were decided at."""
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
            None if decided is None else _slippage(trade, *decided),
        )


def _slippage(trade: Trade, entry_decided: Decimal, exit_decided: Decimal) -> float | None:
    """Entry and exit fills against their decision prices, as a fraction, positive = worse
    (a long bought above and sold below the closes it acted on)."""
    if entry_decided <= 0 or exit_decided <= 0:
        return None
    sign = 1 if trade.is_long else -1
    entry = (trade.entry_price - entry_decided) / entry_decided
    exit_ = (exit_decided - trade.exit_price) / exit_decided
    return float(sign * (entry + exit_))


@dataclass(frozen=True, slots=True)
class PerformanceStats:
    """Realised performance of a group of trades, oldest first.

    ``slippage`` is the mean over the trades whose slippage is known (None if none is);
    ``decay`` the newer half's mean return minus the older half's (0 below two trades), and
    ``newer_mean`` the newer half's mean."""

    trades: int
    hit_rate: float
    mean_return: float
    total_return: float
    slippage: float | None = None
    decay: float = 0.0
    newer_mean: float = 0.0

    @classmethod
    def of(cls, returns: list[float], slippages: Iterable[float | None] = ()) -> PerformanceStats:
        """Statistics of per-trade returns, oldest first (all zero for no trades)."""
        known = [s for s in slippages if s is not None]
        slippage = sum(known) / len(known) if known else None
        if not returns:
            return cls(0, 0.0, 0.0, 0.0, slippage)
        n = len(returns)
        wins = sum(1 for r in returns if r > 0)
        mean = sum(returns) / n
        decay, newer = 0.0, mean
        if n >= 2:
            older, recent = returns[: n // 2], returns[n // 2 :]
            newer = sum(recent) / len(recent)
            decay = newer - sum(older) / len(older)
        return cls(n, wins / n, mean, sum(returns), slippage, decay, newer)

    @classmethod
    def of_outcomes(cls, outcomes: Iterable[TradeOutcome]) -> PerformanceStats:
        """Statistics of recorded trades, oldest first."""
        trades = list(outcomes)
        return cls.of([t.return_pct for t in trades], [t.slippage for t in trades])


class FeedbackMechanism:
    """Realised trades per (strategy, symbol), the newest ``keep`` of each variant and regime."""

    def __init__(self, keep: int = 200) -> None:
        if keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        self.keep = keep
        self._by_key: dict[tuple[str, str, Regime, str], deque[TradeOutcome]] = {}
        # Newest trades per (strategy, symbol, is_shadow), all regimes together.
        self._recent: dict[tuple[str, str, bool], deque[TradeOutcome]] = {}

    def record(self, outcome: TradeOutcome) -> None:
        """Add one closed trade."""
        key = (outcome.strategy, outcome.symbol, outcome.regime, outcome.variant)
        self._by_key.setdefault(key, deque(maxlen=self.keep)).append(outcome)
        recent = (outcome.strategy, outcome.symbol, outcome.variant == "baseline")
        self._recent.setdefault(recent, deque(maxlen=self.keep)).append(outcome)

    def stats(self, strategy: str, symbol: str, regime: Regime, variant: str) -> PerformanceStats:
        """Performance of one variant in one regime."""
        return PerformanceStats.of_outcomes(
            self._by_key.get((strategy, symbol, regime, variant), ())
        )

    def recent_live(
        self, strategy: str, symbol: str, count: int, since: datetime | None = None
    ) -> PerformanceStats:
        """Performance of the newest `count` real (non-shadow) trades, of those entered after
        `since` when given."""
        return self._newest(strategy, symbol, count, since, shadow=False)

    def recent_shadow(
        self, strategy: str, symbol: str, count: int, since: datetime | None = None
    ) -> PerformanceStats:
        """Performance of the baseline shadow's newest `count` trades (what the fill model
        expects), of those entered after `since` when given."""
        return self._newest(strategy, symbol, count, since, shadow=True)

    def _newest(
        self, strategy: str, symbol: str, count: int, since: datetime | None, *, shadow: bool
    ) -> PerformanceStats:
        trades = list(self._recent.get((strategy, symbol, shadow), ()))
        if since is not None:
            trades = [t for t in trades if t.entry_ts > since]
        return PerformanceStats.of_outcomes(trades[-count:])

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
    max_excess_slippage: float = 0.002
    decay_margin: float = 0.002
    # Minimum time out of a throttled or disabled strategy before probation may lift it, in
    # bars of its symbol (1440: a day of one-minute bars; `SIGMA_ADAPTIVE_PROBATION_BARS`).
    probation_bars: int = 1440

    def __post_init__(self) -> None:
        if self.min_trades < 1 or self.window < self.min_trades:
            raise ValueError("need 1 <= min_trades <= window")
        if self.disable_below > self.throttle_below:
            raise ValueError("disable_below must not exceed throttle_below")
        if self.max_excess_slippage < 0 or self.decay_margin < 0:
            raise ValueError("max_excess_slippage and decay_margin must not be negative")
        if self.probation_bars < 1:
            raise ValueError(f"probation_bars must be at least 1, got {self.probation_bars}")


@dataclass(frozen=True, slots=True)
class QualityVerdict:
    """An assessment: ``action`` is ``keep``, ``rollback``, ``throttle`` or ``disable``;
    ``trades`` how many trades a grade was made of (too few make it inconclusive)."""

    action: str
    strategy: str
    symbol: str
    reason: str
    score: float
    regime: Regime | None = None
    trades: int = 0


@dataclass(frozen=True, slots=True)
class Standing:
    """Where a strategy stands on a symbol.

    ``status`` is ``keep``, ``throttle`` or ``disable``, taken at ``since``; ``until`` is when
    probation may lift it at the earliest (None while the symbol's bar spacing is unknown, or
    for ``keep``); the strategy's own trades entered before ``fresh_from`` no longer count
    towards its grade (set when it was reinstated or enabled: it starts a new record)."""

    status: str = "keep"
    since: datetime | None = None
    until: datetime | None = None
    fresh_from: datetime | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")

    def better(self, status: str) -> bool:
        """True when `status` is better than this standing's."""
        return STATUSES.index(status) < STATUSES.index(self.status)


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

    def grade(
        self,
        feedback: FeedbackMechanism,
        strategy: str,
        symbol: str,
        since: datetime | None = None,
    ) -> QualityVerdict:
        """The strategy's own recent record (its trades entered after `since` when given):
        ``keep``, ``throttle`` or ``disable``."""
        cfg = self.config
        recent = feedback.recent_live(strategy, symbol, cfg.window, since)
        # The model's slippage over the same stretch of market as the real trades: spreads
        # from before `since` (before the verdict being served, say) say nothing about now.
        expected = feedback.recent_shadow(strategy, symbol, cfg.window, since).slippage
        return self._judge(strategy, symbol, recent, expected, "last")

    def probation(
        self, feedback: FeedbackMechanism, strategy: str, symbol: str, since: datetime | None
    ) -> QualityVerdict:
        """The baseline shadow's record since `since` (the verdict being served), graded as
        `grade` grades the real one: the status the strategy would have on that record."""
        recent = feedback.recent_shadow(strategy, symbol, self.config.window, since)
        return self._judge(strategy, symbol, recent, None, "shadow's last")

    def _judge(
        self,
        strategy: str,
        symbol: str,
        recent: PerformanceStats,
        expected: float | None,
        label: str,
    ) -> QualityVerdict:
        """The verdict on a record; `expected` is the slippage the fill model expects."""
        cfg = self.config
        summary = (
            f"{label} {recent.trades} trades: {recent.mean_return:+.3%}/trade, "
            f"hit rate {recent.hit_rate:.0%}, decay {recent.decay:+.3%}/trade (newer half vs older)"
        )
        excess = None
        if recent.slippage is not None:
            summary += f", slippage {recent.slippage:+.3%}"
            if expected is not None:
                excess = recent.slippage - expected
                summary += f" vs {expected:+.3%} expected"
        score, n = recent.mean_return, recent.trades

        def verdict(action: str, reason: str = summary) -> QualityVerdict:
            return QualityVerdict(action, strategy, symbol, reason, score, trades=n)

        if n < cfg.min_trades:
            return verdict("keep", f"too few trades: {summary}")
        if score <= cfg.disable_below:
            return verdict("disable")
        if score <= cfg.throttle_below or recent.hit_rate < cfg.min_hit_rate:
            return verdict("throttle")
        if excess is not None and excess > cfg.max_excess_slippage:
            return verdict(
                "throttle", f"fills cost {excess:.3%} more than the model expects: {summary}"
            )
        # Each half must hold `min_trades` for its mean to say anything.
        decaying = recent.decay <= -cfg.decay_margin and recent.newer_mean <= cfg.throttle_below
        if decaying and n >= 2 * cfg.min_trades:
            why = f"signal decaying, newer trades {recent.newer_mean:+.3%}/trade: {summary}"
            return verdict("throttle", why)
        return verdict("keep")

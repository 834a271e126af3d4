"""AdaptiveLoop: the seed's RegimeDetector -> ParamAdjuster -> FeedbackMechanism/QualityAssessment
cycle, with news informing the regime. Pure and synchronous: bars and trades in, decisions out.

Per closed bar (`on_bar`):

1. an active high-risk news window forces ``high_vol`` on the detector (and, once per event,
   a ``news_halt`` decision asks for new entries to stop);
2. the detector classifies the bar;
3. trades recorded since the last bar are assessed: a regime where the adjusted parameters did
   clearly worse than the baseline shadow is rolled back (its preset no longer used, and the
   detector asks for more confirmation before that symbol's next regime change), and a
   strategy whose own record turned poor is throttled or disabled (reported on change);
4. the adjuster steps the parameters toward the regime's preset (a change its gate, the
   `StrategyTester`, refuses becomes a ``refused`` decision instead).

Trades come in through `record_trade`, tagged with the regime at their entry, whether
adjusted parameters were in force then, and their slippage against the closes the entry and
the exit were decided on. Nothing here touches a database, a clock or a network,
so the same bars and trades give the same decisions in a backtest, in paper and live.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sigma.domain import Bar, Trade
from sigma.regime.adjuster import ParamAdjuster, ParamUpdate
from sigma.regime.detector import Regime, RegimeDetector, RegimeState
from sigma.regime.feedback import FEEDBACK, FeedbackMechanism, QualityAssessment, TradeOutcome
from sigma.regime.news import NewsHandler

__all__ = ["AdaptiveLoop", "LoopDecision", "LoopStep"]

# Regime history kept per symbol to attribute trades to the regime at their entry: far longer
# than any trade lasts.
_HISTORY = 10_000


@dataclass(frozen=True, slots=True)
class LoopDecision:
    """Something the loop decided besides a parameter change.

    ``kind``: ``regime_change``, ``rollback``, ``detector_tuned`` (more hysteresis after a
    rollback), ``throttle``, ``disable``, ``restore`` (a throttled or disabled strategy
    recovered), ``refused`` (a change the tester turned down) or ``news_halt``."""

    kind: str
    symbol: str
    ts: datetime
    reason: str
    strategy: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LoopStep:
    """What one bar produced."""

    state: RegimeState
    updates: list[ParamUpdate]
    decisions: list[LoopDecision]


@dataclass(slots=True)
class _History:
    """(ts, value) points, oldest first, for "what was it at time t" lookups."""

    times: deque[datetime] = field(default_factory=lambda: deque(maxlen=_HISTORY))
    values: deque[Any] = field(default_factory=lambda: deque(maxlen=_HISTORY))

    def add(self, ts: datetime, value: Any) -> None:
        self.times.append(ts)
        self.values.append(value)

    def before(self, ts: datetime, default: Any) -> Any:
        """The value set at the latest time strictly before `ts`."""
        i = bisect.bisect_left(self.times, ts)
        return self.values[i - 1] if i > 0 else default


class AdaptiveLoop:
    """One loop serves every symbol and strategy registered with its adjuster."""

    def __init__(
        self,
        adjuster: ParamAdjuster,
        *,
        detector: RegimeDetector | None = None,
        feedback: FeedbackMechanism | None = None,
        quality: QualityAssessment | None = None,
        news: NewsHandler | None = None,
    ) -> None:
        self.adjuster = adjuster
        self.detector = detector or RegimeDetector()
        self.feedback = feedback or FeedbackMechanism()
        self.quality = quality or QualityAssessment()
        self.news = news
        self.states: dict[str, RegimeState] = {}
        self._regimes: dict[str, _History] = {}
        self._closes: dict[str, _History] = {}
        self._adjusted: dict[tuple[str, str], _History] = {}
        self._pending_marks: list[tuple[str, str]] = []
        self._to_assess: set[tuple[str, str, Regime]] = set()
        self._grades: dict[tuple[str, str], str] = {}
        self._halted_events: set[tuple[datetime, str]] = set()

    def on_bar(self, bar: Bar) -> LoopStep:
        """Run the loop for one closed bar of `bar.symbol` (see the module docstring)."""
        decisions = self._news(bar)
        state = self.detector.update(bar)
        self.states[bar.symbol] = state
        self._mark_adjusted(bar.symbol, bar.ts)
        self._regimes.setdefault(bar.symbol, _History()).add(bar.ts, state.regime)
        self._closes.setdefault(bar.symbol, _History()).add(bar.ts, bar.close)
        if state.changed:
            decisions.append(
                LoopDecision(
                    "regime_change",
                    bar.symbol,
                    bar.ts,
                    state.reason,
                    details={"regime": state.regime.value, "probability": state.probability},
                )
            )
        updates = self._assess(bar.symbol, bar.ts, decisions)
        updates.extend(self.adjuster.on_regime(state))
        refused, self.adjuster.refused = self.adjuster.refused, []
        decisions.extend(
            LoopDecision("refused", r.symbol, r.ts, r.reason, r.strategy, {"candidate": r.new})
            for r in refused
        )
        self._pending_marks.extend((u.strategy, u.symbol) for u in updates)
        return LoopStep(state, updates, decisions)

    def record_trade(self, strategy: str, trade: Trade, *, shadow: bool = False) -> TradeOutcome:
        """A round trip closed: `shadow` for the baseline shadow copy, else a real trade."""
        symbol = trade.symbol
        regime = self.regime_at(symbol, trade.entry_ts)
        if shadow:
            variant = "baseline"
        else:
            history = self._adjusted.get((strategy, symbol))
            adjusted = history is not None and history.before(trade.entry_ts, False)
            variant = "adjusted" if adjusted else "live"
        outcome = TradeOutcome.of(trade, strategy, regime, variant, self._decided(trade))
        self.feedback.record(outcome)
        self._to_assess.add((strategy, symbol, regime))
        return outcome

    def restore(
        self,
        strategy: str,
        symbol: str,
        outcomes: Iterable[TradeOutcome],
        grade: str | None = None,
    ) -> None:
        """Resume from what a previous run saved: its recorded trades (oldest first) and the
        last verdict on the strategy (``keep``, ``throttle`` or ``disable``), so the scores go
        on from where they were and a recovery is still reported as ``restore``."""
        for outcome in outcomes:
            self.feedback.record(outcome)
        if grade is not None:
            self._grades[(strategy, symbol)] = grade

    def grade(self, strategy: str, symbol: str) -> str:
        """The last verdict on `strategy` on `symbol` (``keep`` until one was reached)."""
        return self._grades.get((strategy, symbol), "keep")

    def regime_at(self, symbol: str, ts: datetime) -> Regime:
        """The regime reported on the last bar before `ts` (when a trade entered at `ts` was
        decided)."""
        history = self._regimes.get(symbol)
        result: Regime = Regime.UNKNOWN if history is None else history.before(ts, Regime.UNKNOWN)
        return result

    def _decided(self, trade: Trade) -> tuple[Decimal, Decimal] | None:
        """The closes the entry and the exit of `trade` were decided on (the last bars before
        their fills), None when a bar before either is missing."""
        closes = self._closes.get(trade.symbol)
        if closes is None:
            return None
        entry, exit_ = closes.before(trade.entry_ts, None), closes.before(trade.exit_ts, None)
        return None if entry is None or exit_ is None else (entry, exit_)

    def _mark_adjusted(self, symbol: str, ts: datetime) -> None:
        """Changes made on the previous bar govern orders decided from this bar on, whose fills
        come later than `ts`: record the new state with this bar's time."""
        keep = []
        for strategy, sym in self._pending_marks:
            if sym != symbol:
                keep.append((strategy, sym))
                continue
            adjusted = self.adjuster.is_adjusted(strategy, symbol)
            self._adjusted.setdefault((strategy, symbol), _History()).add(ts, adjusted)
        self._pending_marks = keep

    def _news(self, bar: Bar) -> list[LoopDecision]:
        if self.news is None:
            return []
        event = self.news.active(bar.symbol, bar.ts)
        if event is None or event.risk_until is None:
            return []
        self.detector.force_high_vol(bar.symbol, event.risk_until, f"news: {event.describe()}")
        key = (event.item.ts, event.item.headline)
        if not event.halt_entries or key in self._halted_events:
            return []
        self._halted_events.add(key)
        reason = f"halt new entries until {event.risk_until.isoformat()}: {event.describe()}"
        details = {"until": event.risk_until.isoformat(), "sentiment": event.sentiment}
        return [LoopDecision("news_halt", bar.symbol, bar.ts, reason, details=details)]

    def _assess(
        self, symbol: str, ts: datetime, decisions: list[LoopDecision]
    ) -> list[ParamUpdate]:
        updates = []
        for strategy, sym, regime in sorted(self._to_assess):
            if sym != symbol:
                continue
            self._to_assess.discard((strategy, sym, regime))
            verdict = self.quality.compare(self.feedback, strategy, symbol, regime)
            if verdict.action == "rollback":
                self.feedback.forget(strategy, symbol, regime)
                reason = f"rollback: {verdict.reason}"
                update = self.adjuster.rollback(strategy, symbol, regime, ts, reason, FEEDBACK)
                if update is not None:
                    updates.append(update)
                details = {"edge": verdict.score, "regime": regime.value}
                decisions.append(LoopDecision("rollback", symbol, ts, reason, strategy, details))
                before = self.detector.confirm_bars(symbol)
                after = self.detector.tighten(symbol)
                if after != before:
                    why = f"regime changes must now lead {after} bars (was {before}) after {reason}"
                    decisions.append(
                        LoopDecision(
                            "detector_tuned", symbol, ts, why, strategy, {"confirm_bars": after}
                        )
                    )
            grade = self.quality.grade(self.feedback, strategy, symbol)
            previous = self._grades.get((strategy, symbol), "keep")
            if grade.action != previous:
                self._grades[(strategy, symbol)] = grade.action
                kind = "restore" if grade.action == "keep" else grade.action
                decisions.append(
                    LoopDecision(kind, symbol, ts, grade.reason, strategy, {"score": grade.score})
                )
        return updates

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
4. probation: a throttled or disabled strategy whose minimum time out
   (`QualityConfig.probation_bars` bars of its symbol) is over is graded on its baseline
   shadow's trades since the verdict; when that grade is better than its status it is
   reinstated (``reinstate``) to that grade, and its own record starts afresh;
5. the adjuster steps the parameters toward the regime's preset (a change its gate, the
   `StrategyTester`, refuses becomes a ``refused`` decision instead).

An operator can lift a verdict at once with `enable` (an ``enable`` decision).

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
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sigma.domain import Bar, Trade
from sigma.regime.adjuster import ParamAdjuster, ParamUpdate
from sigma.regime.detector import Regime, RegimeDetector, RegimeState
from sigma.regime.feedback import (
    FEEDBACK,
    FeedbackMechanism,
    QualityAssessment,
    QualityVerdict,
    Standing,
    TradeOutcome,
)
from sigma.regime.news import NewsHandler

__all__ = ["PROBATION", "AdaptiveLoop", "LoopDecision", "LoopStep"]

# Who reinstates a strategy after probation (``details["by"]`` of a ``reinstate`` decision).
PROBATION = "regime.probation"

# Regime history kept per symbol to attribute trades to the regime at their entry: far longer
# than any trade lasts.
_HISTORY = 10_000


@dataclass(frozen=True, slots=True)
class LoopDecision:
    """Something the loop decided besides a parameter change.

    ``kind``: ``regime_change``, ``rollback``, ``detector_tuned`` (more hysteresis after a
    rollback), ``throttle``, ``disable``, ``restore`` (a throttled or disabled strategy's own
    record recovered), ``reinstate`` (its shadow's record did, after the time out), ``enable``
    (an operator lifted the verdict), ``refused`` (a change the tester turned down) or
    ``news_halt``. ``reinstate`` and ``enable`` carry the new status in ``details["status"]``
    and who decided in ``details["by"]``."""

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
        self._standings: dict[tuple[str, str], Standing] = {}
        # The shortest gap seen between two bars of each symbol: its bar spacing, which turns
        # the time out in bars into a deadline a restart does not reset.
        self._spacing: dict[str, timedelta] = {}
        self._last_ts: dict[str, datetime] = {}
        self._halted_events: set[tuple[datetime, str]] = set()

    def on_bar(self, bar: Bar) -> LoopStep:
        """Run the loop for one closed bar of `bar.symbol` (see the module docstring)."""
        decisions = self._news(bar)
        self._space(bar)
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
        self._probation(bar.symbol, bar.ts, decisions)
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
        standing: Standing | None = None,
    ) -> None:
        """Resume from what a previous run saved: its recorded trades (oldest first) and where
        the strategy stood, so the scores go on from where they were, a recovery is still
        reported as ``restore`` and a time out keeps its deadline."""
        for outcome in outcomes:
            self.feedback.record(outcome)
        if standing is not None:
            self._standings[(strategy, symbol)] = standing

    def grade(self, strategy: str, symbol: str) -> str:
        """The last verdict on `strategy` on `symbol` (``keep`` until one was reached)."""
        return self.standing(strategy, symbol).status

    def standing(self, strategy: str, symbol: str) -> Standing:
        """Where `strategy` stands on `symbol` (see `Standing`)."""
        return self._standings.get((strategy, symbol), Standing())

    def enable(
        self, strategy: str, symbol: str, ts: datetime, *, by: str, reason: str
    ) -> LoopDecision | None:
        """An operator lifts the verdict on `strategy` on `symbol` at `ts`: it trades freely
        again and its own record starts afresh. None when it was neither throttled nor
        disabled."""
        was = self.standing(strategy, symbol).status
        if was == "keep":
            return None
        self._standings[(strategy, symbol)] = Standing("keep", ts, fresh_from=ts)
        details = {"status": "keep", "was": was, "by": by}
        return LoopDecision("enable", symbol, ts, f"enabled by {by}: {reason}", strategy, details)

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

    def _space(self, bar: Bar) -> None:
        last = self._last_ts.get(bar.symbol)
        self._last_ts[bar.symbol] = bar.ts
        if last is None or bar.ts <= last:
            return
        gap = bar.ts - last
        spacing = self._spacing.get(bar.symbol)
        if spacing is None or gap < spacing:
            self._spacing[bar.symbol] = gap

    def _deadline(self, symbol: str, since: datetime) -> datetime | None:
        """When a time out that began at `since` ends (None while the spacing is unknown)."""
        spacing = self._spacing.get(symbol)
        return None if spacing is None else since + spacing * self.quality.config.probation_bars

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
            self._regrade(strategy, symbol, ts, decisions)
        return updates

    def _regrade(
        self, strategy: str, symbol: str, ts: datetime, decisions: list[LoopDecision]
    ) -> None:
        """Grade the strategy's own record; report a changed status."""
        key = (strategy, symbol)
        standing = self.standing(strategy, symbol)
        grade = self.quality.grade(self.feedback, strategy, symbol, standing.fresh_from)
        # A record that started afresh says nothing until it holds `min_trades`.
        if grade.action == standing.status or grade.trades < self.quality.config.min_trades:
            return
        if grade.action == "keep":
            self._standings[key] = Standing("keep", ts, fresh_from=standing.fresh_from)
        else:
            until = self._deadline(symbol, ts)
            self._standings[key] = Standing(grade.action, ts, until, standing.fresh_from)
        kind = "restore" if grade.action == "keep" else grade.action
        decisions.append(
            LoopDecision(kind, symbol, ts, grade.reason, strategy, {"score": grade.score})
        )

    def _probation(self, symbol: str, ts: datetime, decisions: list[LoopDecision]) -> None:
        """Reinstate the strategies out on `symbol` whose time out is over and whose shadow's
        record since the verdict is better than their status."""
        for key in sorted(self._standings):
            standing = self._standings[key]
            if key[1] != symbol or standing.status == "keep":
                continue
            if standing.until is None:
                # Saved before probation existed, or decided before the spacing was known:
                # the time out runs from the verdict, or from now when its time is unknown.
                since = standing.since or ts
                standing = Standing(
                    standing.status, since, self._deadline(symbol, since), standing.fresh_from
                )
                self._standings[key] = standing
            if standing.until is None or ts < standing.until:
                continue
            verdict = self.quality.probation(self.feedback, *key, standing.since)
            if verdict.trades < self.quality.config.min_trades or not standing.better(
                verdict.action
            ):
                continue
            self._reinstate(standing, verdict, ts, decisions)

    def _reinstate(
        self,
        standing: Standing,
        verdict: QualityVerdict,
        ts: datetime,
        decisions: list[LoopDecision],
    ) -> None:
        status = verdict.action
        until = None if status == "keep" else self._deadline(verdict.symbol, ts)
        self._standings[(verdict.strategy, verdict.symbol)] = Standing(status, ts, until, ts)
        reason = f"probation: {standing.status} lifted to {status}, {verdict.reason}"
        details = {
            "status": status,
            "was": standing.status,
            "by": PROBATION,
            "score": verdict.score,
        }
        decisions.append(
            LoopDecision("reinstate", verdict.symbol, ts, reason, verdict.strategy, details)
        )

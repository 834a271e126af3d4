"""AdaptiveHook: the adaptive loop attached to running engines - one object for backtest,
paper and live.

    hook = AdaptiveHook(loop, sinks=[StoreSink(factory)])
    for engine in engines:            # Engine (backtest/paper) or DispatchEngine (live)
        hook.attach(engine)
    ...
    # after the engines of `symbol` processed a closed bar:
    updates = hook.on_bar(symbol, bar)

Per bar the hook (1) advances each attached strategy's baseline shadow - a copy running the
baseline parameters on a paper engine, the counterfactual the feedback loop compares against;
(2) hands every round trip closed since the last bar (real and shadow) to the loop; (3) runs
the loop; (4) applies the resulting parameter changes to the running strategies, which use them
from the next bar on (with a `StrategyTester`, each adjustment must first pass a walk-forward
test on the bars the engine has seen); (5) passes updates and decisions to the sinks
(database, action log, alerts). A failing sink is logged and never stops trading.

A strategy the loop throttled or disabled comes back by probation (its shadow keeps trading on
paper, unpaused, and the loop grades it after the time out) or by an operator: `enable`, or
`AdaptiveStateStore.request_enable` (`sigma regime enable`), which a hook with that store
applies on a bar of the symbol (read at most every `enable_poll_seconds`), whether it was
running or starts later.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import pandas as pd

from sigma.domain import Bar, Trade
from sigma.engine.engine import Engine, empty_data
from sigma.engine.live import MAX_BARS, MAX_RECORDS
from sigma.regime.adjuster import ParamUpdate
from sigma.regime.commentary import CommentaryModule
from sigma.regime.detector import Regime
from sigma.regime.feedback import TradeOutcome
from sigma.regime.loop import AdaptiveLoop, LoopDecision, LoopStep
from sigma.regime.state import AdaptiveStateStore
from sigma.regime.tester import StrategyTester
from sigma.strategies.base import Strategy
from sigma.strategies.series import COLUMNS, Cursor, Data

__all__ = ["AdaptiveHook", "AdaptiveSink"]

log = logging.getLogger(__name__)

# Updates and decisions kept in memory for reports and the API (the sinks keep them all).
_KEEP = 10_000
# Decisions about a strategy that the state store keeps across restarts.
_LASTING = frozenset({"rollback", "throttle", "disable", "restore", "reinstate", "enable"})


@dataclass(frozen=True)
class ProposedChange:
    """A parameter change waiting for its test: the candidate, the set in force when it was
    proposed and a copy of the bars it is tested on (None without a tester)."""

    strategy: str
    symbol: str
    cls: type[Strategy]
    current: dict[str, Any]
    candidate: dict[str, Any]
    bars: pd.DataFrame | None


class AdaptiveSink(Protocol):
    """Receives what the loop decided (stores it, logs it, alerts on it)."""

    def on_update(self, update: ParamUpdate) -> None:
        """A parameter change that was applied."""

    def on_decision(self, decision: LoopDecision) -> None:
        """Any other decision (regime change, rollback, throttle, disable, news halt)."""


class _Binding:
    """One attached engine, its shadow and what of their trades was already reported.

    ``preloaded``: the engine holds the whole history (a backtest), so the shadow gets the same
    arrays and steps by index instead of appending bar by bar and recomputing its indicators
    each time; the strategies are causal, so both ways give the same trades."""

    __slots__ = ("engine", "last_real", "last_shadow", "preloaded", "shadow")

    def __init__(self, engine: Engine, shadow: Engine | None, preloaded: bool) -> None:
        self.engine = engine
        self.shadow = shadow
        self.preloaded = preloaded
        self.last_real: Trade | None = engine.trades[-1] if engine.trades else None
        self.last_shadow: Trade | None = None


class AdaptiveHook:
    """Binds an `AdaptiveLoop` to engines; see the module docstring."""

    def __init__(
        self,
        loop: AdaptiveLoop,
        *,
        sinks: Sequence[AdaptiveSink] = (),
        shadow: bool = True,
        commentary: CommentaryModule | None = None,
        tester: StrategyTester | None = None,
        state: AdaptiveStateStore | None = None,
        throttle_bars: int = 20,
        enable_poll_seconds: float = 5.0,
    ) -> None:
        if throttle_bars < 1:
            raise ValueError(f"throttle_bars must be at least 1, got {throttle_bars}")
        self.loop = loop
        self.tester = tester
        self.state = state
        self.throttle_bars = throttle_bars
        # Enable requests are read from the store at most this often per symbol: on every bar
        # it would be a query in the bot's tick path for what happens a few times a year.
        self.enable_poll_seconds = enable_poll_seconds
        self.clock = time.monotonic
        self._enables_read: dict[str, float] = {}
        # Bars seen per symbol, and the bar count at each throttled strategy's last entry.
        self._bar_count: dict[str, int] = {}
        self._last_entry: dict[tuple[str, str], int] = {}
        if tester is not None:
            loop.adjuster.gate = self._gate
        self.sinks = list(sinks)
        self.shadow = shadow
        self.commentary = commentary or CommentaryModule()
        self.updates: deque[ParamUpdate] = deque(maxlen=_KEEP)
        self.decisions: deque[LoopDecision] = deque(maxlen=_KEEP)
        self.status: dict[tuple[str, str], str] = {}
        # The score and reason of the last verdict per (strategy, symbol), for the state store.
        self._verdicts: dict[tuple[str, str], tuple[float | None, str]] = {}
        self._bindings: dict[str, list[_Binding]] = {}

    def attach(self, engine: Engine) -> None:
        """Adapt `engine.strategy` on `engine.symbol`, its current parameters as baseline - or,
        with a `state` store, resume what was saved for it: its trades and verdict always; its
        baseline and blocked regimes when it restarts with the parameters it stopped with."""
        strategy = engine.strategy
        status = self._restore(engine)
        data = engine.data
        preloaded = data.cursor.i < len(data) - 1
        twin = None
        if self.shadow:
            copy = type(strategy)(**strategy.params)
            own = (
                Data({name: data.column(name) for name in COLUMNS}, data.ts, Cursor())
                if preloaded
                else empty_data()
            )
            twin = Engine(copy, engine.symbol, own, engine.config)
        self._bindings.setdefault(engine.symbol, []).append(_Binding(engine, twin, preloaded))
        self.status[(strategy.name, engine.symbol)] = status

    def _restore(self, engine: Engine) -> str:
        """Register the strategy with the adjuster (and the loop) from the saved state; the
        status to start with."""
        strategy, symbol = engine.strategy, engine.symbol
        cls = type(strategy)
        adjuster = self.loop.adjuster
        if self.state is None:
            adjuster.register(cls, symbol, strategy.params)
            return "keep"
        saved = self.state.load_strategy(strategy.name, symbol)
        registered = False
        if saved.resumes(strategy.params) and saved.baseline is not None:
            try:
                baseline = cls(**saved.baseline).params
                adjuster.register(
                    cls, symbol, strategy.params, baseline=baseline, blocked=saved.blocked
                )
                registered = True
            except (TypeError, ValueError) as exc:  # the strategy's parameters changed shape
                log.warning(
                    "%s %s: saved baseline not usable (%s); the parameters in force are the "
                    "baseline now",
                    strategy.name,
                    symbol,
                    exc,
                )
        if not registered:
            adjuster.register(cls, symbol, strategy.params)
        self.loop.restore(strategy.name, symbol, saved.trades, saved.standing)
        self._verdicts[(strategy.name, symbol)] = (saved.score, saved.reason)
        confirm = self.state.load_detector(symbol)
        if confirm is not None:
            self.loop.detector.restore_confirm_bars(symbol, confirm)
        if saved.status != "keep":
            log.warning(
                "%s %s resumes %s by the regime loop: %s",
                strategy.name,
                symbol,
                saved.status,
                saved.reason,
            )
        return saved.status

    def on_bar(self, symbol: str, bar: Bar) -> list[ParamUpdate]:
        """Run the loop for a bar the engines of `symbol` just processed; returns the parameter
        changes it applied."""
        self._bar_count[symbol] = self._bar_count.get(symbol, 0) + 1
        self._operator_enables(symbol, bar.ts)
        bindings = self._bindings.get(symbol, [])
        for binding in bindings:
            self._advance_shadow(binding, bar)
            self._report_trades(binding)
        step = self.loop.on_bar(bar)
        by_strategy = {b.engine.strategy.name: b.engine for b in bindings}
        for update in step.updates:
            by_strategy[update.strategy].strategy.update_params(**update.new)
        self._publish(step)
        return step.updates

    def change_params(
        self, strategy: str, symbol: str, params: Mapping[str, Any], *, by: str, ts: datetime
    ) -> str | None:
        """A parameter change from outside the loop (an operator, the scheduled optimiser):
        with a `StrategyTester`, it must first pass the same walk-forward test as the loop's
        own changes, else it is refused - a ``refused`` decision, stored and alerted - and the
        reason returned. A change that passes becomes the strategy's new baseline: the running
        strategy and its shadow use it from the next bar, the adjuster steers from it, and the
        regimes rolled back against the old baseline are tried again. Raises ValueError,
        changing nothing, for a set the strategy or a preset over it does not accept.

        The same in three steps, so the walk-forward can run away from the price loop:
        `propose` and `adopt` on the loop, `test` anywhere."""
        change = self.propose(strategy, symbol, params)
        return self.adopt(change, self.test(change), by=by, ts=ts)

    def propose(self, strategy: str, symbol: str, params: Mapping[str, Any]) -> ProposedChange:
        """The candidate set over the current baseline, with a copy of the bars to test it on
        (call on the loop); raises ValueError for a set the strategy does not accept."""
        engine, _ = self._engines(strategy, symbol)
        cls = type(engine.strategy)
        baseline = self.loop.adjuster.baseline(strategy, symbol)
        candidate = cls(**{**baseline, **params}).params
        bars = self._recent(cls, symbol) if self.tester is not None else None
        return ProposedChange(strategy, symbol, cls, dict(engine.strategy.params), candidate, bars)

    def test(self, change: ProposedChange) -> str | None:
        """Why the StrategyTester refuses `change` (None: it passes, or there is no tester).
        Touches nothing live, so it may run in another thread."""
        if self.tester is None or change.bars is None:
            return None
        return self.tester.check(
            change.cls, change.current, change.candidate, change.bars, symbol=change.symbol
        )

    def adopt(
        self, change: ProposedChange, refusal: str | None, *, by: str, ts: datetime
    ) -> str | None:
        """Record a refused change, or make a tested one the new baseline (call on the loop);
        returns the refusal."""
        strategy, symbol = change.strategy, change.symbol
        engine, shadow = self._engines(strategy, symbol)
        if refusal is not None:
            details = {"candidate": change.candidate, "by": by}
            self._decide(LoopDecision("refused", symbol, ts, refusal, strategy, details), ts)
            return refusal
        new = self.loop.adjuster.rebase(strategy, symbol, change.candidate)
        engine.strategy.update_params(**new)
        if shadow is not None:
            shadow.strategy.update_params(**new)
        if self.state is not None:
            try:
                self._save(self.state, strategy, symbol, ts)
            except Exception:
                log.exception("saving the adaptive state failed; trading continues")
        log.info("%s %s new baseline by %s: %s", strategy, symbol, by, new)
        return None

    def enable(self, strategy: str, symbol: str, *, by: str, reason: str, ts: datetime) -> bool:
        """An operator lifts the loop's verdict on `strategy` on `symbol`: it trades freely
        from the next bar and its own record starts afresh; the ``enable`` decision (with
        `by` and `reason`) is logged, stored, alerted and kept across restarts like the loop's
        own. False when it was neither throttled nor disabled."""
        self._engines(strategy, symbol)  # an unknown strategy is a typo: fail loudly
        decision = self.loop.enable(strategy, symbol, ts, by=by, reason=reason)
        if decision is None:
            return False
        self._decide(decision, ts)
        return True

    def _operator_enables(self, symbol: str, ts: datetime) -> None:
        """Apply the enable requests stored for the strategies attached on `symbol`, read at
        most every `enable_poll_seconds`."""
        if self.state is None:
            return
        now = self.clock()
        last = self._enables_read.get(symbol)
        if last is not None and now - last < self.enable_poll_seconds:
            return
        self._enables_read[symbol] = now
        attached = {b.engine.strategy.name for b in self._bindings.get(symbol, [])}
        try:
            requests = [r for r in self.state.enable_requests(symbol) if r.strategy in attached]
        except Exception:
            log.exception("reading enable requests failed; trading continues")
            return
        for request in requests:
            if not self.enable(
                request.strategy, symbol, by=request.by, reason=request.reason, ts=ts
            ):
                log.info(
                    "%s %s was not out; enable request by %s dropped",
                    request.strategy,
                    symbol,
                    request.by,
                )
            try:
                self.state.drop_enable_request(request.strategy, symbol)
            except Exception:
                log.exception("dropping an applied enable request failed; trading continues")

    def _engines(self, strategy: str, symbol: str) -> tuple[Engine, Engine | None]:
        """The attached engine of `strategy` on `symbol` and its shadow."""
        for binding in self._bindings.get(symbol, []):
            if binding.engine.strategy.name == strategy:
                return binding.engine, binding.shadow
        raise KeyError(f"{strategy} on {symbol} is not attached")

    def entry_pause(self, strategy: str, symbol: str, ts: datetime) -> str:
        """Why a new entry (more exposure) of `strategy` on `symbol` must wait, "" when it may
        go: a disabled strategy opens nothing; a throttled one at most one entry per
        `throttle_bars` bars of its symbol (an allowed entry uses up the slot); nothing opens
        during a news halt. Orders that reduce exposure are never the loop's business."""
        key = (strategy, symbol)
        status = self.status.get(key, "keep")
        if status == "disable":
            return "regime loop disabled this strategy on this symbol"
        if self.entries_halted(symbol, ts):
            return "news halt: no new entries"
        if status == "throttle":
            now = self._bar_count.get(symbol, 0)
            last = self._last_entry.get(key)
            if last is not None and now - last < self.throttle_bars:
                wait = self.throttle_bars - (now - last)
                return (
                    f"regime loop throttled this strategy: one new entry per "
                    f"{self.throttle_bars} bars, next in {wait}"
                )
            self._last_entry[key] = now
        return ""

    def entries_halted(self, symbol: str, ts: datetime) -> bool:
        """True while a news event asks to halt new entries on `symbol`."""
        news = self.loop.news
        event = None if news is None else news.active(symbol, ts)
        return event is not None and event.halt_entries

    def note(self, symbol: str) -> str:
        """The latest plain-language commentary for `symbol`."""
        state = self.loop.states.get(symbol)
        if state is None:
            return f"{symbol}: no bars seen yet."
        news = self.loop.news
        events = [] if news is None else news.recent(symbol, state.ts, news.config.risk_window)
        return self.commentary.generate(state, events)

    def _gate(
        self,
        cls: type[Strategy],
        symbol: str,
        current: Mapping[str, Any],
        candidate: Mapping[str, Any],
    ) -> str | None:
        """Test a change on the bars the strategy's engine has seen (never later ones)."""
        assert self.tester is not None
        return self.tester.check(cls, current, candidate, self._recent(cls, symbol), symbol=symbol)

    def _recent(self, cls: type[Strategy], symbol: str) -> pd.DataFrame:
        """The tester's look-back of bars of the engine running `cls` on `symbol`."""
        assert self.tester is not None
        engine = next(b.engine for b in self._bindings[symbol] if type(b.engine.strategy) is cls)
        data = engine.data
        end = data.cursor.i + 1
        start = max(0, end - self.tester.config.lookback)
        return data.frame(start, end)

    def _advance_shadow(self, binding: _Binding, bar: Bar) -> None:
        twin = binding.shadow
        if twin is None:
            return
        if binding.preloaded:
            twin.step(binding.engine.data.cursor.i)
            return
        if len(twin.data) >= 2 * MAX_BARS:
            twin.drop_oldest(len(twin.data) - MAX_BARS)
        twin.on_bar(bar)

    def _report_trades(self, binding: _Binding) -> None:
        engine = binding.engine
        name = engine.strategy.name
        fresh = _since(engine.trades, binding.last_real)
        for trade in fresh:
            self._saved(self.loop.record_trade(name, trade))
        if fresh:
            binding.last_real = fresh[-1]
        twin = binding.shadow
        if twin is None:
            return
        fresh = _since(twin.trades, binding.last_shadow)
        for trade in fresh:
            self._saved(self.loop.record_trade(name, trade, shadow=True))
        if fresh:
            binding.last_shadow = fresh[-1]
        if len(twin.trades) > 2 * MAX_RECORDS:
            del twin.trades[:-MAX_RECORDS]

    def _publish(self, step: LoopStep) -> None:
        for update in step.updates:
            self.updates.append(update)
            log.info(
                "%s %s parameters %s by %s: %s",
                update.strategy,
                update.symbol,
                update.changes,
                update.changed_by,
                update.reason,
            )
        for decision in step.decisions:
            self._note(decision)
        self._sink(step.updates, step.decisions)
        self._persist(step.updates, step.decisions, step.state.ts)

    def _decide(self, decision: LoopDecision, ts: datetime) -> None:
        """A decision taken outside a loop step: the same log, sinks and lasting state."""
        self._note(decision)
        self._sink((), (decision,))
        self._persist((), (decision,), ts)

    def _note(self, decision: LoopDecision) -> None:
        """Keep and log a decision; follow the verdicts on strategies."""
        self.decisions.append(decision)
        log.info(
            "regime %s %s%s: %s",
            decision.kind,
            f"{decision.strategy} " if decision.strategy else "",
            decision.symbol,
            decision.reason,
        )
        if decision.strategy is None:
            return
        key = (decision.strategy, decision.symbol)
        if decision.kind in ("throttle", "disable"):
            self.status[key] = decision.kind
        elif decision.kind == "restore":
            self.status[key] = "keep"
        elif decision.kind in ("reinstate", "enable"):
            self.status[key] = str(decision.details["status"])

    def _sink(self, updates: Sequence[ParamUpdate], decisions: Sequence[LoopDecision]) -> None:
        for sink in self.sinks:
            try:
                for update in updates:
                    sink.on_update(update)
                for decision in decisions:
                    sink.on_decision(decision)
            except Exception:
                log.exception("adaptive sink %s failed; trading continues", type(sink).__name__)

    def _saved(self, outcome: TradeOutcome) -> None:
        if self.state is None:
            return
        try:
            self.state.record_trade(outcome)
        except Exception:
            log.exception("saving a feedback trade failed; trading continues")

    def _persist(
        self, updates: Sequence[ParamUpdate], decisions: Sequence[LoopDecision], ts: datetime
    ) -> None:
        """Save what a restart must not forget: verdicts and time outs, rolled-back regimes,
        parameters in force, tuned detector thresholds."""
        state = self.state
        if state is None:
            return
        touched = {(u.strategy, u.symbol) for u in updates}
        try:
            for decision in decisions:
                if decision.kind == "detector_tuned":
                    state.save_detector(decision.symbol, int(decision.details["confirm_bars"]))
                if decision.strategy is None or decision.kind not in _LASTING:
                    continue
                key = (decision.strategy, decision.symbol)
                touched.add(key)
                if decision.kind == "rollback":
                    state.forget(*key, Regime(decision.details["regime"]))
                else:
                    self._verdicts[key] = (decision.details.get("score"), decision.reason)
            for strategy, symbol in sorted(touched):
                self._save(state, strategy, symbol, ts)
        except Exception:
            log.exception("saving the adaptive state failed; trading continues")

    def _save(self, state: AdaptiveStateStore, strategy: str, symbol: str, ts: datetime) -> None:
        adjuster = self.loop.adjuster
        score, reason = self._verdicts.get((strategy, symbol), (None, ""))
        standing = self.loop.standing(strategy, symbol)
        state.save_strategy(
            strategy,
            symbol,
            status=standing.status,
            since=standing.since,
            until=standing.until,
            fresh_from=standing.fresh_from,
            score=score,
            reason=reason,
            blocked=adjuster.blocked(strategy, symbol),
            baseline=adjuster.baseline(strategy, symbol),
            current=adjuster.current(strategy, symbol),
            ts=ts,
        )


def _since(trades: list[Trade], last: Trade | None) -> list[Trade]:
    """The trades after `last` (found by identity; the lists are only appended to, or trimmed
    at the front, which never drops the newest)."""
    fresh = []
    for trade in reversed(trades):
        if trade is last:
            break
        fresh.append(trade)
    return fresh[::-1]

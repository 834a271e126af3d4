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

The hook coordinates; each job has its own collaborator: `Bindings` (engines and shadows),
`ParamChanges` (tested parameter changes), `EntryThrottle` (verdicts and entry slots),
`Journal` (memory, log and sinks), `AdaptiveMemory` (the state store), `EnableRequests`.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sigma.domain import Bar
from sigma.engine.engine import Engine
from sigma.regime.adjuster import ParamUpdate
from sigma.regime.changes import ParamChanges, ProposedChange
from sigma.regime.commentary import CommentaryModule
from sigma.regime.enables import EnableRequests
from sigma.regime.journal import AdaptiveSink, Journal
from sigma.regime.loop import AdaptiveLoop, LoopDecision, LoopStep
from sigma.regime.memory import AdaptiveMemory
from sigma.regime.shadow import Bindings
from sigma.regime.state import AdaptiveStateStore
from sigma.regime.tester import StrategyTester
from sigma.regime.throttle import EntryThrottle

__all__ = ["AdaptiveHook"]

log = logging.getLogger(__name__)


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
        self.throttle = EntryThrottle(throttle_bars)
        self.loop = loop
        self.commentary = commentary or CommentaryModule()
        self.bindings = Bindings(shadow=shadow)
        self.changes = ParamChanges(loop.adjuster, self.bindings, tester)
        self.journal = Journal(sinks)
        self.memory = AdaptiveMemory(loop, state)
        self.enables = EnableRequests(state, enable_poll_seconds)

    # The collaborators' settings and records, under the names callers have always used.

    @property
    def state(self) -> AdaptiveStateStore | None:
        """Where the loop's lasting state and the enable requests are kept (None: nowhere)."""
        return self.memory.state

    @state.setter
    def state(self, state: AdaptiveStateStore | None) -> None:
        self.memory.state = state
        self.enables.state = state

    @property
    def tester(self) -> StrategyTester | None:
        """The walk-forward test every parameter change must pass (None: none)."""
        return self.changes.tester

    @property
    def sinks(self) -> list[AdaptiveSink]:
        """Where updates and decisions go (append to add one)."""
        return self.journal.sinks

    @property
    def updates(self) -> deque[ParamUpdate]:
        """The latest parameter changes applied."""
        return self.journal.updates

    @property
    def decisions(self) -> deque[LoopDecision]:
        """The latest decisions."""
        return self.journal.decisions

    @property
    def status(self) -> dict[tuple[str, str], str]:
        """The verdict per (strategy, symbol): ``keep``, ``throttle`` or ``disable``."""
        return self.throttle.status

    @property
    def throttle_bars(self) -> int:
        """A throttled strategy opens at most one position per this many bars."""
        return self.throttle.bars

    @throttle_bars.setter
    def throttle_bars(self, bars: int) -> None:
        self.throttle.bars = bars

    @property
    def enable_poll_seconds(self) -> float:
        """Enable requests are read from the store at most this often per symbol."""
        return self.enables.poll_seconds

    @enable_poll_seconds.setter
    def enable_poll_seconds(self, seconds: float) -> None:
        self.enables.poll_seconds = seconds

    @property
    def clock(self) -> Callable[[], float]:
        """The monotonic clock the enable polling goes by."""
        return self.enables.clock

    @clock.setter
    def clock(self, clock: Callable[[], float]) -> None:
        self.enables.clock = clock

    # The loop on the engines.

    def attach(self, engine: Engine) -> None:
        """Adapt `engine.strategy` on `engine.symbol`, its current parameters as baseline - or,
        with a `state` store, resume what was saved for it: its trades and verdict always; its
        baseline and blocked regimes when it restarts with the parameters it stopped with."""
        status = self.memory.restore(engine)
        self.bindings.attach(engine)
        self.status[(engine.strategy.name, engine.symbol)] = status

    def on_bar(self, symbol: str, bar: Bar) -> list[ParamUpdate]:
        """Run the loop for a bar the engines of `symbol` just processed; returns the parameter
        changes it applied."""
        self.throttle.count_bar(symbol)
        self._operator_enables(symbol, bar.ts)
        bindings = self.bindings.on(symbol)
        for binding in bindings:
            binding.advance_shadow(bar)
            name = binding.engine.strategy.name
            real, shadow = binding.fresh_trades()
            for trade in real:
                self.memory.record_trade(self.loop.record_trade(name, trade))
            for trade in shadow:
                self.memory.record_trade(self.loop.record_trade(name, trade, shadow=True))
        step = self.loop.on_bar(bar)
        by_strategy = {b.engine.strategy.name: b.engine for b in bindings}
        for update in step.updates:
            by_strategy[update.strategy].strategy.update_params(**update.new)
        self._publish(step)
        return step.updates

    # Parameter changes from outside the loop.

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
        return self.changes.propose(strategy, symbol, params)

    def test(self, change: ProposedChange) -> str | None:
        """Why the StrategyTester refuses `change` (None: it passes, or there is no tester).
        Touches nothing live, so it may run in another thread."""
        return self.changes.test(change)

    def adopt(
        self, change: ProposedChange, refusal: str | None, *, by: str, ts: datetime
    ) -> str | None:
        """Record a refused change, or make a tested one the new baseline (call on the loop);
        returns the refusal."""
        strategy, symbol = change.strategy, change.symbol
        self.bindings.engines(strategy, symbol)  # an unknown strategy is a typo: fail loudly
        if refusal is not None:
            details = {"candidate": change.candidate, "by": by}
            self._decide(LoopDecision("refused", symbol, ts, refusal, strategy, details), ts)
            return refusal
        new = self.changes.rebase(change)
        self.memory.save(strategy, symbol, ts)
        log.info("%s %s new baseline by %s: %s", strategy, symbol, by, new)
        return None

    # Operators' enables.

    def enable(self, strategy: str, symbol: str, *, by: str, reason: str, ts: datetime) -> bool:
        """An operator lifts the loop's verdict on `strategy` on `symbol`: it trades freely
        from the next bar and its own record starts afresh; the ``enable`` decision (with
        `by` and `reason`) is logged, stored, alerted and kept across restarts like the loop's
        own. False when it was neither throttled nor disabled."""
        self.bindings.engines(strategy, symbol)  # an unknown strategy is a typo: fail loudly
        decision = self.loop.enable(strategy, symbol, ts, by=by, reason=reason)
        if decision is None:
            return False
        self._decide(decision, ts)
        return True

    def _operator_enables(self, symbol: str, ts: datetime) -> None:
        """Apply the enable requests stored for the strategies attached on `symbol`."""
        requests = self.enables.due(symbol)
        if not requests:  # the common case: no query, or nothing asked
            return
        attached = {b.engine.strategy.name for b in self.bindings.on(symbol)}
        for request in (r for r in requests if r.strategy in attached):
            if not self.enable(
                request.strategy, symbol, by=request.by, reason=request.reason, ts=ts
            ):
                log.info(
                    "%s %s was not out; enable request by %s dropped",
                    request.strategy,
                    symbol,
                    request.by,
                )
            self.enables.drop(request, symbol)

    # What the bot and the API ask.

    def entry_pause(self, strategy: str, symbol: str, ts: datetime) -> str:
        """Why a new entry (more exposure) of `strategy` on `symbol` must wait, "" when it may
        go: a disabled strategy opens nothing; a throttled one at most one entry per
        `throttle_bars` bars of its symbol (an allowed entry uses up the slot); nothing opens
        during a news halt. Orders that reduce exposure are never the loop's business."""
        return self.throttle.pause(strategy, symbol, halted=self.entries_halted(symbol, ts))

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

    # Decisions to everyone who follows them.

    def _publish(self, step: LoopStep) -> None:
        """A loop step's updates and decisions: verdicts, log and sinks, lasting state."""
        self._record(step.updates, step.decisions, step.state.ts)

    def _decide(self, decision: LoopDecision, ts: datetime) -> None:
        """A decision taken outside a loop step: the same log, sinks and lasting state."""
        self._record((), (decision,), ts)

    def _record(
        self, updates: Sequence[ParamUpdate], decisions: Sequence[LoopDecision], ts: datetime
    ) -> None:
        for decision in decisions:
            self.throttle.follow(decision)
        self.journal.publish(updates, decisions)
        self.memory.persist(updates, decisions, ts)

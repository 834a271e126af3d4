"""What an `AdaptiveHook` keeps across restarts through an `AdaptiveStateStore`: a strategy
attached is registered with the loop from what was saved for it; the feedback trades, the
verdicts, rolled-back regimes, parameters in force and tuned detector thresholds are saved as
they happen. Without a store it only registers. A failing store is logged and never stops
trading."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sigma.engine.engine import Engine
from sigma.regime.adjuster import ParamUpdate
from sigma.regime.detector import Regime
from sigma.regime.feedback import TradeOutcome
from sigma.regime.loop import AdaptiveLoop, LoopDecision
from sigma.regime.state import AdaptiveStateStore

__all__ = ["AdaptiveMemory"]

log = logging.getLogger(__name__)

# Decisions about a strategy that the state store keeps across restarts.
_LASTING = frozenset({"rollback", "throttle", "disable", "restore", "reinstate", "enable"})


class AdaptiveMemory:
    """The loop's lasting state in `state` (None: nothing is kept)."""

    def __init__(self, loop: AdaptiveLoop, state: AdaptiveStateStore | None) -> None:
        self.loop = loop
        self.state = state
        # The score and reason of the last verdict per (strategy, symbol), for the state store.
        self._verdicts: dict[tuple[str, str], tuple[float | None, str]] = {}

    def restore(self, engine: Engine) -> str:
        """Register the strategy with the adjuster (and the loop) from the saved state: its
        trades and verdict always; its baseline and blocked regimes when it restarts with the
        parameters it stopped with. Returns the status to start with."""
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

    def record_trade(self, outcome: TradeOutcome) -> None:
        """Save a trade the feedback loop recorded."""
        if self.state is None:
            return
        try:
            self.state.record_trade(outcome)
        except Exception:
            log.exception("saving a feedback trade failed; trading continues")

    def persist(
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

    def save(self, strategy: str, symbol: str, ts: datetime) -> None:
        """Save the state of `strategy` on `symbol` now (after a change from outside the loop)."""
        if self.state is None:
            return
        try:
            self._save(self.state, strategy, symbol, ts)
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

"""What an `AdaptiveHook`'s loop decided, told to everyone who wants it: kept in memory for
reports and the API, logged, and passed to the sinks (database, action log, alerts). A
failing sink is logged and never stops trading."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from typing import Protocol

from sigma.regime.adjuster import ParamUpdate
from sigma.regime.loop import LoopDecision

__all__ = ["AdaptiveSink", "Journal"]

log = logging.getLogger(__name__)

# Updates and decisions kept in memory for reports and the API (the sinks keep them all).
_KEEP = 10_000


class AdaptiveSink(Protocol):
    """Receives what the loop decided (stores it, logs it, alerts on it)."""

    def on_update(self, update: ParamUpdate) -> None:
        """A parameter change that was applied."""

    def on_decision(self, decision: LoopDecision) -> None:
        """Any other decision (regime change, rollback, throttle, disable, news halt)."""


class Journal:
    """The latest updates and decisions, and the sinks that receive every one."""

    def __init__(self, sinks: Sequence[AdaptiveSink] = ()) -> None:
        self.sinks = list(sinks)
        self.updates: deque[ParamUpdate] = deque(maxlen=_KEEP)
        self.decisions: deque[LoopDecision] = deque(maxlen=_KEEP)

    def publish(self, updates: Sequence[ParamUpdate], decisions: Sequence[LoopDecision]) -> None:
        """Keep and log `updates` and `decisions`, then pass them to the sinks."""
        for update in updates:
            self.updates.append(update)
            log.info(
                "%s %s parameters %s by %s: %s",
                update.strategy,
                update.symbol,
                update.changes,
                update.changed_by,
                update.reason,
            )
        for decision in decisions:
            self.decisions.append(decision)
            log.info(
                "regime %s %s%s: %s",
                decision.kind,
                f"{decision.strategy} " if decision.strategy else "",
                decision.symbol,
                decision.reason,
            )
        for sink in self.sinks:
            try:
                for update in updates:
                    sink.on_update(update)
                for decision in decisions:
                    sink.on_decision(decision)
            except Exception:
                log.exception("adaptive sink %s failed; trading continues", type(sink).__name__)

"""Where the adaptive loop's decisions go: the database and the alert service.

`StoreSink` writes every parameter change through `sigma.store.params.set_params` (so
`strategy_param` holds the set in force and `strategy_param_history` old, new, why and who) and
every other decision as an `action_log` row. The first change of a (strategy, symbol) that has
no stored set first records the baseline, so the history starts from what the strategy ran
with. `AlertSink` raises every decision but a plain regime change on the `NotificationService`:
rollback, throttle, disable and news halt as warnings or errors; detector tuning, a restored,
reinstated (after probation) or operator-enabled strategy and a change the tester refused as
information.
"""

from __future__ import annotations

import logging

from sigma.domain.jsontext import to_jsonable
from sigma.notify.alert import Alert, Severity
from sigma.notify.service import NotificationService
from sigma.regime.adjuster import ADJUSTER, ParamUpdate
from sigma.regime.feedback import FEEDBACK
from sigma.regime.loop import LoopDecision
from sigma.store.action_log import append_actions
from sigma.store.db import session_scope
from sigma.store.handles import SessionFactory
from sigma.store.params import get_active_params, set_params
from sigma.store.write_behind import WriteBehind

__all__ = ["LOOP_AUTHORS", "AlertSink", "StoreSink", "WrittenBehind"]

log = logging.getLogger(__name__)

SOURCE = "regime"
# Who the loop's own parameter changes are written by (with the default `AdjusterConfig`): a
# stored version by one of them is a set already in force, not a change from outside (which
# `AdaptiveHook.change_params` must test and make the new baseline).
LOOP_AUTHORS = (ADJUSTER, FEEDBACK)
# Regime changes are routine (stored, not alerted); every decision about a strategy, the
# detector or trading risk reaches an operator.
_ALERT_SEVERITY: dict[str, Severity] = {
    "rollback": "warning",
    "throttle": "warning",
    "disable": "error",
    "news_halt": "warning",
    "detector_tuned": "info",
    "restore": "info",
    "reinstate": "info",
    "enable": "info",
    "refused": "info",
}


class StoreSink:
    """Persists updates and decisions, one transaction each."""

    def __init__(self, factory: SessionFactory, *, mode: str | None = None) -> None:
        self.factory = factory
        self.mode = mode

    def on_update(self, update: ParamUpdate) -> None:
        """Record the change (and, the first time, the baseline it started from)."""
        with session_scope(self.factory) as session:
            if get_active_params(session, update.strategy, update.symbol) is None:
                set_params(
                    session,
                    update.strategy,
                    update.symbol,
                    update.old,
                    "baseline in force before the first regime adjustment",
                    update.changed_by,
                )
            set_params(
                session,
                update.strategy,
                update.symbol,
                update.new,
                update.reason,
                update.changed_by,
            )

    def on_decision(self, decision: LoopDecision) -> None:
        """One `action_log` row, action ``regime_<kind>``."""
        with session_scope(self.factory) as session:
            append_actions(
                session,
                [
                    {
                        "ts": decision.ts,
                        "source": SOURCE,
                        "action": f"regime_{decision.kind}",
                        "mode": self.mode,
                        "strategy": decision.strategy,
                        "symbol": decision.symbol,
                        "details": to_jsonable({"reason": decision.reason, **decision.details}),
                    }
                ],
            )


class WrittenBehind:
    """A `StoreSink` whose writes go to `writer` (see `sigma.store.write_behind`): a live
    process's regime loop hands its decisions over and goes on, where each one's row held the
    price loop 12 to 16 ms on PostgreSQL under load. They are written in the order taken."""

    def __init__(self, sink: StoreSink, writer: WriteBehind) -> None:
        self.sink = sink
        self.writer = writer

    def on_update(self, update: ParamUpdate) -> None:
        """Queue the parameter change."""
        self.writer.later(self.sink.on_update, update)

    def on_decision(self, decision: LoopDecision) -> None:
        """Queue the decision's row."""
        self.writer.later(self.sink.on_decision, decision)


class AlertSink:
    """Alerts on every decision but a regime change (deduplicated per kind, strategy and
    symbol). Needs a running event loop; without one (a synchronous backtest)
    the alert is only logged."""

    def __init__(self, notifier: NotificationService) -> None:
        self.notifier = notifier

    def on_update(self, update: ParamUpdate) -> None:
        """Parameter changes are routine: stored, not alerted."""

    def on_decision(self, decision: LoopDecision) -> None:
        """Alert if the decision needs an operator's attention."""
        severity = _ALERT_SEVERITY.get(decision.kind)
        if severity is None:
            return
        who = f"{decision.strategy} " if decision.strategy else ""
        alert = Alert(
            severity,
            SOURCE,
            f"{decision.kind} {who}{decision.symbol}: {decision.reason}",
            dedupe_key=f"regime_{decision.kind}:{decision.strategy}:{decision.symbol}",
            details=to_jsonable(decision.details),
        )
        try:
            self.notifier.submit(alert)
        except RuntimeError:
            log.warning("no event loop; alert not sent: %s", alert.title)

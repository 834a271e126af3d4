"""AdaptiveStateStore: what the adaptive loop learnt, kept in the database across restarts.

A restart must not forget that a strategy was disabled, which regimes' presets did harm, how
much confirmation a symbol's detector now demands, or the trades the quality scores are made
of. The store keeps:

* ``regime_trades`` - every trade the feedback loop recorded (real and shadow), so after a
  restart `QualityAssessment` scores exactly what it scored before;
* ``regime_state`` kind ``strategy`` per (strategy, symbol) - the last verdict (``keep``,
  ``throttle`` or ``disable``, its score and reason, when it was taken, when probation may
  lift it, from when the strategy's own trades count), the regimes whose preset was rolled
  back, the baseline parameters and the parameters in force;
* ``regime_state`` kind ``detector`` per symbol - the detector's tuned ``confirm_bars``;
* ``regime_state`` kind ``enable`` per (strategy, symbol) - an operator's request to lift the
  verdict (who, why, when), until a hook applies it.

`AdaptiveHook` writes through it as decisions are taken and reads it when an engine is
attached. The rows are small and written only on trades and decisions, never per bar.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sigma.regime.detector import Regime
from sigma.regime.feedback import VARIANTS, Standing, TradeOutcome
from sigma.store import regime_state, regime_trades
from sigma.store.db import session_scope
from sigma.store.handles import Session, SessionFactory
from sigma.store.jsonsafe import to_jsonable
from sigma.store.write_behind import WriteBehind

__all__ = ["AdaptiveStateStore", "EnableRequest", "SavedStrategy", "WriteBehindStateStore"]

STRATEGY = "strategy"
DETECTOR = "detector"
ENABLE = "enable"


def _time(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value))


@dataclass(frozen=True, slots=True)
class SavedStrategy:
    """What was saved for one (strategy, symbol)."""

    status: str = "keep"
    score: float | None = None
    reason: str = ""
    blocked: frozenset[Regime] = frozenset()
    baseline: dict[str, Any] | None = None
    current: dict[str, Any] | None = None
    trades: list[TradeOutcome] = field(default_factory=list)
    since: datetime | None = None
    until: datetime | None = None
    fresh_from: datetime | None = None

    @property
    def standing(self) -> Standing:
        """Where the strategy stood (see `Standing`)."""
        return Standing(self.status, self.since, self.until, self.fresh_from)

    def resumes(self, params: Mapping[str, Any]) -> bool:
        """True when `params` are the parameters that were in force when this was saved (the
        strategy restarts where it stopped); False after someone else changed them."""
        return self.current is not None and self.current == to_jsonable(dict(params))


@dataclass(frozen=True, slots=True)
class EnableRequest:
    """An operator's request to lift the verdict on `strategy` on `symbol`."""

    strategy: str
    symbol: str
    by: str
    reason: str
    ts: datetime


class AdaptiveStateStore:
    """Reads and writes the adaptive loop's lasting state (see the module docstring).

    `keep` trades per (strategy, symbol, regime, variant) are kept, matching
    `FeedbackMechanism.keep`; older ones are deleted when the state is loaded."""

    def __init__(self, factory: SessionFactory, *, keep: int = 200) -> None:
        if keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        self.factory = factory
        self.keep = keep

    # --- writes ------------------------------------------------------------------------------

    def record_trade(self, outcome: TradeOutcome) -> None:
        """One trade the feedback loop recorded."""
        with session_scope(self.factory) as session:
            regime_trades.add_trade(
                session,
                outcome.strategy,
                outcome.symbol,
                outcome.regime.value,
                outcome.variant,
                return_pct=outcome.return_pct,
                entry_ts=outcome.entry_ts,
                exit_ts=outcome.exit_ts,
                slippage=outcome.slippage,
            )

    def forget(self, strategy: str, symbol: str, regime: Regime) -> None:
        """Drop the adjusted trades of `regime` (what `FeedbackMechanism.forget` does)."""
        with session_scope(self.factory) as session:
            regime_trades.delete_trades(session, strategy, symbol, regime.value, "adjusted")

    def save_strategy(
        self,
        strategy: str,
        symbol: str,
        *,
        status: str,
        score: float | None,
        reason: str,
        blocked: frozenset[Regime],
        baseline: Mapping[str, Any],
        current: Mapping[str, Any],
        ts: datetime,
        since: datetime | None = None,
        until: datetime | None = None,
        fresh_from: datetime | None = None,
    ) -> None:
        """The verdict (with its `Standing` times), blocked regimes and parameters of one
        (strategy, symbol)."""
        doc = {
            "status": status,
            "since": since,
            "until": until,
            "fresh_from": fresh_from,
            "score": score,
            "reason": reason,
            "blocked": sorted(r.value for r in blocked),
            "baseline": dict(baseline),
            "current": dict(current),
            "ts": ts,
        }
        self._upsert(STRATEGY, strategy, symbol, to_jsonable(doc))

    def save_detector(self, symbol: str, confirm_bars: int) -> None:
        """The detector's tuned confirmation for `symbol`."""
        self._upsert(DETECTOR, "", symbol, {"confirm_bars": confirm_bars})

    def request_enable(
        self,
        strategy: str,
        symbol: str,
        *,
        by: str,
        reason: str = "",
        ts: datetime | None = None,
    ) -> SavedStrategy:
        """Ask for the verdict on (strategy, symbol) to be lifted: the hook that trades it
        applies the request on its next bar of `symbol` (at start if none runs now) as an
        ``enable`` decision. `ts` defaults to now, an empty `reason` is recorded as "no reason
        given". Returns the saved state; a strategy neither throttled nor disabled gets no
        request."""
        saved = self.load_strategy(strategy, symbol)
        if saved.status != "keep":
            request = {
                "by": by,
                "reason": reason or "no reason given",
                "ts": ts or datetime.now(UTC),
            }
            self._upsert(ENABLE, strategy, symbol, to_jsonable(request))
        return saved

    def enable_requests(self, symbol: str) -> list[EnableRequest]:
        """The pending enable requests of `symbol`, oldest first."""
        with self.factory() as session:
            docs = regime_state.documents(session, ENABLE, symbol=symbol)
        return [
            EnableRequest(
                strategy,
                symbol,
                str(doc["by"]),
                str(doc["reason"]),
                datetime.fromisoformat(str(doc["ts"])),
            )
            for strategy, _, doc in docs
        ]

    def drop_enable_request(self, strategy: str, symbol: str) -> None:
        """Forget an enable request (it was applied)."""
        with session_scope(self.factory) as session:
            regime_state.delete_document(session, ENABLE, strategy, symbol)

    def reset(self, strategy: str, symbol: str) -> bool:
        """Forget the verdict and blocked regimes of (strategy, symbol) - an operator's decision
        to give it a fresh start; its trades stay. True if there was anything to forget."""
        with session_scope(self.factory) as session:
            return regime_state.delete_document(session, STRATEGY, strategy, symbol)

    def _upsert(self, kind: str, strategy: str, symbol: str, doc: dict[str, Any]) -> None:
        with session_scope(self.factory) as session:
            regime_state.put_document(session, kind, strategy, symbol, doc)

    # --- reads -------------------------------------------------------------------------------

    def load_strategy(self, strategy: str, symbol: str) -> SavedStrategy:
        """The saved state of (strategy, symbol), trades oldest first (empty when none)."""
        with session_scope(self.factory) as session:
            trades = self._trades(session, strategy, symbol)
            doc = regime_state.document(session, STRATEGY, strategy, symbol)
        if doc is None:
            return SavedStrategy(trades=trades)
        return SavedStrategy(
            status=str(doc.get("status", "keep")),
            score=doc.get("score"),
            reason=str(doc.get("reason", "")),
            blocked=frozenset(Regime(r) for r in doc.get("blocked", [])),
            baseline=doc.get("baseline"),
            current=doc.get("current"),
            trades=trades,
            since=_time(doc.get("since")),
            until=_time(doc.get("until")),
            fresh_from=_time(doc.get("fresh_from")),
        )

    def verdicts(self) -> dict[tuple[str, str], SavedStrategy]:
        """The saved verdict of every (strategy, symbol) (status, reason and times; without
        trades, baselines or blocked regimes), for showing, not for resuming."""
        with self.factory() as session:
            docs = regime_state.documents(session, STRATEGY)
        return {
            (strategy, symbol): SavedStrategy(
                status=str(doc.get("status", "keep")),
                score=doc.get("score"),
                reason=str(doc.get("reason", "")),
                since=_time(doc.get("since")),
                until=_time(doc.get("until")),
            )
            for strategy, symbol, doc in docs
        }

    def load_detector(self, symbol: str) -> int | None:
        """The saved ``confirm_bars`` of `symbol`, None when never tuned."""
        with self.factory() as session:
            doc = regime_state.document(session, DETECTOR, "", symbol)
        return None if doc is None else int(doc["confirm_bars"])

    def _trades(self, session: Session, strategy: str, symbol: str) -> list[TradeOutcome]:
        """The newest `keep` trades of each regime and variant, oldest first; older rows are
        deleted (the loop would never look at them again)."""
        groups = [(regime.value, variant) for regime in Regime for variant in VARIANTS]
        rows = regime_trades.newest_trades(session, strategy, symbol, groups, self.keep)
        return [
            TradeOutcome(
                r.strategy,
                r.symbol,
                Regime(r.regime),
                r.variant,
                r.return_pct,
                r.entry_ts,
                r.exit_ts,
                r.slippage,
            )
            for r in rows
        ]


class WriteBehindStateStore(AdaptiveStateStore):
    """The store as a live process uses it: the hook's writes go to `writer` (see
    `sigma.store.write_behind`), so the price loop never waits for them. A feedback trade's
    row cost the loop 2 to 5 ms on PostgreSQL on every closed trade. The hook's reads run
    after the writes queued before them, so they see what it wrote; they are rare (an engine
    attached, enable requests polled every few seconds)."""

    def __init__(self, factory: SessionFactory, writer: WriteBehind, *, keep: int = 200) -> None:
        super().__init__(factory, keep=keep)
        self.writer = writer

    def record_trade(self, outcome: TradeOutcome) -> None:
        """Queue the trade's row."""
        self.writer.later(super().record_trade, outcome)

    def forget(self, strategy: str, symbol: str, regime: Regime) -> None:
        """Queue the deletion (after the trades queued before it)."""
        self.writer.later(super().forget, strategy, symbol, regime)

    def save_strategy(self, strategy: str, symbol: str, **state: Any) -> None:
        """Queue the upsert of (strategy, symbol)'s state."""
        self.writer.later(super().save_strategy, strategy, symbol, **state)

    def save_detector(self, symbol: str, confirm_bars: int) -> None:
        """Queue the upsert of the detector's threshold."""
        self.writer.later(super().save_detector, symbol, confirm_bars)

    def drop_enable_request(self, strategy: str, symbol: str) -> None:
        """Queue the deletion of an applied enable request."""
        self.writer.later(super().drop_enable_request, strategy, symbol)

    def enable_requests(self, symbol: str) -> list[EnableRequest]:
        """The pending enable requests, read after the queued writes."""
        return self.writer.after_writes(super().enable_requests, symbol)

    def load_strategy(self, strategy: str, symbol: str) -> SavedStrategy:
        """The saved state, read after the queued writes."""
        return self.writer.after_writes(super().load_strategy, strategy, symbol)

    def load_detector(self, symbol: str) -> int | None:
        """The saved threshold, read after the queued writes."""
        return self.writer.after_writes(super().load_detector, symbol)

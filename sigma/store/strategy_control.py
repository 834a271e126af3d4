"""An operator's controls per (strategy, symbol), in `strategy_controls`, and their audit rows.

Two switches, each with who, when and why: `enabled` (a stopped strategy opens no new
position; exits and an operator's own orders still go) and `pinned` (the regime loop leaves
the parameters alone: set by a manual parameter change, cleared when an operator allows
regime tuning again). A pair never touched has no row and reads as enabled and unpinned.
The API and the CLI write here first and then tell the running bot; the bot reads the table
at start and after a lost bus connection, so a missed message loses nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sigma.store.jsonsafe import to_jsonable
from sigma.store.models import ActionLog, StrategyControl

__all__ = ["ControlState", "all_controls", "audit", "get_control", "set_enabled", "set_pinned"]


@dataclass(frozen=True, slots=True)
class ControlState:
    """The controls of one (strategy, symbol) as last set."""

    strategy: str
    symbol: str
    enabled: bool = True
    reason: str = ""
    changed_by: str = ""
    changed_at: datetime | None = None
    pinned: bool = False
    pin_reason: str = ""
    pinned_by: str = ""
    pinned_at: datetime | None = None

    @classmethod
    def of(cls, row: StrategyControl) -> ControlState:
        """The state a row holds."""
        return cls(
            row.strategy,
            row.symbol,
            row.enabled,
            row.reason,
            row.changed_by,
            row.changed_at,
            row.pinned,
            row.pin_reason,
            row.pinned_by,
            row.pinned_at,
        )


def get_control(session: Session, strategy: str, symbol: str) -> ControlState:
    """The controls of `strategy` on `symbol` (enabled and unpinned when never set)."""
    row = session.get(StrategyControl, (strategy, symbol))
    return ControlState(strategy, symbol) if row is None else ControlState.of(row)


def all_controls(session: Session) -> list[ControlState]:
    """Every stored row, by strategy and symbol."""
    rows = session.scalars(
        select(StrategyControl).order_by(StrategyControl.strategy, StrategyControl.symbol)
    )
    return [ControlState.of(row) for row in rows]


def _row(session: Session, strategy: str, symbol: str) -> StrategyControl:
    row = session.get(StrategyControl, (strategy, symbol), with_for_update=True)
    if row is None:
        row = StrategyControl(
            strategy=strategy,
            symbol=symbol,
            enabled=True,
            reason="",
            changed_by="",
            pinned=False,
            pin_reason="",
            pinned_by="",
        )
        session.add(row)
    return row


def set_enabled(
    session: Session, strategy: str, symbol: str, enabled: bool, *, reason: str, by: str
) -> ControlState:
    """Start (`enabled`) or stop `strategy` on `symbol`, recording who and why (the caller
    commits)."""
    row = _row(session, strategy, symbol)
    row.enabled, row.reason, row.changed_by = enabled, reason, by
    row.changed_at = datetime.now(UTC)
    session.flush()
    return ControlState.of(row)


def set_pinned(
    session: Session, strategy: str, symbol: str, pinned: bool, *, reason: str, by: str
) -> ControlState:
    """Keep the regime loop off the parameters of `strategy` on `symbol` (`pinned`) or let it
    tune them again, recording who and why (the caller commits)."""
    row = _row(session, strategy, symbol)
    row.pinned, row.pin_reason, row.pinned_by = pinned, reason, by
    row.pinned_at = datetime.now(UTC)
    session.flush()
    return ControlState.of(row)


def audit(
    session: Session,
    action: str,
    *,
    source: str,
    strategy: str | None,
    symbol: str | None,
    mode: str | None = None,
    **details: Any,
) -> None:
    """One `action_log` row for an operator's command, in the caller's transaction: the
    record exists exactly when the change it describes does."""
    session.add(
        ActionLog(
            ts=datetime.now(UTC),
            source=source,
            action=action,
            mode=mode,
            strategy=strategy,
            symbol=symbol,
            details=to_jsonable(details),
        )
    )

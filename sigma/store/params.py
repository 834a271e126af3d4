"""Versioned strategy parameters: the current set per (strategy, symbol) and every change."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sigma.store.jsonsafe import to_jsonable
from sigma.store.models import StrategyParam, StrategyParamHistory
from sigma.store.settings import VersionConflict

__all__ = [
    "ParamChange",
    "VersionConflict",
    "active_version",
    "deactivate_params",
    "get_active_params",
    "param_history",
    "set_params",
]


@dataclass(frozen=True, slots=True)
class ParamChange:
    """One history row: what the parameters were and became at `version`."""

    version: int
    old: dict[str, Any] | None
    new: dict[str, Any]
    reason: str
    changed_by: str
    ts: datetime


def _current(session: Session, strategy: str, symbol: str, *, lock: bool) -> StrategyParam | None:
    query = select(StrategyParam).where(
        StrategyParam.strategy == strategy, StrategyParam.symbol == symbol
    )
    if lock:
        # Two adjusters changing the same set serialise here instead of both writing version n+1.
        query = query.with_for_update()
    return session.scalar(query)


def get_active_params(session: Session, strategy: str, symbol: str) -> dict[str, Any] | None:
    """The active parameters for `strategy` on `symbol`, or None when none are set/active."""
    active = active_version(session, strategy, symbol)
    return None if active is None else active[0]


def active_version(
    session: Session, strategy: str, symbol: str
) -> tuple[dict[str, Any], int] | None:
    """The active parameters for `strategy` on `symbol` and their version, or None when none
    are set/active."""
    row = _current(session, strategy, symbol, lock=False)
    if row is None or not row.active:
        return None
    return dict(row.params), row.version


def version_author(session: Session, strategy: str, symbol: str, version: int) -> str | None:
    """Who wrote `version` of the parameters of `strategy` on `symbol` (None: no such
    version)."""
    return session.scalar(
        select(StrategyParamHistory.changed_by)
        .join(StrategyParam)
        .where(
            StrategyParam.strategy == strategy,
            StrategyParam.symbol == symbol,
            StrategyParamHistory.version == version,
        )
    )


def set_params(
    session: Session,
    strategy: str,
    symbol: str,
    params: Mapping[str, Any],
    reason: str,
    changed_by: str,
    *,
    expected_version: int | None = None,
) -> int:
    """Make `params` the active set, record the change, and return the new version.

    The first set is version 1 (history `old` is None); each change bumps the version by one.
    Setting the values already active is a no-op returning the current version, so a periodic
    adjuster does not flood the history. Decimal values are stored as exact strings.

    `expected_version` is the version the edit was made against (0: none stored yet): when the
    set changed meanwhile the edit is refused with `VersionConflict` rather than overwriting
    someone else's change. Without it the newest write wins.
    """
    new = to_jsonable(dict(params))
    row = _current(session, strategy, symbol, lock=True)
    current = 0 if row is None else row.version
    if expected_version is not None and expected_version != current:
        raise VersionConflict(f"{strategy}/{symbol}", expected_version, current)
    if row is None:
        row = StrategyParam(strategy=strategy, symbol=symbol, params=new, version=1, active=True)
        old = None
        session.add(row)
    elif row.active and row.params == new:
        return row.version
    else:
        old = dict(row.params)
        row.params = new
        row.version += 1
        row.active = True
    session.add(
        StrategyParamHistory(
            param=row,
            version=row.version,
            old_params=old,
            new_params=new,
            reason=reason,
            changed_by=changed_by,
        )
    )
    session.flush()
    return row.version


def deactivate_params(session: Session, strategy: str, symbol: str) -> bool:
    """Stop using the stored set (e.g. a strategy is retired); True if there was one active."""
    row = _current(session, strategy, symbol, lock=True)
    if row is None or not row.active:
        return False
    row.active = False
    session.flush()
    return True


def param_history(session: Session, strategy: str, symbol: str) -> list[ParamChange]:
    """Every recorded change for `strategy` on `symbol`, oldest first."""
    query = (
        select(StrategyParamHistory)
        .join(StrategyParam)
        .where(StrategyParam.strategy == strategy, StrategyParam.symbol == symbol)
        .order_by(StrategyParamHistory.version)
    )
    return [
        ParamChange(h.version, h.old_params, h.new_params, h.reason, h.changed_by, h.ts)
        for h in session.scalars(query)
    ]

"""Strategy parameter sets as the API and the bot's controls show them: the active sets with
their last change, and who made each set's current version."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from sigma.store.models import StrategyParam, StrategyParamHistory


def active_sets(session: Session) -> list[tuple[StrategyParam, StrategyParamHistory | None]]:
    """Every active parameter set, by strategy and symbol, with the change that made its
    current version (None when that was not recorded)."""
    rows = session.scalars(
        select(StrategyParam)
        .where(StrategyParam.active.is_(True))
        .order_by(StrategyParam.strategy, StrategyParam.symbol)
    )
    out = []
    for row in rows:
        last = session.scalar(
            select(StrategyParamHistory).where(
                StrategyParamHistory.param_id == row.id,
                StrategyParamHistory.version == row.version,
            )
        )
        out.append((row, last))
    return out


def all_sets(session: Session) -> list[StrategyParam]:
    """Every stored parameter set (active or not), oldest first."""
    return list(session.scalars(select(StrategyParam).order_by(StrategyParam.id)))


def sets_by_pair(session: Session) -> dict[tuple[str, str], StrategyParam]:
    """Every stored parameter set (active or not) by (strategy, symbol)."""
    return {(p.strategy, p.symbol): p for p in all_sets(session)}


def current_authors(session: Session) -> dict[int, str]:
    """Who made the current version of each parameter set, by the set's id."""
    last_changes = session.execute(
        select(StrategyParamHistory.param_id, StrategyParamHistory.changed_by)
        .join(StrategyParam)
        .where(StrategyParamHistory.version == StrategyParam.version)
    )
    return {param_id: by for param_id, by in last_changes}

"""The versions of the ML entry gate's models (`ml_models`): one row per trained version of a
named model per symbol, at most one of them active (`sigma.research.ml_tune` decides which,
`sigma.research.ml_gate` loads it)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from sigma.store.models import MLModel

__all__ = ["active_version", "active_versions", "add_version", "newest_version", "versions"]


def newest_version(session: Session, name: str, symbol: str) -> MLModel | None:
    """The highest version of `name` for `symbol`, active or not (None: never stored)."""
    return session.scalar(
        select(MLModel)
        .where(MLModel.name == name, MLModel.symbol == symbol)
        .order_by(MLModel.version.desc())
        .limit(1)
    )


def add_version(
    session: Session,
    name: str,
    symbol: str,
    version: int,
    *,
    config: dict[str, Any],
    metrics: dict[str, Any],
    model: bytes,
    active: bool,
) -> MLModel:
    """Store `version` (the serialised `model` with its settings and figures). Every other
    version of `name` for `symbol` stops being active: the newest one alone may be used."""
    session.execute(
        update(MLModel).where(MLModel.name == name, MLModel.symbol == symbol).values(active=False)
    )
    row = MLModel(
        name=name,
        symbol=symbol,
        version=version,
        config=config,
        metrics=metrics,
        model=model,
        active=active,
    )
    session.add(row)
    session.flush()
    return row


def active_version(session: Session, name: str, symbol: str) -> MLModel | None:
    """The active version of `name` for `symbol`, None when none is."""
    return session.scalar(
        select(MLModel).where(MLModel.name == name, MLModel.symbol == symbol, MLModel.active)
    )


def active_versions(session: Session, name: str, symbols: Iterable[str]) -> dict[str, int]:
    """The active version number of `name` per symbol of `symbols` that has one."""
    rows = session.execute(
        select(MLModel.symbol, MLModel.version).where(
            MLModel.name == name, MLModel.symbol.in_(list(symbols)), MLModel.active
        )
    )
    return {symbol: version for symbol, version in rows}


def versions(session: Session, name: str, symbol: str | None, limit: int) -> list[MLModel]:
    """Stored versions of `name`, newest first per symbol (all symbols when `symbol` is
    None), at most `limit`."""
    query = select(MLModel).where(MLModel.name == name)
    if symbol is not None:
        query = query.where(MLModel.symbol == symbol)
    order = (MLModel.symbol, MLModel.version.desc())
    return list(session.scalars(query.order_by(*order).limit(limit)))

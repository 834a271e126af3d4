"""`regime_state`: the adaptive loop's lasting decisions, one JSON document per (kind,
strategy, symbol) - what the kinds are and what their documents hold is
`sigma.regime.state`'s business."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.orm import Session

from sigma.store.models import RegimeState

__all__ = ["delete_document", "document", "documents", "put_document"]


def _of(kind: str, strategy: str, symbol: str) -> tuple[ColumnElement[bool], ...]:
    return (
        RegimeState.kind == kind,
        RegimeState.strategy == strategy,
        RegimeState.symbol == symbol,
    )


def put_document(
    session: Session, kind: str, strategy: str, symbol: str, doc: dict[str, Any]
) -> None:
    """Insert or replace the document of (kind, strategy, symbol)."""
    row = session.scalar(select(RegimeState).where(*_of(kind, strategy, symbol)).with_for_update())
    if row is None:
        session.add(RegimeState(kind=kind, strategy=strategy, symbol=symbol, state=doc))
    else:
        row.state = doc


def document(session: Session, kind: str, strategy: str, symbol: str) -> dict[str, Any] | None:
    """The document of (kind, strategy, symbol), None when there is none."""
    row = session.scalar(select(RegimeState).where(*_of(kind, strategy, symbol)))
    return None if row is None else dict(row.state)


def documents(
    session: Session, kind: str, *, symbol: str | None = None
) -> list[tuple[str, str, dict[str, Any]]]:
    """(strategy, symbol, document) of every document of `kind` (of `symbol` only, when
    given), oldest first."""
    query = select(RegimeState).where(RegimeState.kind == kind)
    if symbol is not None:
        query = query.where(RegimeState.symbol == symbol)
    rows = session.scalars(query.order_by(RegimeState.id))
    return [(r.strategy, r.symbol, dict(r.state)) for r in rows]


def delete_document(session: Session, kind: str, strategy: str, symbol: str) -> bool:
    """Delete the document of (kind, strategy, symbol); True when there was one."""
    result = session.execute(delete(RegimeState).where(*_of(kind, strategy, symbol)))
    return bool(getattr(result, "rowcount", 0))

"""`news_items`: every news item taken in from a feed or a dropped file, unique by its feed
key (`sigma.regime.news_feed.NewsStore` dedupes and restores with it)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from sigma.store.models import NewsRecord

__all__ = ["add_news", "known_keys", "news_since"]

_SOURCE_LENGTH = 500


def known_keys(session: Session, keys: Sequence[str]) -> set[str]:
    """Those of `keys` already stored."""
    return set(session.scalars(select(NewsRecord.key).where(NewsRecord.key.in_(keys))))


def add_news(
    session: Session,
    key: str,
    *,
    ts: datetime,
    headline: str,
    body: str,
    source: str,
    symbols: Sequence[str],
    fetched_at: datetime,
) -> None:
    """Store one item under `key` (not stored yet); a longer `source` is cut to the column's
    500 characters."""
    session.add(
        NewsRecord(
            key=key,
            ts=ts,
            headline=headline,
            body=body,
            source=source[:_SOURCE_LENGTH],
            symbols=list(symbols),
            fetched_at=fetched_at,
        )
    )


def news_since(session: Session, start: datetime) -> list[NewsRecord]:
    """Items published at or after `start`, oldest first."""
    query = select(NewsRecord).where(NewsRecord.ts >= start).order_by(NewsRecord.ts)
    return list(session.scalars(query))

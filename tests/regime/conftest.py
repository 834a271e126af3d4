"""Fixtures of the adaptive-layer tests: a migrated SQLite database and small helpers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from sigma.domain import Bar
from sigma.store.db import init_db, session_factory

T0 = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def factory(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    """Sessions on a fresh SQLite database migrated to head."""
    engine = init_db(f"sqlite:///{tmp_path / 'sigma.db'}")
    try:
        yield session_factory(engine)
    finally:
        engine.dispose()


def make_bar(i: int, close: float, *, symbol: str = "SYM", volume: float = 1000.0) -> Bar:
    """A one-minute bar `i` minutes after T0 with a small range around `close`."""
    c = Decimal(repr(round(close, 4)))
    spread = c * Decimal("0.0005")
    return Bar(
        symbol, T0 + timedelta(minutes=i), c, c + spread, c - spread, c, Decimal(repr(volume))
    )

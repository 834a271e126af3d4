"""OHLCV bars as pandas frames: index `ts` (UTC), float columns open/high/low/close/volume."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from sigma.domain.money import to_decimal, utc
from sigma.store.models import BarRecord, Base

COLUMNS = ("open", "high", "low", "close", "volume")
# Rows per INSERT: 500 x 8 parameters stays far below SQLite's and PostgreSQL's bind limits.
_CHUNK = 500


def _utc_index(frame: pd.DataFrame) -> pd.DatetimeIndex:
    if not isinstance(frame.index, pd.DatetimeIndex):
        raise ValueError("bar frame needs a DatetimeIndex named 'ts'")
    index = frame.index
    # A naive index is taken to be UTC, as everywhere in SIGMA.
    return index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")


def _rows(symbol: str, timeframe: str, frame: pd.DataFrame) -> Iterator[dict[str, Any]]:
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"bar frame lacks columns {missing}")
    index = _utc_index(frame)
    # tolist() yields Python floats, whose repr is the shortest exact decimal form.
    values = frame.loc[:, list(COLUMNS)].to_numpy(dtype=float).tolist()
    for ts, row in zip(index, values, strict=True):
        record: dict[str, Any] = {
            "symbol": symbol,
            "timeframe": timeframe,
            "ts": ts.to_pydatetime(),
        }
        for name, value in zip(COLUMNS, row, strict=True):
            record[name] = to_decimal(value, name=f"{symbol} {ts.isoformat()} {name}")
        yield record


def dialect_insert(dialect: str, model: type[Base]) -> Insert:
    """An INSERT into `model`'s table that offers `on_conflict_do_*` on `dialect`."""
    if dialect == "postgresql":
        return postgresql.insert(model)
    if dialect == "sqlite":
        return sqlite.insert(model)
    raise NotImplementedError(f"upserts are not supported on {dialect}")


def bar_upsert(dialect: str) -> Insert:
    """INSERT into `bars` that replaces a stored bar of the same symbol, timeframe and time."""
    stmt: Any = dialect_insert(dialect, BarRecord)
    upsert: Insert = stmt.on_conflict_do_update(
        index_elements=["symbol", "timeframe", "ts"],
        set_={name: stmt.excluded[name] for name in COLUMNS},
    )
    return upsert


def upsert_bars(session: Session, symbol: str, timeframe: str, frame: pd.DataFrame) -> int:
    """Insert bars, replacing any stored bar with the same symbol, timeframe and time.

    Values go through `Decimal(repr(float))`, so 0.1 is stored as exactly 0.1 (then rounded to
    10 decimals like every NUMERIC(28, 10) column). Returns the number of rows written. Raises
    ValueError for a missing column, a non-datetime index or a NaN/infinite value.
    """
    rows = list(_rows(symbol, timeframe, frame))
    upsert = bar_upsert(session.get_bind().dialect.name)
    for start in range(0, len(rows), _CHUNK):
        session.execute(upsert, rows[start : start + _CHUNK])
    return len(rows)


def read_bars(
    session: Session,
    symbol: str,
    timeframe: str,
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    last: int | None = None,
) -> pd.DataFrame:
    """Stored bars in time order for `start <= ts < end` (either bound optional); with
    `last`, only the latest `last` of them (a restart's indicator warm-up).

    Same layout `upsert_bars` takes: UTC DatetimeIndex named `ts`, float64 columns.
    """
    columns = [getattr(BarRecord, name) for name in COLUMNS]
    query = select(BarRecord.ts, *columns).where(
        BarRecord.symbol == symbol, BarRecord.timeframe == timeframe
    )
    if start is not None:
        query = query.where(BarRecord.ts >= utc(start))
    if end is not None:
        query = query.where(BarRecord.ts < utc(end))
    if last is None:
        rows = session.execute(query.order_by(BarRecord.ts)).all()
    else:
        rows = session.execute(query.order_by(BarRecord.ts.desc()).limit(last)).all()[::-1]
    index = pd.DatetimeIndex([row[0] for row in rows], name="ts", tz="UTC")
    values = [[float(v) for v in row[1:]] for row in rows]
    return pd.DataFrame(values, index=index, columns=list(COLUMNS), dtype="float64")

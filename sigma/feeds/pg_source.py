"""Reading bars from a PostgreSQL table (``pg:table`` or ``pg:schema.table``) with SQLAlchemy."""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from sigma.feeds.errors import DataError, RowNumbers
from sigma.feeds.frame import TS
from sigma.feeds.normalise import SYMBOL, resolve_columns

if TYPE_CHECKING:
    import sqlalchemy as sa

PREFIX = "pg:"
_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


def parse_table(source: str) -> tuple[str | None, str]:
    """``pg:schema.table`` as (schema, table). Names are checked against a strict pattern even
    though SQLAlchemy quotes them, so nothing odd reaches the database or the error messages."""
    name = source[len(PREFIX) :]
    if not _TABLE.match(name):
        raise DataError(source, "table name must be TABLE or SCHEMA.TABLE of letters, digits and _")
    schema, _, table = name.rpartition(".")
    return (schema or None), table


def read_pg_raw(
    source: str,
    database_url: str | None,
    *,
    symbol: str | None,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
) -> tuple[pd.DataFrame, RowNumbers]:
    """Rows of the table for ``symbol`` within [start, end], oldest first, numbered 1..n.

    The filters run in SQL so only the wanted window leaves the database. Rows are ordered by
    ts because a table has no order of its own; repeated timestamps are still caught by
    validation.
    """
    # Here, not at the top: SQLAlchemy loads only when a table is read, not for every file.
    import sqlalchemy as sa

    schema, table = parse_table(source)
    if database_url is None:
        raise DataError(source, "database_url is required to read a pg: source")
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            if not inspector.has_table(table, schema=schema):
                raise DataError(source, "table does not exist")
            described = inspector.get_columns(table, schema=schema)
            found = resolve_columns([str(c["name"]) for c in described], source)
            ts_type = next(c["type"] for c in described if c["name"] == found[TS])
            stmt = _select(table, schema, found, ts_type, symbol=symbol, start=start, end=end)
            raw = pd.read_sql(stmt, conn)
    finally:
        engine.dispose()
    return raw, RowNumbers.rows(len(raw))


def _select(
    table: str,
    schema: str | None,
    found: dict[str, str],
    ts_type: object,
    *,
    symbol: str | None,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
) -> sa.Select[*tuple[Any, ...]]:
    import sqlalchemy as sa

    columns: dict[str, sa.ColumnClause[object]] = {
        key: sa.column(name) for key, name in found.items()
    }
    target = sa.table(table, *columns.values(), schema=schema)
    stmt = sa.select(*columns.values()).select_from(target).order_by(columns[TS])
    if symbol is not None and SYMBOL in columns:
        stmt = stmt.where(columns[SYMBOL] == symbol)
    if not isinstance(ts_type, sa.DateTime):
        # Epoch numbers or text: the window is applied after parsing, by the caller.
        return stmt
    # A "timestamp without time zone" column holds UTC wall time by SIGMA's convention; comparing
    # it with an aware value would make PostgreSQL apply the session time zone.
    aware = bool(ts_type.timezone)
    if start is not None:
        stmt = stmt.where(columns[TS] >= _bound(start, aware))
    if end is not None:
        stmt = stmt.where(columns[TS] <= _bound(end, aware))
    return stmt


def _bound(stamp: pd.Timestamp, aware: bool) -> datetime:
    return stamp.to_pydatetime() if aware else stamp.tz_convert(None).to_pydatetime()

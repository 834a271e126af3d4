"""Reading rows of a table in another PostgreSQL database (a ``pg:`` bar source of the
backtest loaders, `sigma.feeds.pg_source`), in bulk: one connection, one query.

Which columns mean what is the caller's: it is shown the table's column names and asks for
the ones it wants. The filters run in SQL so only the wanted window leaves the database.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa


class TableReader:
    """One table of a database, over an open connection (`open_table`)."""

    def __init__(self, conn: sa.Connection, schema: str | None, table: str) -> None:
        self._conn = conn
        self._schema = schema
        self._table = table
        self._types: dict[str, object] | None = None

    def columns(self) -> list[str] | None:
        """The table's column names in table order; None when there is no such table."""
        inspector = sa.inspect(self._conn)
        if not inspector.has_table(self._table, schema=self._schema):
            return None
        described = inspector.get_columns(self._table, schema=self._schema)
        self._types = {str(c["name"]): c["type"] for c in described}
        return list(self._types)

    def read(
        self,
        columns: list[str],
        *,
        time: str,
        equal: tuple[str, str] | None = None,
        start: pd.Timestamp | None = None,
        end: pd.Timestamp | None = None,
    ) -> pd.DataFrame:
        """`columns` of the rows whose `equal` column (one of `columns`) holds its value,
        ordered by the `time` column (a table has no order of its own), within [start, end]
        when `time` is a timestamp column; a number or text column is read whole, for the
        caller to window after parsing."""
        if self._types is None:
            self.columns()
        cols: dict[str, sa.ColumnClause[object]] = {name: sa.column(name) for name in columns}
        target = sa.table(self._table, *cols.values(), schema=self._schema)
        stmt = sa.select(*cols.values()).select_from(target).order_by(cols[time])
        if equal is not None:
            stmt = stmt.where(cols[equal[0]] == equal[1])
        time_type = (self._types or {}).get(time)
        if isinstance(time_type, sa.DateTime):
            stmt = _within(stmt, cols[time], bool(time_type.timezone), start, end)
        return pd.read_sql(stmt, self._conn)


def _within(
    stmt: sa.Select[*tuple[Any, ...]],
    column: sa.ColumnClause[object],
    aware: bool,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
) -> sa.Select[*tuple[Any, ...]]:
    # A "timestamp without time zone" column holds UTC wall time by SIGMA's convention;
    # comparing it with an aware value would make PostgreSQL apply the session time zone.
    if start is not None:
        stmt = stmt.where(column >= _bound(start, aware))
    if end is not None:
        stmt = stmt.where(column <= _bound(end, aware))
    return stmt


def _bound(stamp: pd.Timestamp, aware: bool) -> datetime:
    return stamp.to_pydatetime() if aware else stamp.tz_convert(None).to_pydatetime()


@contextmanager
def open_table(database_url: str, schema: str | None, table: str) -> Iterator[TableReader]:
    """`table` (in `schema`, or the default one) of the database at `database_url`, read
    over one connection that is closed, with its engine, on leaving."""
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            yield TableReader(conn, schema, table)
    finally:
        engine.dispose()

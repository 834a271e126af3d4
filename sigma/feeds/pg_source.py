"""Reading bars from a PostgreSQL table (``pg:table`` or ``pg:schema.table``) through the store
(`sigma.store.pg_source`), which runs the query."""

from __future__ import annotations

import re

import pandas as pd

from sigma.feeds.errors import DataError, RowNumbers
from sigma.feeds.frame import TS
from sigma.feeds.normalise import SYMBOL, resolve_columns

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
    schema, table = parse_table(source)
    if database_url is None:
        raise DataError(source, "database_url is required to read a pg: source")
    # Here, not at the top: loading bars from files must not load SQLAlchemy (~30 MB).
    from sigma.store.pg_source import open_table

    with open_table(database_url, schema, table) as reader:
        names = reader.columns()
        if names is None:
            raise DataError(source, "table does not exist")
        found = resolve_columns(names, source)
        # A table without a symbol column holds one instrument, whatever `symbol` says.
        equal = (found[SYMBOL], symbol) if symbol is not None and SYMBOL in found else None
        raw = reader.read(list(found.values()), time=found[TS], equal=equal, start=start, end=end)
    return raw, RowNumbers.rows(len(raw))

"""Storing one backtest run (its bt_summary row and bt_trades) where the settings say, with
the least loaded: into a SQLite file already at the shipped schema through the standard
library's `sqlite3` alone; anywhere else (PostgreSQL, a new or older SQLite file, a URL with
options) through SQLAlchemy (`sigma.store.backtests.save_backtest`, migrating first).

SQLAlchemy, its ORM and SIGMA's models are ~22 MB of a `sigma backtest` process (more than
the rest of the command needs at 100k bars), loaded only to write two tables. The rows are
the same either way: the columns are named once (`summary_row`, `TRADE_FIELDS`, shared with
`save_backtest`) and each value is written as the store's column types write it on SQLite
(`sqlite_value`): an amount as NUMERIC(28, 10) fixed-point text (`ExactDecimal`), a time as
naive UTC text (`UTCDateTime` over SQLite's DATETIME), a document as JSON text. A test
compares the stored rows of both ways.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sigma.domain import Trade
from sigma.domain.money import utc
from sigma.engine.result import BacktestResult
from sigma.store.amounts import quantize
from sigma.store.jsonsafe import to_jsonable
from sigma.store.revision import shipped_head
from sigma.store.sqlite_file import (
    BUSY_TIMEOUT,
    begin_immediate,
    connect_writer,
    file_errors_named,
    is_sqlite_lock_error,
)

SUMMARY_TABLE = "bt_summary"
TRADES_TABLE = "bt_trades"
TRADE_FIELDS = (
    "qty",
    "entry_ts",
    "entry_price",
    "exit_ts",
    "exit_price",
    "fees",
    "pnl",
    "entry_bar",
    "exit_bar",
    "exit_reason",
    "tag",
)
"""The fields of a `Trade` stored in bt_trades, under the same names."""
_SQLITE_URLS = ("sqlite:///", "sqlite+pysqlite:///")


def summary_row(
    result: BacktestResult, *, report_path: str | None, run_id: str | None
) -> dict[str, Any]:
    """The bt_summary values of `result` (the id and `created_at` are the table's);
    `run_id` defaults to a fresh UUID hex."""
    return {
        "run_id": run_id or uuid.uuid4().hex,
        "strategy": result.strategy,
        "symbol": result.symbol,
        "params": to_jsonable(result.params),
        "start_ts": result.start,
        "end_ts": result.end,
        "initial_cash": result.initial_cash,
        "final_equity": result.final_equity,
        "stats": to_jsonable(result.stats),
        "report_path": report_path,
    }


def _sqlite_datetime(value: datetime) -> str:
    """An aware or naive (UTC) time as SQLAlchemy's SQLite DATETIME stores it: UTC, naive,
    with microseconds (`UTCDateTime` drops the offset; DATETIME renders the text)."""
    t = utc(value)
    return (
        f"{t.year:04d}-{t.month:02d}-{t.day:02d} "
        f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}.{t.microsecond:06d}"
    )


def sqlite_value(value: Any) -> Any:
    """`value` as the store's column types write it to SQLite: Decimal as fixed-point text
    of 10 decimals, datetime as naive UTC text, a dict or list as JSON text; str, int and
    None as they are."""
    if isinstance(value, Decimal):
        return format(quantize(value), "f")
    if isinstance(value, datetime):
        return _sqlite_datetime(value)
    if isinstance(value, dict | list):
        return json.dumps(value)
    return value


def sqlite_path(database_url: str) -> Path | None:
    """The file of a plain SQLite URL (`sqlite:///path`), when it exists; None for anything
    else (another database, in memory, a URL with options or escapes): those go through
    SQLAlchemy."""
    for prefix in _SQLITE_URLS:
        if database_url.startswith(prefix):
            name = database_url[len(prefix) :]
            break
    else:
        return None
    if not name or name == ":memory:" or name.startswith("file:") or any(c in name for c in "?%"):
        return None
    path = Path(name)
    return path if path.is_file() else None


def _insert(table: str, columns: Sequence[str]) -> str:
    names = ", ".join(f'"{name}"' for name in columns)
    return f'INSERT INTO "{table}" ({names}) VALUES ({", ".join("?" * len(columns))})'


def _trade_rows(summary_id: int, trades: Sequence[Trade]) -> Iterator[list[Any]]:
    for trade in trades:
        yield [summary_id, *(sqlite_value(getattr(trade, name)) for name in TRADE_FIELDS)]


def save_backtest_file(
    path: Path,
    result: BacktestResult,
    *,
    report_path: str | None = None,
    run_id: str | None = None,
    busy_timeout: float = BUSY_TIMEOUT,
) -> int | None:
    """Store `result` in the SQLite file `path` with `sqlite3`, in one transaction; returns
    the new bt_summary id, or None (nothing written) when the file's schema is not the
    shipped head (new, older or newer: `save_backtest` after migrating is the way then)."""
    connection = connect_writer(path, busy_timeout=busy_timeout)
    try:
        with file_errors_named(path):
            try:
                found = connection.execute("SELECT version_num FROM alembic_version").fetchall()
            except sqlite3.OperationalError:  # no such table: never migrated
                return None
            if found != [(shipped_head(),)]:
                return None
            row = summary_row(result, report_path=report_path, run_id=run_id)
            row["created_at"] = datetime.now(UTC)  # (the column's default, `utcnow`)
            begin_immediate(connection.execute, is_sqlite_lock_error)
            try:
                cursor = connection.execute(
                    _insert(SUMMARY_TABLE, list(row)), [sqlite_value(v) for v in row.values()]
                )
                summary_id = cursor.lastrowid
                assert summary_id is not None, "an insert has a row id"
                # The rows are made as sqlite3 reads them, never all held at once.
                connection.executemany(
                    _insert(TRADES_TABLE, ("summary_id", *TRADE_FIELDS)),
                    _trade_rows(summary_id, result.trades),
                )
                connection.execute("COMMIT")
            except BaseException:
                # SQLite ends the transaction itself on some errors (a full disk): a ROLLBACK
                # then fails and would hide the error that says what happened.
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
            return int(summary_id)
    finally:
        connection.close()


def store_backtest(database_url: str, result: BacktestResult, *, report_path: str | None) -> int:
    """Store `result` in the database at `database_url` (migrated to head first when it is
    not there yet); returns the new bt_summary id."""
    path = sqlite_path(database_url)
    if path is not None:
        stored = save_backtest_file(path, result, report_path=report_path)
        if stored is not None:
            return stored
    # Imported here: SQLAlchemy and Alembic load only when they are needed.
    from sigma.store.backtests import save_backtest
    from sigma.store.db import init_db, session_factory

    engine = init_db(database_url)
    try:
        with session_factory(engine)() as session:
            summary_id = save_backtest(session, result, report_path=report_path)
            session.commit()
        return summary_id
    finally:
        engine.dispose()

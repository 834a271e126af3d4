"""Backtest results: one bt_summary row and its bt_trades per run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, insert, select
from sqlalchemy.orm import Session, selectinload

from sigma.domain import Trade
from sigma.engine.result import BacktestResult
from sigma.store.backtest_file import TRADE_FIELDS, summary_row
from sigma.store.models import BtSummary, BtTrade

TRADE_BATCH = 5_000
"""Trades per bulk insert."""
_TRADE_FIELDS = TRADE_FIELDS


@dataclass(frozen=True, slots=True)
class BacktestRecord:
    """A stored backtest run, detached from the session.

    `stats` and `params` are as stored: Decimal figures come back as exact strings.
    """

    id: int
    run_id: str
    strategy: str
    symbol: str
    params: dict[str, Any]
    start: datetime
    end: datetime
    initial_cash: Decimal
    final_equity: Decimal
    stats: dict[str, Any]
    created_at: datetime
    report_path: str | None


@dataclass(frozen=True, slots=True)
class StoredBacktest:
    """A stored run with its round-trip trades."""

    record: BacktestRecord
    trades: list[Trade]


def save_backtest(
    session: Session,
    result: BacktestResult,
    *,
    report_path: str | None = None,
    run_id: str | None = None,
) -> int:
    """Store `result` (summary and trades); returns the new bt_summary id.

    The summary is a Core insert (an ORM object's first use configures every model's
    mapper, ~0.1 s of a command that stores one run), the trades bulk inserts
    (`_insert_trades`): an ORM object per trade cost seconds for the ~10^5 trades of a
    million-bar run. The caller's unit of work commits. `run_id` defaults to a fresh UUID
    hex.
    """
    connection = session.connection()
    table = BtSummary.metadata.tables[BtSummary.__tablename__]
    inserted = connection.execute(
        insert(table).values(**summary_row(result, report_path=report_path, run_id=run_id))
    )
    key = inserted.inserted_primary_key
    assert key is not None, "a single-row insert has a primary key"
    summary_id = int(key[0])
    _insert_trades(connection, summary_id, result.trades)
    return summary_id


def _insert_trades(connection: Connection, summary_id: int, trades: Sequence[Trade]) -> None:
    """The trades of run `summary_id` as the driver's executemany of plain rows, TRADE_BATCH
    at a time (so the rows in flight stay bounded).

    Each column's values go through its type's bind processor (exact Decimal, UTC time) a
    column at a time: SQLAlchemy's own handling of each row's parameters, and the ORM's bulk
    insert before it, were most of the seconds that the ~5*10^4 trades of a million-bar
    run took to store.
    """
    dialect = connection.dialect
    table = BtTrade.metadata.tables[BtTrade.__tablename__]
    keys = ("summary_id", *_TRADE_FIELDS)
    # inline: no RETURNING of each new id, which nothing reads
    statement = insert(table).inline().compile(dialect=dialect, column_keys=list(keys))
    processors = [table.c[key].type.dialect_impl(dialect).bind_processor(dialect) for key in keys]
    order = [keys.index(name) for name in statement.positiontup or keys]
    for start in range(0, len(trades), TRADE_BATCH):
        batch = trades[start : start + TRADE_BATCH]
        values = [[summary_id] * len(batch)]
        values += [[getattr(t, name) for t in batch] for name in _TRADE_FIELDS]
        values = [
            list(map(process, column)) if process is not None else column
            for process, column in zip(processors, values, strict=True)
        ]
        rows: list[Any]
        if statement.positional:
            rows = list(zip(*(values[i] for i in order), strict=True))
        else:
            rows = [dict(zip(keys, row, strict=True)) for row in zip(*values, strict=True)]
        connection.exec_driver_sql(statement.string, rows)


def _record(row: BtSummary) -> BacktestRecord:
    return BacktestRecord(
        id=row.id,
        run_id=row.run_id,
        strategy=row.strategy,
        symbol=row.symbol,
        params=dict(row.params),
        start=row.start_ts,
        end=row.end_ts,
        initial_cash=row.initial_cash,
        final_equity=row.final_equity,
        stats=dict(row.stats),
        created_at=row.created_at,
        report_path=row.report_path,
    )


def _trade(row: BtTrade, summary: BtSummary) -> Trade:
    return Trade(
        symbol=summary.symbol,
        qty=row.qty,
        entry_ts=row.entry_ts,
        entry_price=row.entry_price,
        exit_ts=row.exit_ts,
        exit_price=row.exit_price,
        fees=row.fees,
        pnl=row.pnl,
        entry_bar=row.entry_bar,
        exit_bar=row.exit_bar,
        strategy=summary.strategy,
        exit_reason=row.exit_reason,
        tag=row.tag,
    )


def list_backtests(
    session: Session,
    *,
    strategy: str | None = None,
    symbol: str | None = None,
    limit: int = 100,
) -> list[BacktestRecord]:
    """Stored runs, newest first, optionally for one strategy and/or symbol."""
    query = select(BtSummary).order_by(BtSummary.created_at.desc(), BtSummary.id.desc())
    if strategy is not None:
        query = query.where(BtSummary.strategy == strategy)
    if symbol is not None:
        query = query.where(BtSummary.symbol == symbol)
    return [_record(row) for row in session.scalars(query.limit(limit))]


def get_backtest(session: Session, backtest_id: int) -> StoredBacktest | None:
    """One run with its trades in the order they closed, or None if there is no such id."""
    row = session.scalar(
        select(BtSummary).where(BtSummary.id == backtest_id).options(selectinload(BtSummary.trades))
    )
    if row is None:
        return None
    return StoredBacktest(_record(row), [_trade(t, row) for t in row.trades])

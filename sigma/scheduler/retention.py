"""DataCleaner.prune_old_ticks: delete rows older than a cutoff, table by table.

On TimescaleDB hypertables whole chunks older than the cutoff are dropped first (cheap), then
the rows older than the cutoff left in the chunk that straddles it are deleted, so the result is
the same as on a plain table: exactly the rows with a timestamp before the cutoff are gone.
Plain tables are pruned in batches, each its own short transaction, so a large backlog never
holds a long lock. Tables that other rows reference by foreign key are refused: deleting their
rows could orphan (or cascade into) rows still in use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Column, Engine, Table, delete, func, select, text

from sigma.store.models import Base
from sigma.store.timescale import HYPERTABLES, has_timescale

# The time column each prunable table is aged by.
TIME_COLUMNS: dict[str, str] = {
    "ticks": "ts",
    "bars": "ts",
    "trend_data": "ts",
    "alert_log": "ts",
    "action_log": "ts",
    "job_runs": "started_at",
}


@dataclass(frozen=True, slots=True)
class PruneResult:
    """Rows removed from one table (chunk drops included when known)."""

    table: str
    cutoff: datetime
    deleted: int
    chunks_dropped: int = 0


def _referenced(table: Table) -> bool:
    return any(
        fk.column.table is table
        for other in Base.metadata.tables.values()
        for fk in other.foreign_keys
    )


def _time_column(table_name: str) -> tuple[Table, Column[datetime]]:
    if table_name not in TIME_COLUMNS:
        raise ValueError(f"no retention rule for {table_name!r}; known: {', '.join(TIME_COLUMNS)}")
    table = Base.metadata.tables[table_name]
    if _referenced(table):
        raise ValueError(f"{table_name} is referenced by other tables; its rows are not pruned")
    column: Column[datetime] = table.c[TIME_COLUMNS[table_name]]
    return table, column


def _is_hypertable(engine: Engine, table: str) -> bool:
    if table not in HYPERTABLES or not has_timescale(engine):
        return False
    # Not covered: the test machine's PostgreSQL has no timescaledb package.
    with engine.connect() as conn:  # pragma: no cover - needs timescaledb
        found = conn.execute(
            text(
                "SELECT 1 FROM timescaledb_information.hypertables "
                "WHERE hypertable_name = :t AND hypertable_schema = current_schema()"
            ),
            {"t": table},
        ).first()
    return found is not None  # pragma: no cover - needs timescaledb


def _drop_chunks(engine: Engine, table: str, cutoff: datetime) -> int:  # pragma: no cover
    # Needs timescaledb (absent on the test machine). drop_chunks removes only chunks whose
    # whole range is older than the cutoff; the caller deletes the remainder row by row.
    with engine.begin() as conn:
        dropped = conn.execute(
            text("SELECT drop_chunks(CAST(:t AS regclass), older_than => :cutoff)"),
            {"t": table, "cutoff": cutoff},
        ).all()
    return len(dropped)


def prune_table(
    engine: Engine, table_name: str, cutoff: datetime, *, batch: int = 5000
) -> PruneResult:
    """Delete every row of `table_name` older than `cutoff` (strictly before it)."""
    if cutoff.tzinfo is None:
        raise ValueError("cutoff must be timezone-aware")
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    table, column = _time_column(table_name)
    chunks = 0
    if _is_hypertable(engine, table_name):  # pragma: no cover - needs timescaledb
        chunks = _drop_chunks(engine, table_name, cutoff)
    deleted = 0
    while True:
        with engine.begin() as conn:
            # The batch ends at the time of its last row; rows sharing that time go in the same
            # batch, so a batch can exceed `batch` a little but never splits one timestamp.
            bound = conn.execute(
                select(column).where(column < cutoff).order_by(column).offset(batch - 1).limit(1)
            ).scalar()
            limit = cutoff if bound is None else bound
            op = column < cutoff if bound is None else column <= limit
            result = conn.execute(delete(table).where(op, column < cutoff))
            deleted += int(result.rowcount or 0)
        if bound is None:
            break
    return PruneResult(table_name, cutoff, deleted, chunks)


def count_older(engine: Engine, table_name: str, cutoff: datetime) -> int:
    """Rows of `table_name` older than `cutoff` (what `prune_table` would delete)."""
    table, column = _time_column(table_name)
    with engine.connect() as conn:
        query = select(func.count()).select_from(table).where(column < cutoff)
        return int(conn.execute(query).scalar_one())


def prune(
    engine: Engine, retention: Mapping[str, datetime], *, batch: int = 5000
) -> list[PruneResult]:
    """`prune_table` for each table and cutoff of `retention`, in order."""
    return [prune_table(engine, name, cutoff, batch=batch) for name, cutoff in retention.items()]

"""DataCleaner.prune_old_ticks: delete rows older than a cutoff, table by table.

On TimescaleDB hypertables whole chunks older than the cutoff are dropped first (cheap), then
the rows older than the cutoff left in the chunk that straddles it are deleted, so the result is
the same as on a plain table: exactly the rows with a timestamp before the cutoff are gone.
Plain tables are pruned in batches, each its own short transaction, so a large backlog never
holds a long lock. Tables that other rows reference by foreign key are refused: deleting their
rows could orphan (or cascade into) rows still in use. Rows SIGMA still reads though no foreign
key points at them are kept whatever their age (`KEEP`): the newest run of each job (its last
outcome in `sigma jobs list`) and runs still going, and the newest `action_log` row of each
source and action (the user check diffs against the previous rights snapshot, however old).

TimescaleDB's own retention policy (`add_retention_policy`) is not used: it would be a second
schedule, run by the database on its own clock and outside `job_runs` and the failure alerts,
whose cutoff would have to be re-registered whenever the retention setting changes. Dropping
the chunks from this job gives the same cheap deletion under the one schedule.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Engine, Table, delete, func, or_, select, text

from sigma.store.models import Base
from sigma.store.timescale import HYPERTABLES, has_timescale

# The time column each prunable table is aged by.
TIME_COLUMNS: dict[str, str] = {
    "ticks": "ts",
    "bars": "ts",
    "trend_data": "ts",
    "alert_log": "last_seen",  # an alert still repeating is kept however old its first sighting
    "action_log": "ts",
    "job_runs": "started_at",
}


def _newest_per(*keys: str) -> Callable[[Table], ColumnElement[bool]]:
    def keep(table: Table) -> ColumnElement[bool]:
        newest = select(func.max(table.c.id)).group_by(*(table.c[k] for k in keys))
        return table.c.id.in_(newest.scalar_subquery())

    return keep


def _job_runs_in_use(table: Table) -> ColumnElement[bool]:
    return or_(_newest_per("job_id")(table), table.c.outcome == "running")


KEEP: dict[str, Callable[[Table], ColumnElement[bool]]] = {
    "job_runs": _job_runs_in_use,
    "action_log": _newest_per("source", "action"),
}
"""Per table, the rows kept whatever their age because SIGMA still reads them."""


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


def _expired(
    table_name: str, cutoff: datetime
) -> tuple[Table, ColumnElement[datetime], ColumnElement[bool]]:
    """The table, its time column and the condition selecting its rows to prune."""
    if table_name not in TIME_COLUMNS:
        raise ValueError(f"no retention rule for {table_name!r}; known: {', '.join(TIME_COLUMNS)}")
    table = Base.metadata.tables[table_name]
    if _referenced(table):
        raise ValueError(f"{table_name} is referenced by other tables; its rows are not pruned")
    column: ColumnElement[datetime] = table.c[TIME_COLUMNS[table_name]]
    old = column < cutoff
    keep = KEEP.get(table_name)
    return table, column, old if keep is None else old & ~keep(table)


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
    """Delete every row of `table_name` older than `cutoff` (strictly before it) except those
    `KEEP` keeps."""
    if cutoff.tzinfo is None:
        raise ValueError("cutoff must be timezone-aware")
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    table, column, expired = _expired(table_name, cutoff)
    chunks = 0
    # Chunks go whole, kept rows with them: only for tables that keep nothing by rule.
    if table_name not in KEEP and _is_hypertable(engine, table_name):  # pragma: no cover
        chunks = _drop_chunks(engine, table_name, cutoff)
    deleted = 0
    while True:
        with engine.begin() as conn:
            # The batch ends at the time of its last row; rows sharing that time go in the same
            # batch, so a batch can exceed `batch` a little but never splits one timestamp.
            bound = conn.execute(
                select(column).where(expired).order_by(column).offset(batch - 1).limit(1)
            ).scalar()
            op = expired if bound is None else expired & (column <= bound)
            result = conn.execute(delete(table).where(op))
            deleted += int(result.rowcount or 0)
        if bound is None:
            break
    return PruneResult(table_name, cutoff, deleted, chunks)


def count_older(engine: Engine, table_name: str, cutoff: datetime) -> int:
    """Rows of `table_name` that `prune_table` would delete at `cutoff`."""
    table, _column, expired = _expired(table_name, cutoff)
    with engine.connect() as conn:
        query = select(func.count()).select_from(table).where(expired)
        return int(conn.execute(query).scalar_one())


def prune(
    engine: Engine, retention: Mapping[str, datetime], *, batch: int = 5000
) -> list[PruneResult]:
    """`prune_table` for each table and cutoff of `retention`, in order."""
    return [prune_table(engine, name, cutoff, batch=batch) for name, cutoff in retention.items()]

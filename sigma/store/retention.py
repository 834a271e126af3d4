"""Deleting a table's rows older than a cutoff, in batches, or by whole chunks on TimescaleDB.

The scheduler decides which tables age by which column and which old rows stay (`AgeRule`);
this module turns a rule into SQL. On TimescaleDB hypertables whole chunks older than the
cutoff are dropped first (cheap), then the rows older than the cutoff left in the chunk that
straddles it are deleted, so the result is the same as on a plain table: exactly the rows with
a timestamp before the cutoff are gone. Plain tables are pruned in batches, each its own short
transaction, so a large backlog never holds a long lock. Tables that other rows reference by
foreign key are refused: deleting their rows could orphan (or cascade into) rows still in use.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Engine, Table, delete, false, func, or_, select, text

from sigma.store.models import Base
from sigma.store.timescale import HYPERTABLES, has_timescale


@dataclass(frozen=True, slots=True)
class Keep:
    """Old rows kept whatever their age: the newest row (highest id) of each group of
    `newest_per` columns, and the rows whose column equals the value in `matching`."""

    newest_per: tuple[str, ...] = ()
    matching: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class AgeRule:
    """How `table` is pruned: by its `time_column`, sparing the rows `keep` names."""

    table: str
    time_column: str
    keep: Keep | None = None


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


def _kept(table: Table, keep: Keep) -> ColumnElement[bool]:
    conditions: list[ColumnElement[bool]] = [table.c[k] == v for k, v in keep.matching]
    if keep.newest_per:
        newest = select(func.max(table.c.id)).group_by(*(table.c[k] for k in keep.newest_per))
        conditions.append(table.c.id.in_(newest.scalar_subquery()))
    return or_(false(), *conditions)


def _expired(
    rule: AgeRule, cutoff: datetime
) -> tuple[Table, ColumnElement[datetime], ColumnElement[bool]]:
    """The table, its time column and the condition selecting its rows to prune."""
    table = Base.metadata.tables[rule.table]
    if _referenced(table):
        raise ValueError(f"{rule.table} is referenced by other tables; its rows are not pruned")
    column: ColumnElement[datetime] = table.c[rule.time_column]
    old = column < cutoff
    return table, column, old if rule.keep is None else old & ~_kept(table, rule.keep)


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


def prune_older(engine: Engine, rule: AgeRule, cutoff: datetime, *, batch: int) -> PruneResult:
    """Delete every row of `rule.table` older than `cutoff` (strictly before it) except those
    `rule.keep` spares, about `batch` rows per transaction."""
    if cutoff.tzinfo is None:
        raise ValueError("cutoff must be timezone-aware")
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    table, column, expired = _expired(rule, cutoff)
    chunks = 0
    # Chunks go whole, kept rows with them: only for tables that keep nothing by rule.
    if rule.keep is None and _is_hypertable(engine, rule.table):  # pragma: no cover
        chunks = _drop_chunks(engine, rule.table, cutoff)
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
    return PruneResult(rule.table, cutoff, deleted, chunks)


def count_older(engine: Engine, rule: AgeRule, cutoff: datetime) -> int:
    """Rows that `prune_older` would delete at `cutoff`."""
    table, _column, expired = _expired(rule, cutoff)
    with engine.connect() as conn:
        query = select(func.count()).select_from(table).where(expired)
        return int(conn.execute(query).scalar_one())

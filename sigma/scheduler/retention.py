"""DataCleaner.prune_old_ticks: delete rows older than a cutoff, table by table.

Which tables may be pruned, by which time column, and which old rows stay is decided here;
the store deletes them (`sigma.store.retention`: in batches, or by whole TimescaleDB chunks,
with the same result: exactly the rows with a timestamp before the cutoff are gone). Rows SIGMA
still reads though no foreign key points at them are kept whatever their age (`KEEP`): the
newest run of each job (its last outcome in `sigma jobs list`) and runs still going, and the
newest `action_log` row of each source and action (the user check diffs against the previous
rights snapshot, however old).

TimescaleDB's own retention policy (`add_retention_policy`) is not used: it would be a second
schedule, run by the database on its own clock and outside `job_runs` and the failure alerts,
whose cutoff would have to be re-registered whenever the retention setting changes. Dropping
the chunks from this job gives the same cheap deletion under the one schedule.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sigma.scheduler.tasks import RUNNING
from sigma.store import retention as store
from sigma.store.handles import Engine
from sigma.store.retention import AgeRule, Keep, PruneResult

# The time column each prunable table is aged by.
TIME_COLUMNS: dict[str, str] = {
    "ticks": "ts",
    "bars": "ts",
    "trend_data": "ts",
    "alert_log": "last_seen",  # an alert still repeating is kept however old its first sighting
    "action_log": "ts",
    "job_runs": "started_at",
    "idempotency_keys": "expires_at",  # aged by its end: a key is pruned once it has expired
}

KEEP: dict[str, Keep] = {
    "job_runs": Keep(newest_per=("job_id",), matching=(("outcome", RUNNING),)),
    "action_log": Keep(newest_per=("source", "action")),
}
"""Per table, the rows kept whatever their age because SIGMA still reads them."""


def _rule(table_name: str) -> AgeRule:
    if table_name not in TIME_COLUMNS:
        raise ValueError(f"no retention rule for {table_name!r}; known: {', '.join(TIME_COLUMNS)}")
    return AgeRule(table_name, TIME_COLUMNS[table_name], KEEP.get(table_name))


def prune_table(
    engine: Engine, table_name: str, cutoff: datetime, *, batch: int = 5000
) -> PruneResult:
    """Delete every row of `table_name` older than `cutoff` (strictly before it) except those
    `KEEP` keeps."""
    return store.prune_older(engine, _rule(table_name), cutoff, batch=batch)


def count_older(engine: Engine, table_name: str, cutoff: datetime) -> int:
    """Rows of `table_name` that `prune_table` would delete at `cutoff`."""
    return store.count_older(engine, _rule(table_name), cutoff)


def prune(
    engine: Engine, retention: Mapping[str, datetime], *, batch: int = 5000
) -> list[PruneResult]:
    """`prune_table` for each table and cutoff of `retention`, in order."""
    return [prune_table(engine, name, cutoff, batch=batch) for name, cutoff in retention.items()]

"""The record of scheduled job runs (`job_runs`): one row per run, opened when it starts and
closed with its outcome. What the outcomes mean is the scheduler's (`sigma.scheduler.tasks`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from sigma.store.models import JobRun


def open_run(session: Session, job_id: str, started_at: datetime, outcome: str) -> int:
    """Record a run of `job_id` starting at `started_at` with its first `outcome`; its id."""
    row = JobRun(job_id=job_id, started_at=started_at, outcome=outcome)
    session.add(row)
    session.flush()
    return row.id


def close_run(
    session: Session, run_id: int, outcome: str, ended_at: datetime, error: str | None
) -> str:
    """Give run `run_id` its `outcome`, end time and error; returns the run's job id."""
    row = session.get_one(JobRun, run_id)
    row.outcome = outcome
    row.ended_at = ended_at
    row.error = error
    return row.job_id


def close_all(session: Session, where: str, outcome: str, ended_at: datetime, error: str) -> int:
    """Give every run whose outcome is `where` the `outcome`, end time and error; how many."""
    result = session.execute(
        update(JobRun)
        .where(JobRun.outcome == where)
        .values(outcome=outcome, ended_at=ended_at, error=error)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def newest_runs(session: Session, job_id: str | None, limit: int) -> list[JobRun]:
    """The newest `limit` runs (of `job_id`, or of every job), newest first."""
    query = select(JobRun).order_by(JobRun.started_at.desc(), JobRun.id.desc()).limit(limit)
    if job_id is not None:
        query = query.where(JobRun.job_id == job_id)
    return list(session.scalars(query))


def last_run_per_job(session: Session) -> dict[str, JobRun]:
    """The newest run of every job that has run, by job id."""
    newest = select(func.max(JobRun.id)).group_by(JobRun.job_id)
    return {row.job_id: row for row in session.scalars(select(JobRun).where(JobRun.id.in_(newest)))}

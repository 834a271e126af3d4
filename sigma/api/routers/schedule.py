"""Scheduled jobs: list with progress, run history, pause/resume/trigger/cancel (admins).

Needs the SchedulerService of this process (`create_api(..., scheduler=...)`); without one
the routes answer 503.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel

from sigma.api.context import Admin, Ctx, Viewer
from sigma.api.errors import error_responses
from sigma.api.numbers import ASCII_DIGITS
from sigma.scheduler.service import JobInfo, SchedulerService

router = APIRouter(prefix="/api/jobs", tags=["scheduler"], responses=error_responses(503))


class Progress(BaseModel):
    """How far a running job got."""

    done: int
    total: int


class ScheduledJobOut(BaseModel):
    """A scheduled job; `next_run` null while paused; `running` while a run is in progress."""

    id: str
    description: str
    trigger: str
    next_run: datetime | None
    paused: bool
    last_outcome: str | None
    last_started: datetime | None
    running: Progress | None


class JobRunOut(BaseModel):
    """One recorded run."""

    id: int
    job_id: str
    started_at: datetime
    ended_at: datetime | None
    outcome: str
    error: str | None


class CancelOut(BaseModel):
    """Whether a running job was asked to stop."""

    cancelled: bool


def _scheduler(ctx: Ctx) -> SchedulerService:
    if ctx.scheduler is None:
        raise HTTPException(
            503, detail="no scheduler runs in this process; start SIGMA with `sigma up`"
        )
    return ctx.scheduler


def _out(info: JobInfo, running: dict[str, tuple[int, int]]) -> ScheduledJobOut:
    progress = running.get(info.id)
    return ScheduledJobOut(
        id=info.id,
        description=info.description,
        trigger=info.trigger,
        next_run=info.next_run,
        paused=info.paused,
        last_outcome=info.last_outcome,
        last_started=info.last_started,
        running=None if progress is None else Progress(done=progress[0], total=progress[1]),
    )


def _one(service: SchedulerService, job_id: str) -> ScheduledJobOut:
    running = service.manager.running()
    for info in service.list_jobs():
        if info.id == job_id:
            return _out(info, running)
    raise HTTPException(404, detail=f"scheduled job {job_id!r} not found")


@router.get("", response_model=list[ScheduledJobOut])
def scheduled_jobs(ctx: Ctx, _: Viewer) -> list[ScheduledJobOut]:
    """Every scheduled job, by id."""
    service = _scheduler(ctx)
    running = service.manager.running()
    return [_out(info, running) for info in service.list_jobs()]


@router.get("/{job_id}/runs", response_model=list[JobRunOut])
def job_runs(
    job_id: str, ctx: Ctx, _: Viewer, limit: Annotated[int, Query(ge=1, le=500), ASCII_DIGITS] = 20
) -> list[JobRunOut]:
    """The job's newest runs first."""
    service = _scheduler(ctx)
    _one(service, job_id)
    return [
        JobRunOut(
            id=r.id,
            job_id=r.job_id,
            started_at=r.started_at,
            ended_at=r.ended_at,
            outcome=r.outcome,
            error=r.error,
        )
        for r in service.manager.history(job_id, limit)
    ]


@router.post("/{job_id}/pause", response_model=ScheduledJobOut)
def pause_job(job_id: str, ctx: Ctx, _: Admin) -> ScheduledJobOut:
    """Stop scheduling the job until resumed (kept across restarts)."""
    service = _scheduler(ctx)
    _one(service, job_id)
    service.pause(job_id)
    return _one(service, job_id)


@router.post("/{job_id}/resume", response_model=ScheduledJobOut)
def resume_job(job_id: str, ctx: Ctx, _: Admin) -> ScheduledJobOut:
    """Schedule a paused job again from now."""
    service = _scheduler(ctx)
    _one(service, job_id)
    service.resume(job_id)
    return _one(service, job_id)


@router.post("/{job_id}/trigger", response_model=ScheduledJobOut)
def trigger_job(job_id: str, ctx: Ctx, _: Admin) -> ScheduledJobOut:
    """Run the job at the scheduler's next wake-up; its schedule continues after."""
    service = _scheduler(ctx)
    _one(service, job_id)
    service.trigger(job_id, datetime.now(UTC))
    return _one(service, job_id)


@router.post("/{job_id}/cancel", response_model=CancelOut)
def cancel_job(job_id: str, ctx: Ctx, _: Admin) -> CancelOut:
    """Ask a running job to stop at its next progress report (false: it was not running)."""
    service = _scheduler(ctx)
    _one(service, job_id)
    return CancelOut(cancelled=service.manager.cancel(job_id))

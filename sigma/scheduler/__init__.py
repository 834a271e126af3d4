"""Scheduled jobs (APScheduler with a persistent job store) and the TaskManager that runs,
records, alerts on and cancels them. See `sigma.scheduler.jobs` for the job list."""

from sigma.scheduler.service import JobInfo, SchedulerService
from sigma.scheduler.tasks import Alerter, JobContext, JobSpec, RunRecord, TaskManager

__all__ = [
    "Alerter",
    "JobContext",
    "JobInfo",
    "JobSpec",
    "RunRecord",
    "SchedulerService",
    "TaskManager",
]

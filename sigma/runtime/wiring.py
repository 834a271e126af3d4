"""What of an `App` each component gets: the components take only what they use (settings
groups, sessions, the database engine), and this is where a process's `App` is cut into
those parts - for `sigma up` (`runtime.services`) and the one-component commands alike."""

from __future__ import annotations

from sigma.bootstrap import App
from sigma.ops.metrics import Metrics
from sigma.scheduler.jobs import JobRuntime, log_param_change
from sigma.scheduler.maintenance import ApplyFn
from sigma.scheduler.tasks import Alerter

__all__ = ["job_runtime"]


def job_runtime(
    app: App, *, metrics: Metrics | None = None, apply_params: ApplyFn = log_param_change
) -> JobRuntime:
    """The scheduled jobs' dependencies from `app`, alerting through the configured channels;
    `apply_params` receives the parameter versions synced from the database (by default
    they are only logged)."""
    alerter = Alerter(app.notifier())
    return JobRuntime(
        app.settings, app.db, app.sessions, app.strategies, alerter, metrics, apply_params
    )

"""The maintenance jobs: retention, health checks, log rotation, config sync, user checks."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sigma.scheduler.maintenance import check_users, rotate_logs
from sigma.scheduler.retention import prune
from sigma.scheduler.tasks import JobContext
from sigma.store.db import session_scope

if TYPE_CHECKING:  # the runtime registers these jobs: a type-only import back
    from sigma.scheduler.jobs import JobRuntime

__all__ = ["config_sync", "health_check", "log_rotation", "prune_data", "user_check"]


def prune_data(rt: JobRuntime, ctx: JobContext) -> dict[str, int]:
    """DataCleaner.prune_old_ticks: ticks by tick retention, bars by bar retention (when
    set), logs and runs by log retention, the API's idempotency keys once expired."""
    s = rt.settings
    ticks = ctx.now - timedelta(days=s.retention.tick_retention_days)
    logs = ctx.now - timedelta(days=s.retention.log_retention_days)
    retention = {"ticks": ticks, "alert_log": logs, "action_log": logs, "trend_data": logs}
    retention["job_runs"] = logs
    retention["idempotency_keys"] = ctx.now
    if s.retention.bar_retention_days is not None:  # unset: recorded bars are kept forever
        retention["bars"] = ctx.now - timedelta(days=s.retention.bar_retention_days)
    return {r.table: r.deleted for r in prune(rt.engine, retention)}


def health_check(rt: JobRuntime, ctx: JobContext) -> dict[str, bool | None]:
    """HealthCheck: run every check; alerts on change of state."""
    return {r.name: r.ok for r in rt.health.run(ctx.now)}


def log_rotation(rt: JobRuntime, ctx: JobContext) -> int:
    """LogRotator: rotate logs under <var>/logs that grew large or were not rotated for
    `log_rotate_days`, compress them, drop old archives."""
    s = rt.settings
    result = rotate_logs(
        rt.var_dir / "logs",
        ctx.now,
        max_bytes=s.process.log_max_bytes,
        keep=timedelta(days=s.retention.log_retention_days),
        every=timedelta(days=s.process.log_rotate_days) if s.process.log_rotate_days else None,
    )
    return len(result.rotated)


def config_sync(rt: JobRuntime, ctx: JobContext) -> int:
    """ConfigSync: apply strategy parameter and setting versions newer than this process
    has."""
    with rt.sessions() as session:
        params = rt.config_sync.sync(session)
        settings = rt.config_sync.sync_settings(session)
    return len(params) + len(settings)


def user_check(rt: JobRuntime, ctx: JobContext) -> dict[str, Any]:
    """UserValidation and UserRightsManager: deactivate idle users, report right changes."""
    with session_scope(rt.sessions) as session:
        result = check_users(
            session, ctx.now, timedelta(days=rt.settings.scheduler.user_inactive_days)
        )
    if result.deactivated or result.changes:
        lines = [f"deactivated after inactivity: {u}" for u in result.deactivated]
        rt.alerter.send("warning", "user_check", "; ".join(lines + result.changes) or "no change")
    return {"deactivated": result.deactivated, "changes": result.changes}

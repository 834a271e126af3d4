"""The scheduled jobs of the seed's scheduler subgraph, wired to one process's resources:
`JobRuntime` holds what the jobs share and registers them; the jobs themselves live by
concern in `jobs_research` (selection, ML gate, trend scan), `jobs_reports` (weekly report,
daily summary) and `jobs_maintenance` (retention, health, logs, config sync, users).

    runtime = JobRuntime(settings, engine, sessions, strategies, alerter)
    manager = runtime.task_manager()          # every job registered
    manager.run("health_check")               # by hand, recorded like a scheduled run
    start_scheduler(runtime)                  # every job on its schedule

(`sigma.runtime.wiring.job_runtime` builds the runtime from a process's `App`.)

Every job is idempotent: running it twice in a row leaves the same state (selection writes
the same parameters, which `set_params` treats as no change; reports replace their period's
rows; retention deletes what is older than a cutoff).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from pydantic import ValidationError

from sigma.config import Settings
from sigma.engine.fill_model import FillModel
from sigma.ops.metrics import Metrics
from sigma.regime.trend import TrendScanner
from sigma.research.ml_tune import TuneConfig
from sigma.scheduler import jobs_maintenance, jobs_reports, jobs_research
from sigma.scheduler.health import (
    Check,
    HealthMonitor,
    check_database,
    check_disk,
    check_feed,
    check_heartbeats,
    check_memory,
    check_rabbitmq,
    check_redis,
    check_worker,
)
from sigma.scheduler.maintenance import ApplyFn, ConfigSync
from sigma.scheduler.service import SchedulerService
from sigma.scheduler.tasks import Alerter, Clock, JobSpec, TaskManager, utc_now
from sigma.store.handles import Engine, SessionFactory
from sigma.store.settings import apply_settings
from sigma.strategies import StrategyRegistry

log = logging.getLogger(__name__)


def log_param_change(
    strategy: str, symbol: str, params: dict[str, Any] | None, version: int
) -> None:
    """The `apply_params` of a scheduler without running strategies: log the new version."""
    log.info("strategy parameters %s/%s v%d: %s", strategy, symbol, version, params)


@dataclass
class JobRuntime:
    """What the jobs use: settings, database, strategies, alerts, metrics and job state that
    lives as long as the process (health states, the trend scanner, synced versions)."""

    settings: Settings
    engine: Engine
    sessions: SessionFactory
    strategies: StrategyRegistry
    alerter: Alerter
    metrics: Metrics | None = None
    apply_params: ApplyFn = log_param_change
    ml_config: TuneConfig = field(default_factory=TuneConfig)
    health: HealthMonitor = field(init=False)
    scanner: TrendScanner = field(init=False, default_factory=TrendScanner)
    config_sync: ConfigSync = field(init=False)

    def __post_init__(self) -> None:
        self.health = HealthMonitor(self.health_checks(), self.alerter, self.metrics)
        self.config_sync = ConfigSync(self.apply_params, self.apply_setting)

    def health_checks(self) -> list[Check]:
        """Database, feed, worker and its heartbeats, disk and memory; Redis and RabbitMQ when
        configured."""
        s = self.settings
        stale = timedelta(seconds=s.scheduler.worker_stale_seconds)
        checks = [
            check_database(self.engine),
            check_feed(
                self.engine, timedelta(seconds=s.feed.feed_stale_seconds), s.trading.symbols
            ),
            check_worker(self.engine, stale),
            check_disk(self.var_dir, s.scheduler.disk_min_free_pct),
            check_memory(s.scheduler.memory_min_available_pct),
        ]
        checks.append(check_heartbeats(self.sessions, stale))
        if s.bus.redis_url:
            checks.append(check_redis(s.bus.redis_url))
        if s.bus.amqp_url:
            checks.append(check_rabbitmq(s.bus.amqp_url))
        return checks

    @property
    def fill_model(self) -> FillModel:
        """Trading costs from settings, so research scores what live trading would pay."""
        s = self.settings
        return FillModel(
            commission_pct=s.trading.commission_pct,
            commission_fixed=s.trading.commission_fixed,
            slippage_bps=s.trading.slippage_bps,
        )

    @property
    def var_dir(self) -> Path:
        """Where reports and logs go (created on demand)."""
        path = Path(self.settings.process.var_dir)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def apply_setting(self, key: str, value: Any, version: int) -> None:
        """A setting changed in the database: the jobs use the new value from their next run
        (ValueError when this instance cannot accept it)."""
        try:
            self.settings = apply_settings(self.settings, {key: value})
        except ValidationError as exc:
            raise ValueError(str(exc.errors()[0]["msg"])) from None
        except KeyError:
            raise ValueError(f"unknown setting {key!r}") from None
        log.info("setting %s = %r (v%d) from the database", key, value, version)

    def job_specs(self) -> list[JobSpec]:
        """Every job with its trigger from settings."""
        s = self.settings
        tz = s.scheduler.scheduler_timezone

        def cron(expr: str) -> CronTrigger:
            return CronTrigger.from_crontab(expr, timezone=tz)

        return [
            JobSpec(
                "strategy_selection",
                partial(jobs_research.strategy_selection, self),
                cron(s.scheduler.selection_cron),
                "StrategySelector: walk-forward optimisation and selection",
                then=("daily_summary",),
            ),
            JobSpec(
                "ml_tune",
                partial(jobs_research.ml_tune, self),
                cron(s.scheduler.ml_tune_cron),
                "MLModule: train and validate the entry gate model",
            ),
            JobSpec(
                "prune_data",
                partial(jobs_maintenance.prune_data, self),
                cron("15 2 * * *"),
                "retention of old rows",
            ),
            JobSpec(
                "health_check",
                partial(jobs_maintenance.health_check, self),
                IntervalTrigger(seconds=s.scheduler.health_interval_seconds, timezone=tz),
                "HealthCheck",
            ),
            JobSpec(
                "trend_scan",
                partial(jobs_research.trend_scan, self),
                IntervalTrigger(minutes=s.scheduler.trend_scan_minutes, timezone=tz),
                "TrendScanner",
            ),
            JobSpec(
                "weekly_report",
                partial(jobs_reports.weekly_report, self),
                cron(s.scheduler.weekly_report_cron),
                "weekly report",
            ),
            JobSpec(
                "daily_summary",
                partial(jobs_reports.daily_summary, self),
                cron(s.scheduler.daily_summary_cron),
                "daily summary",
            ),
            JobSpec(
                "log_rotation",
                partial(jobs_maintenance.log_rotation, self),
                cron("10 0 * * *"),
                "LogRotator",
            ),
            JobSpec(
                "config_sync",
                partial(jobs_maintenance.config_sync, self),
                IntervalTrigger(minutes=1, timezone=tz),
                "ConfigSync",
            ),
            JobSpec(
                "user_check",
                partial(jobs_maintenance.user_check, self),
                cron("0 1 * * *"),
                "UserValidation",
            ),
        ]

    def task_manager(self, clock: Clock = utc_now) -> TaskManager:
        """A TaskManager with every job registered."""
        manager = TaskManager(self.sessions, alerter=self.alerter, clock=clock)
        for spec in self.job_specs():
            manager.register(spec)
        return manager


def start_scheduler(runtime: JobRuntime) -> SchedulerService:
    """Start every job of `runtime` on its schedule in background threads; `sigma up` and
    `sigma scheduler` call this. `shutdown()` on the result stops the jobs and the alerts."""
    s = runtime.settings.scheduler
    service = SchedulerService(
        runtime.engine,
        runtime.task_manager(),
        timezone=s.scheduler_timezone,
        misfire_grace_time=s.misfire_grace_seconds,
    )
    service.start()
    return service

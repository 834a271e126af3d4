"""The scheduled jobs of the seed's scheduler subgraph, wired to one process's resources.

    runtime = JobRuntime.from_app(app)
    manager = runtime.task_manager()          # every job registered
    manager.run("health_check")               # by hand, recorded like a scheduled run
    SchedulerService(app.db, manager, timezone=...).start()

Every job is idempotent: running it twice in a row leaves the same state (selection writes
the same parameters, which `set_params` treats as no change; reports replace their period's
rows; retention deletes what is older than a cutoff).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from pydantic import ValidationError
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from sigma.bootstrap import App
from sigma.config import Settings
from sigma.engine.fill_model import FillModel
from sigma.notify.channels import Attachment
from sigma.ops.metrics import Metrics
from sigma.regime.news import NewsHandler
from sigma.regime.news_feed import NewsStore
from sigma.regime.trend import TrendScanner, save_trends
from sigma.reports.performance import pdf_path, publish
from sigma.research.ml_tune import TuneConfig
from sigma.research.ml_validate import tune_symbol
from sigma.research.select import recent_bars, select_for_symbol
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
from sigma.scheduler.maintenance import ApplyFn, ConfigSync, check_users, rotate_logs
from sigma.scheduler.retention import prune
from sigma.scheduler.service import SchedulerService
from sigma.scheduler.tasks import Alerter, Clock, JobContext, JobSpec, TaskManager, utc_now
from sigma.store.db import session_scope
from sigma.store.models import ActionLog
from sigma.store.params import get_active_params
from sigma.store.settings import apply_settings
from sigma.strategies import StrategyRegistry

log = logging.getLogger(__name__)

MIN_RESEARCH_BARS = 300
"""Fewer bars than this cannot be split into walk-forward folds or train/test sets."""


REPORT_SENT = "report_sent"


def _report_sent(session: Session, kind: str, end: datetime) -> list[str] | None:
    """Where the `kind` report ending at `end` was delivered, if it was already."""
    rows = session.scalars(
        select(ActionLog.details).where(
            ActionLog.source == f"{kind}_report", ActionLog.action == REPORT_SENT
        )
    )
    for details in rows:
        if details.get("period_end") == end.isoformat():
            return list(details.get("sent", []))
    return None


def _log_param_change(
    strategy: str, symbol: str, params: dict[str, Any] | None, version: int
) -> None:
    log.info("strategy parameters %s/%s v%d: %s", strategy, symbol, version, params)


@dataclass
class JobRuntime:
    """What the jobs use: settings, database, strategies, alerts, metrics and job state that
    lives as long as the process (health states, the trend scanner, synced versions)."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    strategies: StrategyRegistry
    alerter: Alerter
    metrics: Metrics | None = None
    apply_params: ApplyFn = _log_param_change
    ml_config: TuneConfig = field(default_factory=TuneConfig)
    health: HealthMonitor = field(init=False)
    scanner: TrendScanner = field(init=False, default_factory=TrendScanner)
    config_sync: ConfigSync = field(init=False)

    def __post_init__(self) -> None:
        self.health = HealthMonitor(self.health_checks(), self.alerter, self.metrics)
        self.config_sync = ConfigSync(self.apply_params, self.apply_setting)

    @classmethod
    def from_app(cls, app: App, metrics: Metrics | None = None) -> JobRuntime:
        """Resources of one process's `App`, alerts through the configured channels."""
        return cls(
            app.settings, app.db, app.sessions, app.strategies, Alerter(app.notifier()), metrics
        )

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

    # --- jobs --------------------------------------------------------------------------------

    def _bars(self, session: Session, symbol: str, ctx: JobContext, lookback: int) -> pd.DataFrame:
        timeframe = self.settings.research_bars_timeframe
        return recent_bars(session, symbol, timeframe, lookback, ctx.now)

    def strategy_selection(self, ctx: JobContext) -> dict[str, Any]:
        """StrategySelector: walk-forward every live strategy per symbol, write the winners."""
        s = self.settings
        candidates = [self.strategies.get(name) for name in s.trading.live_strategies]
        storage = s.research.optuna_storage
        chosen: dict[str, Any] = {}
        for i, symbol in enumerate(s.trading.symbols):
            ctx.report(i, len(s.trading.symbols))
            with self.sessions() as session:
                bars = self._bars(session, symbol, ctx, s.research.research_lookback_bars)
            if len(bars) < MIN_RESEARCH_BARS:
                chosen[symbol] = f"skipped: {len(bars)} bars"
                continue
            # A session of its own, first used for the winner's writes after the walk-forward:
            # on SQLite a transaction holds the write lock, which must not last a search.
            with session_scope(self.sessions) as session:
                selection = select_for_symbol(
                    session,
                    symbol,
                    bars,
                    candidates,
                    now=ctx.now,
                    cancel=ctx.cancel,
                    n_trials=s.research.optimize_trials,
                    initial_cash=s.trading.initial_cash,
                    fill_model=self.fill_model,
                    storage=storage,
                    workers=s.research.optimize_workers,
                )
            chosen[symbol] = selection.strategy
        ctx.report(len(s.trading.symbols), len(s.trading.symbols))
        return chosen

    def ml_tune(self, ctx: JobContext) -> dict[str, Any]:
        """MLModule: per symbol, train the gate model on the recorded bars, backtest the live
        strategies (with their active parameters) on its test window with and without the
        gate, and store the version; it trades only when it won (`sigma.research.ml_validate`)."""
        s = self.settings
        out: dict[str, Any] = {}
        for i, symbol in enumerate(s.trading.symbols):
            ctx.report(i, len(s.trading.symbols))
            with session_scope(self.sessions) as session:
                bars = self._bars(session, symbol, ctx, s.research.research_lookback_bars)
                if len(bars) < MIN_RESEARCH_BARS:
                    out[symbol] = (
                        f"skipped: {len(bars)} recorded {s.research_bars_timeframe} bars, "
                        f"{MIN_RESEARCH_BARS} needed"
                    )
                    log.info("ml_tune %s %s", symbol, out[symbol])
                    continue
                strategies = [
                    partial(
                        self.strategies.get(name),
                        **(get_active_params(session, name, symbol) or {}),
                    )
                    for name in s.trading.live_strategies
                ]
                try:
                    tuned = tune_symbol(
                        session,
                        symbol,
                        bars,
                        strategies,
                        config=self.ml_config,
                        threshold=s.regime.ml_gate_threshold,
                        initial_cash=s.trading.initial_cash,
                        fill_model=self.fill_model,
                        cancel=ctx.cancel,
                    )
                except ValueError as exc:  # e.g. a market that never moved: one class only
                    out[symbol] = f"not trained: {exc}"
                    log.warning("ml_tune %s %s", symbol, out[symbol])
                    continue
                version, active = tuned.row.version, tuned.row.active
            m, c = tuned.result.metrics, tuned.comparison
            out[symbol] = {"version": version, "active": active}
            self.alerter.send(
                "info",
                "ml_tune",
                f"{symbol} model v{version}: out-of-sample accuracy {m['accuracy']:.3f} vs "
                f"baseline {m['baseline_accuracy']:.3f}; live strategies on the test window "
                f"net {c.gated_pnl:.2f} gated vs {c.ungated_pnl:.2f} ungated"
                + ("; now gating entries" if active else "; not better, not used"),
            )
        ctx.report(len(s.trading.symbols), len(s.trading.symbols))
        return out

    def prune_data(self, ctx: JobContext) -> dict[str, int]:
        """DataCleaner.prune_old_ticks: ticks by tick retention, bars by bar retention (when
        set), logs and runs by log retention."""
        s = self.settings
        ticks = ctx.now - timedelta(days=s.retention.tick_retention_days)
        logs = ctx.now - timedelta(days=s.retention.log_retention_days)
        retention = {"ticks": ticks, "alert_log": logs, "action_log": logs, "trend_data": logs}
        retention["job_runs"] = logs
        if s.retention.bar_retention_days is not None:  # unset: recorded bars are kept forever
            retention["bars"] = ctx.now - timedelta(days=s.retention.bar_retention_days)
        return {r.table: r.deleted for r in prune(self.engine, retention)}

    def health_check(self, ctx: JobContext) -> dict[str, bool | None]:
        """HealthCheck: run every check; alerts on change of state."""
        return {r.name: r.ok for r in self.health.run(ctx.now)}

    def trend_scan(self, ctx: JobContext) -> int:
        """TrendScanner: update regimes from new bars and store them in trend_data."""
        s = self.settings
        # The notes mention the news still in its risk window, as the bot's handler holds it
        # (stored items scored again: the scheduler may run in a process of its own).
        news = NewsHandler(symbol_keywords=s.regime.news_keywords)
        NewsStore(self.sessions).restore(news, ctx.now)
        self.scanner.news = news
        with session_scope(self.sessions) as session:
            frames = {sym: self._bars(session, sym, ctx, 500) for sym in s.trading.symbols}
            frames = {sym: f for sym, f in frames.items() if not f.empty}
            readings = self.scanner.scan(frames)
            return save_trends(session, readings, s.research_bars_timeframe)

    def _report(self, ctx: JobContext, kind: str, days: int) -> dict[str, Any]:
        """Build, store and render the report, then distribute it once: a run that already
        delivered this period's report everywhere (recorded in `action_log`) does not send it
        again, so re-running the job is harmless; a run that failed somewhere sends again."""
        s = self.settings
        with session_scope(self.sessions) as session:
            report, path = publish(
                session,
                kind,
                days,
                ctx.now,
                self.var_dir / "reports" / "performance",
                s.trading.initial_cash,
                pdf=s.scheduler.report_pdf,
            )
            done = _report_sent(session, kind, report.end)
        files = [path, pdf_path(path)] if s.scheduler.report_pdf else [path]
        out: dict[str, Any] = {
            "html": str(path),
            "pdf": str(files[1]) if s.scheduler.report_pdf else None,
        }
        if done is not None:
            out["sent"] = done
            return out
        result = self.alerter.report(
            f"{kind}_report",
            report.headline(),
            [Attachment.of(p) for p in files],
            details={"report": str(path), **report.lines()},
        )
        if result is None:
            return out
        out["sent"] = list(result.delivered)
        if result.failed:
            out["failed"] = result.failed
            raise RuntimeError(
                f"{kind} report not delivered on "
                + ", ".join(f"{k} ({v})" for k, v in sorted(result.failed.items()))
            )
        with session_scope(self.sessions) as session:
            session.add(
                ActionLog(
                    ts=ctx.now,
                    source=f"{kind}_report",
                    action=REPORT_SENT,
                    details={"period_end": report.end.isoformat(), "sent": out["sent"]},
                )
            )
        return out

    def weekly_report(self, ctx: JobContext) -> dict[str, Any]:
        """PerformanceReporter: the last seven days, stored, rendered (HTML and PDF) and
        distributed."""
        return self._report(ctx, "weekly", 7)

    def daily_summary(self, ctx: JobContext) -> dict[str, Any]:
        """EmailAlert.send_daily_summary: yesterday's figures, e-mailed through the report
        route whatever the e-mail alert threshold."""
        return self._report(ctx, "daily", 1)

    def log_rotation(self, ctx: JobContext) -> int:
        """LogRotator: rotate logs under <var>/logs that grew large or were not rotated for
        `log_rotate_days`, compress them, drop old archives."""
        s = self.settings
        result = rotate_logs(
            self.var_dir / "logs",
            ctx.now,
            max_bytes=s.process.log_max_bytes,
            keep=timedelta(days=s.retention.log_retention_days),
            every=timedelta(days=s.process.log_rotate_days) if s.process.log_rotate_days else None,
        )
        return len(result.rotated)

    def config_sync_job(self, ctx: JobContext) -> int:
        """ConfigSync: apply strategy parameter and setting versions newer than this process
        has."""
        with self.sessions() as session:
            params = self.config_sync.sync(session)
            settings = self.config_sync.sync_settings(session)
        return len(params) + len(settings)

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

    def user_check(self, ctx: JobContext) -> dict[str, Any]:
        """UserValidation and UserRightsManager: deactivate idle users, report right changes."""
        with session_scope(self.sessions) as session:
            result = check_users(
                session, ctx.now, timedelta(days=self.settings.scheduler.user_inactive_days)
            )
        if result.deactivated or result.changes:
            lines = [f"deactivated after inactivity: {u}" for u in result.deactivated]
            self.alerter.send(
                "warning", "user_check", "; ".join(lines + result.changes) or "no change"
            )
        return {"deactivated": result.deactivated, "changes": result.changes}

    # --- registry ----------------------------------------------------------------------------

    def job_specs(self) -> list[JobSpec]:
        """Every job with its trigger from settings."""
        s = self.settings
        tz = s.scheduler.scheduler_timezone

        def cron(expr: str) -> CronTrigger:
            return CronTrigger.from_crontab(expr, timezone=tz)

        return [
            JobSpec(
                "strategy_selection",
                self.strategy_selection,
                cron(s.scheduler.selection_cron),
                "StrategySelector: walk-forward optimisation and selection",
                then=("daily_summary",),
            ),
            JobSpec(
                "ml_tune",
                self.ml_tune,
                cron(s.scheduler.ml_tune_cron),
                "MLModule: train and validate the entry gate model",
            ),
            JobSpec("prune_data", self.prune_data, cron("15 2 * * *"), "retention of old rows"),
            JobSpec(
                "health_check",
                self.health_check,
                IntervalTrigger(seconds=s.scheduler.health_interval_seconds, timezone=tz),
                "HealthCheck",
            ),
            JobSpec(
                "trend_scan",
                self.trend_scan,
                IntervalTrigger(minutes=s.scheduler.trend_scan_minutes, timezone=tz),
                "TrendScanner",
            ),
            JobSpec(
                "weekly_report",
                self.weekly_report,
                cron(s.scheduler.weekly_report_cron),
                "weekly report",
            ),
            JobSpec(
                "daily_summary",
                self.daily_summary,
                cron(s.scheduler.daily_summary_cron),
                "daily summary",
            ),
            JobSpec("log_rotation", self.log_rotation, cron("10 0 * * *"), "LogRotator"),
            JobSpec(
                "config_sync",
                self.config_sync_job,
                IntervalTrigger(minutes=1, timezone=tz),
                "ConfigSync",
            ),
            JobSpec("user_check", self.user_check, cron("0 1 * * *"), "UserValidation"),
        ]

    def task_manager(self, clock: Clock = utc_now) -> TaskManager:
        """A TaskManager with every job registered."""
        manager = TaskManager(self.sessions, alerter=self.alerter, clock=clock)
        for spec in self.job_specs():
            manager.register(spec)
        return manager


def start_scheduler(
    app: App,
    *,
    metrics: Metrics | None = None,
    apply_params: ApplyFn = _log_param_change,
) -> SchedulerService:
    """Start every job of `app` on its schedule in background threads;
    `sigma up` and `sigma scheduler` call this. `apply_params` receives parameter versions
    synced from the database; `shutdown()` on the result stops the jobs and the alerts."""
    runtime = JobRuntime.from_app(app, metrics)
    runtime.apply_params = apply_params
    runtime.config_sync.apply = apply_params
    service = SchedulerService(
        app.db,
        runtime.task_manager(),
        timezone=app.settings.scheduler.scheduler_timezone,
        misfire_grace_time=app.settings.scheduler.misfire_grace_seconds,
    )
    service.start()
    return service

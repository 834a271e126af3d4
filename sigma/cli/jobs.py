"""`sigma jobs`, `sigma scheduler` and `sigma report`: the TaskManager from the command line,
the scheduler process and performance reports (`sigma optimize`: `sigma.cli.optimize`)."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import typer
from rich import box
from rich.console import Console
from rich.table import Column, Table
from rich.text import Text

from sigma.bootstrap import App, bootstrap
from sigma.store.db import session_scope

jobs_app = typer.Typer(no_args_is_help=True, help="List, run, pause and resume scheduled jobs.")
report_app = typer.Typer(no_args_is_help=True, help="Performance reports.")
console = Console()


@contextmanager
def _app() -> Iterator[App]:
    application = bootstrap()
    try:
        yield application
    finally:
        application.close()


@contextmanager
def _service(application: App) -> Iterator[Any]:
    """The scheduler's job store opened for control (nothing runs in this process)."""
    from sigma.runtime.wiring import job_runtime
    from sigma.scheduler.service import SchedulerService

    runtime = job_runtime(application)
    manager = runtime.task_manager()
    service = SchedulerService(
        application.db, manager, timezone=application.settings.scheduler.scheduler_timezone
    )
    service.start(paused=True)
    try:
        # Control commands see every job, even before a scheduler has ever run.
        service.sync(manager.specs.values())
        yield service
    finally:
        service.shutdown(wait=False)


WIDE = 110
"""From this console width on, descriptions get their own column; below it they go under the
job's name, so `sigma jobs list` reads at 80 columns."""


def _when(moment: datetime | None) -> str:
    """A time in the listing: month, day and minute in UTC (the caption says so)."""
    if moment is None:
        return ""
    return f"{moment.astimezone(UTC) if moment.tzinfo else moment:%m-%d %H:%M}"


def _schedule(trigger: str) -> str:
    # "interval[0:01:00]" reads as "every 0:01:00"; other triggers as APScheduler names them.
    if trigger.startswith("interval[") and trigger.endswith("]"):
        return f"every {trigger[len('interval[') : -1]}"
    return trigger


@jobs_app.command("list")
def list_jobs() -> None:
    """Every job with its schedule, next run and last outcome."""
    with _app() as application, _service(application) as service:
        wide = console.width >= WIDE
        columns = [
            # Narrow, the job column takes the room left (its description wraps in it).
            Column("job", min_width=18, overflow="fold", ratio=None if wide else 1),
            Column("schedule", no_wrap=True),
            Column("next run", no_wrap=True),
            Column("last run", no_wrap=True),
            Column("outcome", no_wrap=True),
        ]
        if wide:
            columns.append(Column("description", ratio=1))
        table = Table(*columns, box=box.SIMPLE_HEAD, caption="times in UTC")
        for job in service.list_jobs():
            name = Text(job.id)
            if not wide:
                name.append(f"\n{job.description}", style="dim")
            row = [
                name,
                _schedule(job.trigger),
                "paused" if job.paused else _when(job.next_run),
                _when(job.last_started),
                job.last_outcome or "",
            ]
            table.add_row(*row, *([job.description] if wide else []))
        console.print(table)


@jobs_app.command("run")
def run(name: Annotated[str, typer.Argument(help="job id, see `sigma jobs list`")]) -> None:
    """Run a job now in this process (recorded in job_runs like a scheduled run)."""
    from sigma.runtime.wiring import job_runtime

    with _app() as application:
        runtime = job_runtime(application)
        manager = runtime.task_manager()
        try:
            manager.spec(name)
        except KeyError as exc:
            console.print(f"[red]error:[/] {exc.args[0]}")
            raise typer.Exit(2) from None
        # Ctrl-C asks the job to stop at its next progress report instead of killing it.
        previous = signal.signal(signal.SIGINT, lambda *_: manager.cancel(name))
        try:
            record = manager.run(name)
        finally:
            signal.signal(signal.SIGINT, previous)
            runtime.alerter.close()
    colour = "green" if record.outcome == "success" else "red"
    console.print(f"{name}: [{colour}]{record.outcome}[/] (run {record.run_id})")
    if record.error:
        console.print(record.error, soft_wrap=True)
    if record.result is not None:
        console.print(record.result)
    if record.outcome != "success":
        raise typer.Exit(1)


def _control(name: str, action: Literal["pause", "resume"]) -> None:
    with _app() as application, _service(application) as service:
        try:
            getattr(service, action)(name)
        except KeyError as exc:
            console.print(f"[red]error:[/] {exc.args[0]}")
            raise typer.Exit(2) from None
    console.print(f"{name}: {action}d")


@jobs_app.command("pause")
def pause(name: Annotated[str, typer.Argument(help="job id")]) -> None:
    """Stop scheduling a job (kept across restarts)."""
    _control(name, "pause")


@jobs_app.command("resume")
def resume(name: Annotated[str, typer.Argument(help="job id")]) -> None:
    """Schedule a paused job again."""
    _control(name, "resume")


@jobs_app.command("trigger")
def trigger(name: Annotated[str, typer.Argument(help="job id")]) -> None:
    """Ask the running scheduler to run a job at its next wake-up (at most one health-check
    interval away), keeping the job's schedule afterwards."""
    from sigma.scheduler.tasks import utc_now

    with _app() as application, _service(application) as service:
        try:
            service.trigger(name, utc_now())
        except KeyError as exc:
            console.print(f"[red]error:[/] {exc.args[0]}")
            raise typer.Exit(2) from None
    console.print(f"{name}: triggered")


@jobs_app.command("history")
def history(
    name: Annotated[str | None, typer.Argument(help="job id (all jobs when omitted)")] = None,
    limit: Annotated[int, typer.Option(help="rows")] = 20,
) -> None:
    """The newest recorded runs."""
    from sigma.scheduler.tasks import TaskManager

    with _app() as application:
        rows = TaskManager(application.sessions).history(name, limit)
    table = Table("run", "job", "started", "ended", "outcome", "error")
    for row in rows:
        table.add_row(
            str(row.id),
            row.job_id,
            f"{row.started_at:%Y-%m-%d %H:%M:%S}",
            "" if row.ended_at is None else f"{row.ended_at:%H:%M:%S}",
            row.outcome,
            (row.error or "")[:80],
        )
    console.print(table)


def serve(application: App, stop: threading.Event) -> None:
    """Run every job on its schedule until `stop` is set, then let running jobs finish.
    Health gauges are served on SIGMA_METRICS_PORT when it is set."""
    from sigma.ops.metrics import Metrics
    from sigma.runtime.wiring import job_runtime
    from sigma.scheduler.jobs import start_scheduler

    metrics = Metrics()
    port = application.settings.process.metrics_port
    exporter = metrics.serve(port) if port else None
    service = start_scheduler(job_runtime(application, metrics=metrics))
    console.print(f"scheduler running: {len(service.list_jobs())} jobs (Ctrl-C stops)")
    try:
        # A loop thread that ended (`sigma.scheduler.guard`) is started again within a second.
        while not stop.wait(1.0):
            service.scheduler.revive()
    finally:
        service.shutdown()
        if exporter is not None:
            exporter.close()


def scheduler() -> None:
    """Run the scheduler alone until interrupted (Ctrl-C or SIGTERM)."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with _app() as application:
        serve(application, stop)


def _report(kind: str, days: int) -> None:
    from sigma.reports.performance import pdf_path, publish
    from sigma.scheduler.tasks import utc_now

    with _app() as application, session_scope(application.sessions) as session:
        s = application.settings
        report, path = publish(
            session, kind, days, utc_now(), s.process.var_dir / "reports" / "performance",
            Decimal(s.trading.initial_cash), pdf=s.scheduler.report_pdf,
        )  # fmt: skip
    console.print(report.headline(), soft_wrap=True)
    console.print(f"report: {path}", soft_wrap=True)
    if s.scheduler.report_pdf:
        console.print(f"pdf: {pdf_path(path)}", soft_wrap=True)


@report_app.command("weekly")
def weekly() -> None:
    """Build, store and write the last seven days' performance report."""
    _report("weekly", 7)


@report_app.command("daily")
def daily() -> None:
    """Build, store and write yesterday's summary."""
    _report("daily", 1)


config_app = typer.Typer(
    no_args_is_help=True,
    help="Settings kept in the database and synced to every running instance (ConfigSync).",
)


@config_app.command("list")
def config_list() -> None:
    """Every stored setting with its version."""
    from sigma.store.settings import get_settings

    with _app() as application, application.sessions() as session:
        stored = get_settings(session)
    table = Table("setting", "value", "version", "changed by", "updated")
    for item in stored.values():
        table.add_row(
            item.key,
            json.dumps(item.value),
            str(item.version),
            item.changed_by,
            f"{item.updated_at:%Y-%m-%d %H:%M}",
        )
    console.print(table)


@config_app.command("set")
def config_set(
    key: Annotated[str, typer.Argument(help="setting name, e.g. max_drawdown")],
    value: Annotated[str, typer.Argument(help='JSON (0.2, true, ["a"]) or plain text')],
    expect_version: Annotated[
        int | None,
        typer.Option(help="the version you edited (0: not stored yet); refused if it changed"),
    ] = None,
    by: Annotated[str, typer.Option(help="who makes the change")] = "cli",
) -> None:
    """Store a setting; running instances apply it at their next sync."""
    from sigma.store.settings import VersionConflict, set_setting

    try:
        parsed: Any = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    with _app() as application:
        try:
            with session_scope(application.sessions) as session:
                version = set_setting(
                    session,
                    key,
                    parsed,
                    changed_by=by,
                    base=application.settings,
                    expected_version=expect_version,
                )
        except VersionConflict as exc:
            console.print(f"[red]conflict:[/] {exc}")
            raise typer.Exit(3) from None
        except ValueError as exc:
            console.print(f"[red]error:[/] {exc}")
            raise typer.Exit(2) from None
    console.print(f"{key} stored as version {version}")

"""The report jobs: the weekly performance report and the daily summary, each built, stored,
rendered and delivered once per period."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sigma.notify.channels import Attachment
from sigma.reports.performance import pdf_path, publish
from sigma.scheduler.tasks import JobContext
from sigma.store.db import session_scope
from sigma.store.handles import Session
from sigma.store.job_notes import add_note, notes

if TYPE_CHECKING:  # the runtime registers these jobs: a type-only import back
    from sigma.scheduler.jobs import JobRuntime

__all__ = ["REPORT_SENT", "daily_summary", "weekly_report"]

REPORT_SENT = "report_sent"
"""The `action_log` action recording where a period's report was delivered."""


def _report_sent(session: Session, kind: str, end: datetime) -> list[str] | None:
    """Where the `kind` report ending at `end` was delivered, if it was already."""
    for details in notes(session, f"{kind}_report", REPORT_SENT):
        if details.get("period_end") == end.isoformat():
            return list(details.get("sent", []))
    return None


def _report(rt: JobRuntime, ctx: JobContext, kind: str, days: int) -> dict[str, Any]:
    """Build, store and render the report, then distribute it once: a run that already
    delivered this period's report everywhere (recorded in `action_log`) does not send it
    again, so re-running the job is harmless; a run that failed somewhere sends again."""
    s = rt.settings
    with session_scope(rt.sessions) as session:
        report, path = publish(
            session,
            kind,
            days,
            ctx.now,
            rt.var_dir / "reports" / "performance",
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
    result = rt.alerter.report(
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
    with session_scope(rt.sessions) as session:
        sent = {"period_end": report.end.isoformat(), "sent": out["sent"]}
        add_note(session, ctx.now, f"{kind}_report", REPORT_SENT, sent)
    return out


def weekly_report(rt: JobRuntime, ctx: JobContext) -> dict[str, Any]:
    """PerformanceReporter: the last seven days, stored, rendered (HTML and PDF) and
    distributed."""
    return _report(rt, ctx, "weekly", 7)


def daily_summary(rt: JobRuntime, ctx: JobContext) -> dict[str, Any]:
    """EmailAlert.send_daily_summary: yesterday's figures, e-mailed through the report
    route whatever the e-mail alert threshold."""
    return _report(rt, ctx, "daily", 1)

"""The daily summary and weekly report are e-mailed through the report route - whatever the
e-mail alert threshold (error) - to a real SMTP server (aiosmtpd) on 127.0.0.1, with the HTML
and PDF reports attached; a re-run does not send twice; a failed delivery fails the run and is
sent by the next one."""

from __future__ import annotations

import email
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SmtpSession
from scheduler_helpers import FakeClock
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from sigma.config import load_settings
from sigma.notify.config import from_settings
from sigma.ops.metrics import Metrics
from sigma.scheduler.jobs import JobRuntime
from sigma.scheduler.jobs_reports import REPORT_SENT
from sigma.scheduler.tasks import Alerter, TaskManager
from sigma.store.db import session_scope
from sigma.store.models import ActionLog, LedgerEntry
from sigma.strategies import load_strategies

NOW = datetime(2026, 3, 3, 0, 5, tzinfo=UTC)
YESTERDAY = datetime(2026, 3, 2, tzinfo=UTC)


@dataclass
class Inbox:
    """What the SMTP server received."""

    envelopes: list[Envelope] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self) -> list[tuple[list[str], EmailMessage]]:
        out = []
        for env in self.envelopes:
            content = env.content if isinstance(env.content, bytes) else b""
            message = email.message_from_bytes(content, policy=default_policy)
            assert isinstance(message, EmailMessage)
            out.append((list(env.rcpt_tos), message))
        return out


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, Controller]]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        yield inbox, controller
    finally:
        controller.stop()


def _runtime(
    db_url: str, engine: Engine, tmp_path: Path, port: int
) -> tuple[JobRuntime, sessionmaker[Session]]:
    from sigma.store.db import session_factory

    sessions = session_factory(engine)
    notify = {
        "notify_smtp_host": "127.0.0.1",
        "notify_smtp_port": str(port),
        "notify_email_from": "sigma@example.com",
        "notify_email_to": "oncall@example.com",
        "notify_report_email_to": "desk@example.com, boss@example.com",
        "notify_channel_timeout_s": "5",
    }
    service = from_settings(notify, session_factory=sessions)
    settings = load_settings(
        database_url=db_url, var_dir=tmp_path / "var", symbols=["BTC"], live_strategies=[]
    )
    runtime = JobRuntime(
        settings, engine, sessions, load_strategies([]), Alerter(service), Metrics()
    )
    with session_scope(sessions) as session:
        for hour, pnl in ((9, "125.50"), (15, "-20.25")):
            session.add(
                LedgerEntry(
                    ts=YESTERDAY + timedelta(hours=hour),
                    mode="paper",
                    symbol="BTC",
                    strategy="sma_cross",
                    cash_delta=Decimal(pnl),
                    fee=Decimal("0.10"),
                    realized_pnl=Decimal(pnl),
                    reason="fill",
                )
            )
    return runtime, sessions


def _attachments(message: EmailMessage) -> dict[str, tuple[str, bytes]]:
    out = {}
    for part in message.iter_attachments():
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        out[str(part.get_filename())] = (part.get_content_type(), payload)
    return out


def test_daily_summary_is_emailed_once_with_its_reports(
    db_url: str, engine: Engine, tmp_path: Path, smtp: tuple[Inbox, Controller]
) -> None:
    inbox, controller = smtp
    runtime, sessions = _runtime(db_url, engine, tmp_path, controller.port)
    manager = runtime.task_manager(FakeClock(NOW))
    try:
        record = manager.run("daily_summary")
        assert record.outcome == "success", record.error
        assert "email_reports" in record.result["sent"]
        assert "email" not in record.result["sent"]  # info is below the alert threshold

        ((recipients, message),) = inbox.messages()
        assert recipients == ["desk@example.com", "boss@example.com"]
        assert "daily report 2026-03-02..2026-03-03" in str(message["Subject"])
        body = message.get_body(preferencelist=("plain",))
        assert body is not None
        text = body.get_content()
        assert "paper account: PnL 105.25, fees 0.20, 2 trades" in text
        assert "sma_cross (paper): PnL 105.25" in text
        files = _attachments(message)
        assert files.keys() == {"daily-2026-03-03.html", "daily-2026-03-03.pdf"}
        assert files["daily-2026-03-03.pdf"][0] == "application/pdf"
        assert files["daily-2026-03-03.pdf"][1].startswith(b"%PDF-")
        assert b"sma_cross" in files["daily-2026-03-03.html"][1]
        assert Path(record.result["pdf"]).read_bytes() == files["daily-2026-03-03.pdf"][1]

        # Idempotent: the same period is not mailed again.
        again = manager.run("daily_summary")
        assert again.outcome == "success" and again.result["sent"] == record.result["sent"]
        assert len(inbox.envelopes) == 1
        with sessions() as session:
            sent = session.scalars(select(ActionLog).where(ActionLog.action == REPORT_SENT))
            assert [row.details["period_end"] for row in sent] == ["2026-03-03T00:00:00+00:00"]

        # The weekly report goes the same way.
        weekly = manager.run("weekly_report")
        assert weekly.outcome == "success", weekly.error
        assert len(inbox.envelopes) == 2
        assert "weekly report" in str(inbox.messages()[1][1]["Subject"])
    finally:
        runtime.alerter.close()


def test_undelivered_summary_fails_the_run_and_is_sent_by_the_next(
    db_url: str, engine: Engine, tmp_path: Path
) -> None:
    port = _free_port()  # nothing listens here yet
    runtime, _ = _runtime(db_url, engine, tmp_path, port)
    manager = runtime.task_manager(FakeClock(NOW))
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    try:
        failed = manager.run("daily_summary")
        assert failed.outcome == "failed"
        assert failed.error is not None and "email_reports" in failed.error
        controller.start()
        try:
            retried = manager.run("daily_summary")
        finally:
            controller.stop()
        assert retried.outcome == "success", retried.error
        assert len(inbox.envelopes) == 1
    finally:
        runtime.alerter.close()


def test_without_a_notifier_the_report_is_only_logged(
    db_url: str, engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sigma.scheduler.tasks")
    runtime, _ = _runtime(db_url, engine, tmp_path, 1)
    runtime.alerter = Alerter()  # no notification service at all
    manager: TaskManager = runtime.task_manager(FakeClock(NOW))
    record = manager.run("daily_summary")
    assert record.outcome == "success" and "sent" not in record.result
    assert "report daily_report: daily report 2026-03-02" in caplog.text

from __future__ import annotations

from types import SimpleNamespace

import httpx
import pytest
from notify_helpers import HttpSink, RecordingPubSub, SmtpSink
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sigma.notify import from_settings
from sigma.notify.channels import EmailChannel
from sigma.store.models import AlertLog


async def test_from_settings_enables_every_configured_channel(
    http_sink: HttpSink, smtp_sink: SmtpSink, db: sessionmaker[Session]
) -> None:
    settings = {
        "notify_dedupe_window_s": "30",
        "notify_channel_timeout_s": "5",
        "notify_webhook_url": f"{http_sink.url}/hook",
        "notify_webhook_headers": {"Authorization": "Bearer t"},
        "notify_slack_webhook_url": f"{http_sink.url}/slack",
        "notify_slack_min_severity": "ERROR",
        "notify_telegram_token": "42:XYZ",
        "notify_telegram_chat_id": "7",
        "notify_telegram_base_url": http_sink.url,
        "notify_smtp_host": "127.0.0.1",
        "notify_smtp_port": str(smtp_sink.port),
        "notify_smtp_starttls": "false",
        "notify_email_from": "sigma@example.com",
        "notify_email_to": "ops@example.com, dev@example.com",
        "notify_email_rate_per_minute": "1",
        "notify_email_burst": "1",
        "notify_unrelated": "",
    }
    bus = RecordingPubSub()
    async with httpx.AsyncClient() as client:
        service = from_settings(settings, session_factory=db, pubsub=bus, client=client)  # type: ignore[arg-type]
        assert service.channels == [
            "log", "pubsub", "webhook", "slack", "telegram", "email", "email_reports",
        ]  # fmt: skip
        critical = await service.notify("critical", "engine", "halted", dedupe_key="halt")
        repeat = await service.notify("critical", "engine", "halted", dedupe_key="halt")
        warning = await service.notify("warning", "risk", "near limit")
        await service.aclose()
    assert critical.delivered == ("log", "pubsub", "webhook", "slack", "telegram", "email")
    assert critical.failed == {}
    assert repeat.suppressed == "duplicate"
    assert warning.delivered == ("log", "pubsub", "webhook", "telegram")
    hook = next(r for r in http_sink.requests if r.path == "/hook")
    assert hook.headers["authorization"] == "Bearer t"
    assert {r.path for r in http_sink.requests} == {"/hook", "/slack", "/bot42:XYZ/sendMessage"}
    assert http_sink.bodies("/bot42:XYZ/sendMessage")[0]["chat_id"] == "7"
    (mail,) = smtp_sink.mails
    assert mail.recipients == ["ops@example.com", "dev@example.com"]
    assert len(bus.messages) == 2
    with db() as session:
        # The repeat counts on its key's row instead of being stored again.
        assert session.execute(select(AlertLog.message, AlertLog.seen)).all() == [
            ("halted", 2),
            ("near limit", 1),
        ]


def test_from_settings_reads_attributes_and_defaults() -> None:
    settings = SimpleNamespace(
        notify_log_min_severity="warning",
        notify_smtp_host="mail",
        notify_email_from="a@x",
        notify_email_to=["b@x"],
        notify_smtp_starttls=True,
        notify_smtp_username="u",
    )
    service = from_settings(settings)
    assert service.channels == ["log", "email", "email_reports"]
    assert service.report_channels == ["email_reports"]
    routes = service._routes  # white-box: the defaults are the contract here
    assert routes["log"].min_severity == "warning"
    assert routes["email"].min_severity == "error"
    email = routes["email"].channel
    assert (email._port, email._starttls, email._username) == (587, True, "u")  # type: ignore[attr-defined]
    # Reports go to the alert recipients unless report_email_to names others.
    reports = routes["email_reports"].channel
    assert isinstance(reports, EmailChannel) and reports.recipients == ["b@x"]
    settings.notify_report_email_to = "desk@x, boss@x"
    reports = from_settings(settings)._routes["email_reports"].channel
    assert isinstance(reports, EmailChannel) and reports.recipients == ["desk@x", "boss@x"]
    settings.notify_email_reports = "false"
    assert from_settings(settings).channels == ["log", "email"]
    assert from_settings({}).channels == ["log"]
    with pytest.raises(ValueError, match="unknown severity"):
        from_settings({"notify_log_min_severity": "loud"})

from __future__ import annotations

import logging
import smtplib
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
from notify_helpers import HttpSink, RecordingPubSub, SmtpSink

from sigma.bus.base import CHANNEL_ALERTS
from sigma.notify import (
    Alert,
    DeliveryError,
    EmailChannel,
    HttpOptions,
    LogChannel,
    PubSubChannel,
    SlackChannel,
    TelegramChannel,
    WebhookChannel,
)
from sigma.notify.channels import TELEGRAM_MAX_CHARS

TS = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ALERT = Alert(
    "warning",
    "risk",
    "order rejected",
    dedupe_key="reject:BTC",
    details={"reason": "max_position", "qty": Decimal("0.5")},
    ts=TS,
)
FAST: HttpOptions = {"retries": 2, "backoff": 0.001}


async def test_webhook_posts_alert_json_with_headers(http_sink: HttpSink) -> None:
    channel = WebhookChannel(f"{http_sink.url}/hook", headers={"X-Token": "abc"}, **FAST)
    await channel.deliver(ALERT)
    await channel.aclose()
    (request,) = http_sink.requests
    assert request.path == "/hook"
    assert request.headers["x-token"] == "abc"
    assert request.headers["content-type"] == "application/json"
    assert request.body == {
        "severity": "warning",
        "source": "risk",
        "message": "order rejected",
        "dedupe_key": "reject:BTC",
        "details": {"reason": "max_position", "qty": "0.5"},
        "ts": "2024-05-01T12:00:00+00:00",
    }


async def test_slack_posts_text(http_sink: HttpSink) -> None:
    channel = SlackChannel(f"{http_sink.url}/services/T0/B0/x", **FAST)
    await channel.deliver(ALERT)
    await channel.deliver(Alert("info", "risk", "qty <min> & co"))
    await channel.aclose()
    assert http_sink.bodies("/services/T0/B0/x") == [
        {"text": "[WARNING] risk: order rejected\nqty: 0.5\nreason: max_position"},
        {"text": "[INFO] risk: qty &lt;min&gt; &amp; co"},
    ]


async def test_telegram_send_message_on_configured_base_url(http_sink: HttpSink) -> None:
    async with httpx.AsyncClient() as client:
        channel = TelegramChannel("123:ABC", -100, base_url=http_sink.url + "/", client=client)
        await channel.deliver(ALERT)
        await channel.deliver(Alert("info", "s", "x" * 5000))
        await channel.aclose()  # a shared client stays open
        assert not client.is_closed
    first, second = http_sink.requests
    assert first.path == "/bot123:ABC/sendMessage"
    assert first.body == {
        "chat_id": -100,
        "text": "[WARNING] risk: order rejected\nqty: 0.5\nreason: max_position",
        "disable_web_page_preview": True,
    }
    assert len(second.body["text"]) == TELEGRAM_MAX_CHARS


async def test_http_retries_5xx_and_429_then_succeeds(http_sink: HttpSink) -> None:
    http_sink.script["/hook"] = [(503, 0.0), (429, 0.0)]
    channel = WebhookChannel(f"{http_sink.url}/hook", **FAST)
    await channel.deliver(ALERT)
    await channel.aclose()
    assert len(http_sink.requests) == 3


async def test_http_gives_up_after_retries(http_sink: HttpSink) -> None:
    http_sink.script["/hook"] = [(500, 0.0)] * 3
    channel = WebhookChannel(f"{http_sink.url}/hook", **FAST)
    with pytest.raises(DeliveryError, match=r"webhook: HTTP 500 after 3 attempts"):
        await channel.deliver(ALERT)
    await channel.aclose()
    assert len(http_sink.requests) == 3


async def test_http_client_error_is_not_retried(http_sink: HttpSink) -> None:
    http_sink.script["/hook"] = [(400, 0.0)]
    channel = WebhookChannel(f"{http_sink.url}/hook", **FAST)
    with pytest.raises(DeliveryError, match=r"^webhook: HTTP 400$"):
        await channel.deliver(ALERT)
    await channel.aclose()
    assert len(http_sink.requests) == 1


async def test_http_timeout_is_retried(http_sink: HttpSink) -> None:
    http_sink.script["/hook"] = [(200, 0.5)]
    channel = WebhookChannel(f"{http_sink.url}/hook", timeout=0.1, retries=2, backoff=0.001)
    await channel.deliver(ALERT)
    await channel.aclose()
    assert len(http_sink.requests) == 2


async def test_transport_error_never_leaks_the_url() -> None:
    # Port 9 (discard) on localhost is closed: the connection is refused.
    channel = TelegramChannel("SECRET-TOKEN", 1, base_url="http://127.0.0.1:9", **FAST)
    with pytest.raises(DeliveryError) as info:
        await channel.deliver(ALERT)
    await channel.aclose()
    assert str(info.value) == "telegram: ConnectError after 3 attempts"


async def test_email_delivered_with_login(smtp_sink: SmtpSink) -> None:
    channel = EmailChannel(
        "127.0.0.1",
        smtp_sink.port,
        "sigma@example.com",
        ["ops@example.com", "dev@example.com"],
        username="bot",
        password="pw",
    )
    await channel.deliver(ALERT)
    (mail,) = smtp_sink.mails
    assert smtp_sink.logins == [("bot", "pw")]
    assert mail.sender == "sigma@example.com"
    assert mail.recipients == ["ops@example.com", "dev@example.com"]
    assert "Subject: [SIGMA] [WARNING] risk: order rejected" in mail.data
    assert "To: ops@example.com, dev@example.com" in mail.data
    assert "qty: 0.5\r\nreason: max_position" in mail.data


async def test_email_starttls_refused_fails(smtp_sink: SmtpSink) -> None:
    channel = EmailChannel("127.0.0.1", smtp_sink.port, "a@x", ["b@x"], starttls=True)
    with pytest.raises(smtplib.SMTPResponseException):
        await channel.deliver(ALERT)
    assert "STARTTLS" in smtp_sink.commands
    assert smtp_sink.mails == []
    with pytest.raises(ValueError, match="recipient"):
        EmailChannel("h", 25, "a@x", [])


async def test_pubsub_publishes_alert_json() -> None:
    bus = RecordingPubSub()
    await PubSubChannel(bus).deliver(ALERT)  # type: ignore[arg-type]
    assert bus.messages == [(CHANNEL_ALERTS, ALERT.to_json().encode())]


async def test_log_channel_uses_matching_level(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="sigma.alerts")
    await LogChannel().deliver(ALERT)
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == "[WARNING] risk: order rejected"
    assert record.__dict__["details"] == {"reason": "max_position", "qty": Decimal("0.5")}
    assert record.__dict__["dedupe_key"] == "reject:BTC"

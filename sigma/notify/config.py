"""Building a `NotificationService` from settings.

`from_settings` reads flat ``notify_*`` keys from a mapping or an object with attributes; the
settings' `NotifySettings.channel_keys` gives them from ``SIGMA_NOTIFY`` and the
``SIGMA_NOTIFY_*`` environment variables. Values
may be strings, as they arrive from the environment. A channel is enabled when its required
keys are set:

==========  ======================================================================
channel     keys (``notify_`` prefix omitted)
==========  ======================================================================
log         always on; ``log_min_severity`` (info)
pubsub      when a `pubsub` argument is given; ``pubsub_min_severity`` (info)
webhook     ``webhook_url``; ``webhook_headers`` (mapping)
slack       ``slack_webhook_url``
telegram    ``telegram_token``, ``telegram_chat_id``; ``telegram_base_url``
email       ``smtp_host``, ``email_from``, ``email_to`` (list or comma-separated);
            ``smtp_port`` (587), ``smtp_username``, ``smtp_password``, ``smtp_starttls``
==========  ======================================================================

With the SMTP keys set, reports (the daily summary, the weekly performance report) are also
e-mailed - whatever ``email_min_severity`` - to ``report_email_to`` (default: ``email_to``)
on a report-only channel ``email_reports``; ``email_reports`` = false turns that off.

Every external channel (webhook, slack, telegram, email) also reads ``<channel>_min_severity``
(warning; email: error), ``<channel>_rate_per_minute`` (6) and ``<channel>_burst`` (5).
Service-wide: ``dedupe_window_s`` (300) and ``channel_timeout_s`` (10).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from sigma.bus.base import PubSub
from sigma.notify.alert import Severity, parse_severity
from sigma.notify.channels import (
    Channel,
    EmailChannel,
    LogChannel,
    PubSubChannel,
    SlackChannel,
    TelegramChannel,
    WebhookChannel,
)
from sigma.notify.service import NotificationService
from sigma.notify.store import AlertStore
from sigma.store.handles import SessionFactory

_TRUE = frozenset({"1", "true", "yes", "on"})


class _Reader:
    """Typed access to ``notify_*`` keys of a mapping or attribute object."""

    def __init__(self, settings: Mapping[str, Any] | object) -> None:
        self._settings = settings

    def raw(self, key: str) -> Any:
        name = f"notify_{key}"
        if isinstance(self._settings, Mapping):
            value = self._settings.get(name)
        else:
            value = getattr(self._settings, name, None)
        return None if value == "" else value

    def text(self, key: str, default: str | None = None) -> str | None:
        value = self.raw(key)
        return default if value is None else str(value)

    def number(self, key: str, default: float) -> float:
        value = self.raw(key)
        return default if value is None else float(value)

    def flag(self, key: str) -> bool:
        value = self.raw(key)
        return value is not None and str(value).strip().lower() in _TRUE

    def severity(self, key: str, default: Severity) -> Severity:
        return parse_severity(self.text(key, default) or default)

    def strings(self, key: str) -> list[str]:
        value = self.raw(key)
        if value is None:
            return []
        items = value.split(",") if isinstance(value, str) else value
        return [str(item).strip() for item in items if str(item).strip()]


def _external_channels(read: _Reader, client: httpx.AsyncClient | None) -> list[Channel]:
    channels: list[Channel] = []
    if url := read.text("webhook_url"):
        headers = read.raw("webhook_headers") or {}
        channels.append(WebhookChannel(url, headers=headers, client=client))
    if url := read.text("slack_webhook_url"):
        channels.append(SlackChannel(url, client=client))
    token, chat_id = read.text("telegram_token"), read.text("telegram_chat_id")
    if token and chat_id:
        base_url = read.text("telegram_base_url", "https://api.telegram.org") or ""
        channels.append(TelegramChannel(token, chat_id, base_url=base_url, client=client))
    if email := _email(read, read.strings("email_to"), "email"):
        channels.append(email)
    return channels


def _email(read: _Reader, recipients: list[str], name: str) -> EmailChannel | None:
    host, sender = read.text("smtp_host"), read.text("email_from")
    if not (host and sender and recipients):
        return None
    return EmailChannel(
        host,
        int(read.number("smtp_port", 587)),
        sender,
        recipients,
        username=read.text("smtp_username"),
        password=read.text("smtp_password"),
        starttls=read.flag("smtp_starttls"),
        name=name,
    )


def _report_email(read: _Reader) -> EmailChannel | None:
    if read.raw("email_reports") is not None and not read.flag("email_reports"):
        return None
    recipients = read.strings("report_email_to") or read.strings("email_to")
    return _email(read, recipients, "email_reports")


def from_settings(
    settings: Mapping[str, Any] | object,
    *,
    session_factory: SessionFactory | None = None,
    pubsub: PubSub | None = None,
    client: httpx.AsyncClient | None = None,
) -> NotificationService:
    """A service with the channels the settings enable (see the module docstring).

    `session_factory` enables the `alert_log` table; `pubsub` the dashboard channel; `client`
    is shared by the HTTP channels (each creates its own otherwise).
    """
    read = _Reader(settings)
    service = NotificationService(
        store=AlertStore(session_factory) if session_factory is not None else None,
        dedupe_window=read.number("dedupe_window_s", 300.0),
        channel_timeout=read.number("channel_timeout_s", 10.0),
    )
    service.add_channel(LogChannel(), min_severity=read.severity("log_min_severity", "info"))
    if pubsub is not None:
        service.add_channel(
            PubSubChannel(pubsub), min_severity=read.severity("pubsub_min_severity", "info")
        )
    for channel in _external_channels(read, client):
        default: Severity = "error" if channel.name == "email" else "warning"
        service.add_channel(
            channel,
            min_severity=read.severity(f"{channel.name}_min_severity", default),
            rate_per_minute=read.number(f"{channel.name}_rate_per_minute", 6.0),
            burst=int(read.number(f"{channel.name}_burst", 5)),
        )
    if reports := _report_email(read):
        service.add_channel(reports, reports_only=True)
    return service

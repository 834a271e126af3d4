"""Notifications: alerts routed to log, webhook, Slack, Telegram, e-mail and the bus.

Example::

    service = from_settings({"notify_slack_webhook_url": url}, session_factory=factory)
    await service.notify("warning", "risk", "order rejected", reason="max_position")
    await service.aclose()
"""

from sigma.notify.alert import (
    SEVERITIES,
    SUPPRESSED_DUPLICATE,
    SUPPRESSED_RATE_LIMITED,
    Alert,
    Severity,
    parse_severity,
    severity_rank,
)
from sigma.notify.channels import (
    Attachment,
    Channel,
    DeliveryError,
    EmailChannel,
    HttpChannel,
    HttpOptions,
    LogChannel,
    PubSubChannel,
    SlackChannel,
    TelegramChannel,
    WebhookChannel,
)
from sigma.notify.config import from_settings
from sigma.notify.limits import DedupeWindow, TokenBucket
from sigma.notify.service import NotificationService, Route, SendResult
from sigma.notify.store import AlertStore

__all__ = [
    "SEVERITIES",
    "SUPPRESSED_DUPLICATE",
    "SUPPRESSED_RATE_LIMITED",
    "Alert",
    "AlertStore",
    "Attachment",
    "Channel",
    "DedupeWindow",
    "DeliveryError",
    "EmailChannel",
    "HttpChannel",
    "HttpOptions",
    "LogChannel",
    "NotificationService",
    "PubSubChannel",
    "Route",
    "SendResult",
    "Severity",
    "SlackChannel",
    "TelegramChannel",
    "TokenBucket",
    "WebhookChannel",
    "from_settings",
    "parse_severity",
    "severity_rank",
]

"""Delivery channels: where an alert goes once the service decided to send it.

A channel only delivers; routing, dedupe and rate limits live in `NotificationService`. A
failed delivery raises `DeliveryError` (or any exception) and the service logs it. Error
messages never contain URLs, because Telegram and Slack URLs embed their secrets.
"""

from __future__ import annotations

import asyncio
import logging
import mimetypes
import smtplib
import ssl
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypedDict, Unpack

import httpx

from sigma.bus.base import CHANNEL_ALERTS, PubSub
from sigma.domain.jsontext import dumps
from sigma.notify.alert import Alert

_LOG_LEVELS = {
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}
# Telegram rejects longer messages outright; cutting keeps the important first lines.
TELEGRAM_MAX_CHARS = 4096


class DeliveryError(Exception):
    """A channel could not deliver an alert."""


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file sent along with a report (e-mail attachment)."""

    filename: str
    content: bytes
    mime_type: str = "application/octet-stream"

    @classmethod
    def of(cls, path: Path) -> Attachment:
        """The file at `path`, its type guessed from the name."""
        guessed, _ = mimetypes.guess_type(path.name)
        return cls(path.name, path.read_bytes(), guessed or "application/octet-stream")


class Channel(ABC):
    """One destination. `name` identifies it in routing, logs and rate limits."""

    name: str

    @abstractmethod
    async def deliver(self, alert: Alert) -> None:
        """Send `alert`; raise on failure."""

    async def deliver_report(self, alert: Alert, attachments: Sequence[Attachment]) -> None:
        """Send a report; channels that cannot carry files send the alert alone."""
        await self.deliver(alert)

    async def aclose(self) -> None:  # noqa: B027 - most channels hold nothing to release
        """Release resources (HTTP connections)."""


class LogChannel(Channel):
    """Writes alerts to stdlib logging at the matching level (always on; the last resort)."""

    def __init__(self, logger: logging.Logger | None = None, *, name: str = "log") -> None:
        self.name = name
        self._logger = logger or logging.getLogger("sigma.alerts")

    async def deliver(self, alert: Alert) -> None:
        """Log the alert's title with its source, dedupe key and details as fields."""
        self._logger.log(
            _LOG_LEVELS[alert.severity],
            "%s",
            alert.title,
            extra={
                "alert_source": alert.source,
                "dedupe_key": alert.dedupe_key,
                "details": dict(alert.details),
            },
        )


class HttpOptions(TypedDict, total=False):
    """Keyword options every HTTP channel accepts (see `HttpChannel`)."""

    client: httpx.AsyncClient | None
    timeout: float
    retries: int
    backoff: float


class HttpChannel(Channel):
    """Base of the channels that POST JSON: retries 5xx, 429 and transport errors with
    exponential backoff (`backoff`, 2x, 4x, ...); other statuses fail at once.

    Pass a shared `client` to pool connections between channels; otherwise the channel owns one
    and closes it in `aclose`.
    """

    def __init__(
        self,
        name: str,
        *,
        client: httpx.AsyncClient | None = None,
        timeout: float = 5.0,
        retries: int = 2,
        backoff: float = 0.5,
    ) -> None:
        self.name = name
        self.retries = retries
        self.backoff = backoff
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(timeout=timeout)

    async def _post_json(
        self, url: str, payload: Any, headers: Mapping[str, str] | None = None
    ) -> None:
        body = dumps(payload).encode()
        all_headers = {"content-type": "application/json", **(headers or {})}
        problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                response = await self._client.post(url, content=body, headers=all_headers)
            except httpx.TransportError as exc:  # timeouts, refused connections, resets
                problem = type(exc).__name__
                continue
            status = response.status_code
            if status < 300:
                return
            problem = f"HTTP {status}"
            if status != 429 and status < 500:
                raise DeliveryError(f"{self.name}: {problem}")
        raise DeliveryError(f"{self.name}: {problem} after {self.retries + 1} attempts")

    async def aclose(self) -> None:
        """Close the HTTP client if this channel created it."""
        if self._owns_client:
            await self._client.aclose()


class WebhookChannel(HttpChannel):
    """Generic webhook: POSTs `Alert.to_dict()` as JSON, with optional extra headers."""

    def __init__(
        self,
        url: str,
        *,
        name: str = "webhook",
        headers: Mapping[str, str] | None = None,
        **http: Unpack[HttpOptions],
    ) -> None:
        super().__init__(name, **http)
        self._url = url
        self._headers = dict(headers or {})

    async def deliver(self, alert: Alert) -> None:
        """POST the alert dictionary."""
        await self._post_json(self._url, alert.to_dict(), self._headers)


class SlackChannel(HttpChannel):
    """Slack incoming webhook: POSTs ``{"text": <alert.to_text(), escaped>}``."""

    def __init__(
        self, webhook_url: str, *, name: str = "slack", **http: Unpack[HttpOptions]
    ) -> None:
        super().__init__(name, **http)
        self._url = webhook_url

    async def deliver(self, alert: Alert) -> None:
        """POST the alert's text, escaped as Slack requires."""
        await self._post_json(self._url, {"text": slack_escape(alert.to_text())})


def slack_escape(text: str) -> str:
    """Escape ``&``, ``<`` and ``>``; Slack would otherwise read ``<...>`` as a link/mention."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class TelegramChannel(HttpChannel):
    """Telegram Bot API ``sendMessage``; `base_url` is configurable for tests and proxies."""

    def __init__(
        self,
        token: str,
        chat_id: str | int,
        *,
        base_url: str = "https://api.telegram.org",
        name: str = "telegram",
        **http: Unpack[HttpOptions],
    ) -> None:
        super().__init__(name, **http)
        self._url = f"{base_url.rstrip('/')}/bot{token}/sendMessage"
        self._chat_id = chat_id

    async def deliver(self, alert: Alert) -> None:
        """POST ``{"chat_id", "text", "disable_web_page_preview"}``."""
        payload = {
            "chat_id": self._chat_id,
            "text": alert.to_text()[:TELEGRAM_MAX_CHARS],
            "disable_web_page_preview": True,
        }
        await self._post_json(self._url, payload)


class EmailChannel(Channel):
    """SMTP e-mail through stdlib `smtplib`, run in a worker thread so the loop never blocks.

    `starttls` upgrades the connection before logging in; `username`/`password` are optional
    (a local relay usually needs neither).
    """

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        recipients: Sequence[str],
        *,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        timeout: float = 10.0,
        subject_prefix: str = "[SIGMA] ",
        name: str = "email",
    ) -> None:
        if not recipients:
            raise ValueError("EmailChannel needs at least one recipient")
        self.name = name
        self._host = host
        self._port = port
        self._sender = sender
        self._recipients = list(recipients)
        self._username = username
        self._password = password
        self._starttls = starttls
        self._timeout = timeout
        self._subject_prefix = subject_prefix

    @property
    def recipients(self) -> list[str]:
        """Where the e-mails go."""
        return list(self._recipients)

    def build_message(self, alert: Alert, attachments: Sequence[Attachment] = ()) -> EmailMessage:
        """The e-mail for `alert`: the title as subject, the text as body, the files attached."""
        message = EmailMessage()
        message["Subject"] = self._subject_prefix + alert.title
        message["From"] = self._sender
        message["To"] = ", ".join(self._recipients)
        message.set_content(alert.to_text())
        for item in attachments:
            main, _, sub = item.mime_type.partition("/")
            message.add_attachment(
                item.content, maintype=main, subtype=sub or "octet-stream", filename=item.filename
            )
        return message

    async def deliver(self, alert: Alert) -> None:
        """Send the e-mail in a thread."""
        await asyncio.to_thread(self._send, self.build_message(alert))

    async def deliver_report(self, alert: Alert, attachments: Sequence[Attachment]) -> None:
        """Send the e-mail with the report files attached."""
        await asyncio.to_thread(self._send, self.build_message(alert, attachments))

    def _send(self, message: EmailMessage) -> None:
        with smtplib.SMTP(self._host, self._port, timeout=self._timeout) as smtp:
            if self._starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self._username:
                smtp.login(self._username, self._password or "")
            smtp.send_message(message)


class PubSubChannel(Channel):
    """Publishes the alert JSON on the bus (channel ``alerts``) for dashboards."""

    def __init__(
        self, pubsub: PubSub, *, channel: str = CHANNEL_ALERTS, name: str = "pubsub"
    ) -> None:
        self.name = name
        self._pubsub = pubsub
        self._channel = channel

    async def deliver(self, alert: Alert) -> None:
        """Publish `Alert.to_json()` as UTF-8 bytes."""
        await self._pubsub.publish(self._channel, alert.to_json().encode())

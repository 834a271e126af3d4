"""NotificationService: dedupe, route by severity, rate-limit, deliver, record.

Every alert passed to `send` is recorded in `alert_log`, including the ones that were
suppressed: on its key's row when it has a `dedupe_key` (counted there), else on its own.
Delivery runs on all routed channels concurrently, each under its own timeout; a failing or
slow channel is logged and never affects the other channels or the caller.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sigma.notify.alert import (
    SUPPRESSED_DUPLICATE,
    SUPPRESSED_RATE_LIMITED,
    Alert,
    Severity,
    severity_rank,
)
from sigma.notify.channels import Attachment, Channel
from sigma.notify.limits import Clock, DedupeWindow, TokenBucket
from sigma.notify.store import AlertStore

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Route:
    """A channel with its minimum severity and optional rate limit."""

    channel: Channel
    min_severity: Severity = "info"
    bucket: TokenBucket | None = None
    reports_only: bool = False

    def accepts(self, alert: Alert) -> bool:
        """True when the alert is severe enough for this channel (a report-only channel takes
        no alerts)."""
        if self.reports_only:
            return False
        return severity_rank(alert.severity) >= severity_rank(self.min_severity)


@dataclass(frozen=True, slots=True)
class SendResult:
    """What happened to one alert.

    `suppressed` is ``"duplicate"`` (dedupe window) or ``"rate_limited"`` (every channel that
    would have taken it was over its rate), else None.
    """

    alert: Alert
    suppressed: str | None = None
    delivered: tuple[str, ...] = ()
    failed: dict[str, str] = field(default_factory=dict)
    rate_limited: tuple[str, ...] = ()

    def outcome(self) -> dict[str, Any]:
        """The result as a JSON-ready dictionary (stored with the alert where possible)."""
        return {
            "suppressed": self.suppressed,
            "delivered": list(self.delivered),
            "failed": dict(self.failed),
            "rate_limited": list(self.rate_limited),
        }


class NotificationService:
    """Sends alerts to channels. See the module docstring for the guarantees.

    `store` is optional so the service works before a database exists (CLI, tests).
    `dedupe_window` is in seconds; `channel_timeout` bounds each channel's delivery.
    """

    def __init__(
        self,
        *,
        store: AlertStore | None = None,
        dedupe_window: float = 300.0,
        channel_timeout: float = 10.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self._store = store
        self._dedupe = DedupeWindow(dedupe_window, clock=clock)
        self._timeout = channel_timeout
        self._clock = clock
        self._routes: dict[str, Route] = {}
        self._pending: set[asyncio.Task[SendResult]] = set()

    def add_channel(
        self,
        channel: Channel,
        *,
        min_severity: Severity = "info",
        rate_per_minute: float | None = None,
        burst: int = 5,
        reports_only: bool = False,
    ) -> None:
        """Route alerts of at least `min_severity` to `channel`, at most `burst` at once and
        `rate_per_minute` on average (no limit when None). Channel names must be unique.
        A `reports_only` channel receives only `report`s (e.g. the daily summary e-mail)."""
        severity_rank(min_severity)
        if channel.name in self._routes:
            raise ValueError(f"a channel named {channel.name!r} is already registered")
        bucket = None
        if rate_per_minute is not None:
            bucket = TokenBucket(rate_per_minute / 60.0, burst, clock=self._clock)
        self._routes[channel.name] = Route(channel, min_severity, bucket, reports_only)

    @property
    def channels(self) -> list[str]:
        """Names of the registered channels, in registration order."""
        return list(self._routes)

    async def send(self, alert: Alert) -> SendResult:
        """Dedupe, route, rate-limit and deliver `alert`, then record it. Never raises
        (except cancellation)."""
        if alert.dedupe_key is not None and self._dedupe.is_duplicate(alert.dedupe_key):
            result = SendResult(alert, suppressed=SUPPRESSED_DUPLICATE)
        else:
            result = await self._deliver(alert)
        await self._record(result)
        return result

    async def notify(
        self,
        severity: Severity,
        source: str,
        message: str,
        *,
        dedupe_key: str | None = None,
        **details: Any,
    ) -> SendResult:
        """Shortcut: build the `Alert` and `send` it."""
        alert = Alert(severity, source, message, dedupe_key=dedupe_key, details=details)
        return await self.send(alert)

    @property
    def report_channels(self) -> list[str]:
        """The channels that receive reports whatever their alert threshold."""
        return [name for name, route in self._routes.items() if route.reports_only]

    async def report(self, alert: Alert, attachments: Sequence[Attachment] = ()) -> SendResult:
        """Distribute a scheduled report: to every report-only channel whatever the alert's
        severity, with `attachments` where the channel carries files (e-mail), and to the
        ordinary channels whose threshold the alert meets. No dedupe or rate limit: a report is
        asked for explicitly. Recorded in `alert_log` like an alert. Never raises."""
        explicit = [r for r in self._routes.values() if r.reports_only]
        routed = [r for r in self._routes.values() if r.accepts(alert)]
        errors = await asyncio.gather(
            *(self._deliver_one(r.channel, alert, attachments) for r in explicit),
            *(self._deliver_one(r.channel, alert) for r in routed),
        )
        targets = [*explicit, *routed]
        failed = {r.channel.name: e for r, e in zip(targets, errors, strict=True) if e}
        delivered = tuple(r.channel.name for r in targets if r.channel.name not in failed)
        result = SendResult(alert, None, delivered, failed)
        await self._record(result)
        return result

    def submit(self, alert: Alert) -> asyncio.Task[SendResult]:
        """Send in the background (for hot paths); `aclose` waits for pending sends.
        Must be called from the event loop's thread."""
        task = asyncio.get_running_loop().create_task(self.send(alert))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return task

    async def aclose(self) -> None:
        """Wait for background sends, then close every channel."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        for route in self._routes.values():
            try:
                await route.channel.aclose()
            except Exception:
                log.exception("closing alert channel %s failed", route.channel.name)

    async def _deliver(self, alert: Alert) -> SendResult:
        routed = [route for route in self._routes.values() if route.accepts(alert)]
        allowed: list[Route] = []
        limited: list[str] = []
        for route in routed:
            if route.bucket is None or route.bucket.try_take():
                allowed.append(route)
            else:
                limited.append(route.channel.name)
        errors = await asyncio.gather(*(self._deliver_one(r.channel, alert) for r in allowed))
        failed = {r.channel.name: e for r, e in zip(allowed, errors, strict=True) if e}
        delivered = tuple(r.channel.name for r in allowed if r.channel.name not in failed)
        suppressed = SUPPRESSED_RATE_LIMITED if routed and not allowed else None
        return SendResult(alert, suppressed, delivered, failed, tuple(limited))

    async def _deliver_one(
        self, channel: Channel, alert: Alert, attachments: Sequence[Attachment] | None = None
    ) -> str | None:
        """Deliver on one channel (as a report when `attachments` is given); the error text on
        failure, None on success."""
        try:
            sending = (
                channel.deliver(alert)
                if attachments is None
                else channel.deliver_report(alert, attachments)
            )
            await asyncio.wait_for(sending, self._timeout)
        except TimeoutError:
            error = f"timed out after {self._timeout:g}s"
        except Exception as exc:
            error = str(exc) or type(exc).__name__
        else:
            return None
        log.warning(
            "alert delivery failed",
            extra={"channel": channel.name, "error": error, "dedupe_key": alert.dedupe_key},
        )
        return error

    async def _record(self, result: SendResult) -> None:
        if self._store is None:
            return
        try:
            await asyncio.to_thread(
                self._store.record,
                result.alert,
                suppressed=result.suppressed,
                outcome=result.outcome(),
            )
        except Exception:
            # The database being down must not stop alerts; the log still has them.
            log.exception("recording alert in alert_log failed")

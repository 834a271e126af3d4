from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from notify_helpers import FakeClock, HttpSink
from sqlalchemy import Boolean, Integer, String, Text, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from sigma.notify import (
    Alert,
    AlertStore,
    Attachment,
    Channel,
    NotificationService,
    SlackChannel,
    WebhookChannel,
)
from sigma.store.models import AlertLog
from sigma.store.types import JsonDoc


class Recorder(Channel):
    """A channel that remembers what it got, or fails/hangs on demand."""

    def __init__(self, name: str, *, fail: bool = False, hang: bool = False) -> None:
        self.name = name
        self.fail = fail
        self.hang = hang
        self.got: list[str] = []
        self.closed = False

    async def deliver(self, alert: Alert) -> None:
        if self.hang:
            await asyncio.sleep(10)
        if self.fail:
            raise RuntimeError("boom")
        self.got.append(alert.message)

    async def aclose(self) -> None:
        self.closed = True
        if self.fail:
            raise RuntimeError("close failed")


MINUTE = timedelta(minutes=1)


def rows(db: sessionmaker[Session]) -> list[AlertLog]:
    with db() as session:
        return list(session.scalars(select(AlertLog).order_by(AlertLog.id)))


async def test_dedupe_within_window_and_every_alert_counted_on_its_key(
    db: sessionmaker[Session], clock: FakeClock
) -> None:
    service = NotificationService(store=AlertStore(db), dedupe_window=60, clock=clock)
    chan = Recorder("rec")
    service.add_channel(chan)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    first = await service.send(Alert("warning", "feed", "stale", dedupe_key="stale:BTC", ts=start))
    clock.now += 59
    second = await service.send(
        Alert("error", "feed", "stale again", dedupe_key="stale:BTC", ts=start + MINUTE)
    )
    other = await service.send(Alert("error", "feed", "other key", dedupe_key="stale:ETH"))
    clock.now += 2  # the window counts from the first delivery, not from the repeats
    third = await service.send(
        Alert("error", "feed", "still stale", dedupe_key="stale:BTC", ts=start + 2 * MINUTE)
    )
    assert (first.suppressed, second.suppressed, third.suppressed) == (None, "duplicate", None)
    assert second.delivered == ()
    assert other.delivered == ("rec",)
    assert chan.got == ["stale", "other key", "still stale"]
    stored = rows(db)
    # One row per key: first and last sighting, how often, the latest message and severity.
    assert [
        (r.severity, r.source, r.message, r.dedupe_key, r.seen, r.ts, r.last_seen) for r in stored
    ] == [
        ("error", "feed", "still stale", "stale:BTC", 3, start, start + 2 * MINUTE),
        ("error", "feed", "other key", "stale:ETH", 1, stored[1].ts, stored[1].ts),
    ]
    assert all(r.ts.tzinfo is not None for r in stored)


async def test_alerts_without_key_get_a_row_each(db: sessionmaker[Session]) -> None:
    service = NotificationService(store=AlertStore(db))
    for _ in range(2):
        await service.send(Alert("info", "job", "done"))
    assert [(r.message, r.seen, r.dedupe_key) for r in rows(db)] == [
        ("done", 1, None),
        ("done", 1, None),
    ]


async def test_alerts_without_key_are_never_deduped() -> None:
    service = NotificationService()
    chan = Recorder("rec")
    service.add_channel(chan)
    for _ in range(3):
        await service.notify("info", "x", "same", n=1)
    assert chan.got == ["same"] * 3


async def test_rate_limit_per_channel_token_bucket(
    http_sink: HttpSink, db: sessionmaker[Session], clock: FakeClock
) -> None:
    service = NotificationService(store=AlertStore(db), clock=clock)
    log_chan = Recorder("log")
    service.add_channel(log_chan)
    service.add_channel(SlackChannel(f"{http_sink.url}/slack"), rate_per_minute=1, burst=2)
    results = [await service.notify("warning", "risk", f"m{i}") for i in range(3)]
    assert [r.delivered for r in results] == [("log", "slack"), ("log", "slack"), ("log",)]
    assert results[2].rate_limited == ("slack",)
    assert results[2].suppressed is None  # the log channel still had it
    clock.now += 60  # one token back
    refilled = await service.notify("warning", "risk", "m3")
    assert refilled.delivered == ("log", "slack")
    await service.aclose()
    assert [b["text"] for b in http_sink.bodies("/slack")] == [
        "[WARNING] risk: m0",
        "[WARNING] risk: m1",
        "[WARNING] risk: m3",
    ]
    assert log_chan.got == ["m0", "m1", "m2", "m3"]


async def test_rate_limited_everywhere_counts_as_suppressed(
    db: sessionmaker[Session], clock: FakeClock
) -> None:
    service = NotificationService(store=AlertStore(db), clock=clock)
    service.add_channel(Recorder("rec"), rate_per_minute=6, burst=1)
    await service.notify("info", "s", "a")
    limited = await service.notify("info", "s", "b")
    assert limited.suppressed == "rate_limited"
    assert [r.message for r in rows(db)] == ["a", "[suppressed: rate_limited] b"]


async def test_severity_routing(http_sink: HttpSink) -> None:
    service = NotificationService()
    log_chan = Recorder("log")
    service.add_channel(log_chan, min_severity="info")
    service.add_channel(WebhookChannel(f"{http_sink.url}/hook"), min_severity="error")
    info = await service.notify("info", "s", "fyi")
    warning = await service.notify("warning", "s", "hmm")
    critical = await service.notify("critical", "s", "down")
    await service.aclose()
    assert (info.delivered, warning.delivered) == (("log",), ("log",))
    assert critical.delivered == ("log", "webhook")
    assert [b["message"] for b in http_sink.bodies("/hook")] == ["down"]
    assert log_chan.got == ["fyi", "hmm", "down"]
    assert info.suppressed is None  # below a channel's threshold is routing, not suppression


async def test_failing_and_hanging_channels_do_not_break_others(
    db: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    service = NotificationService(store=AlertStore(db), channel_timeout=0.05)
    good = Recorder("good")
    for chan in (Recorder("broken", fail=True), Recorder("slow", hang=True), good):
        service.add_channel(chan)
    result = await service.notify("critical", "worker", "crashed")
    assert result.delivered == ("good",)
    assert result.failed == {"broken": "boom", "slow": "timed out after 0.05s"}
    assert good.got == ["crashed"]
    failures = [r for r in caplog.records if r.getMessage() == "alert delivery failed"]
    assert sorted(r.__dict__["channel"] for r in failures) == ["broken", "slow"]
    assert [r.message for r in rows(db)] == ["crashed"]
    await service.aclose()
    assert good.closed
    assert "closing alert channel broken failed" in caplog.text


async def test_store_failure_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    class BrokenStore(AlertStore):
        def __init__(self) -> None:
            pass

        def record(self, alert: Alert, *, suppressed: str | None, outcome: Any) -> None:
            raise OSError("disk full")

    service = NotificationService(store=BrokenStore())
    service.add_channel(Recorder("rec"))
    result = await service.notify("error", "s", "m")
    assert result.delivered == ("rec",)
    assert "recording alert in alert_log failed" in caplog.text


async def test_submit_runs_in_background_and_aclose_waits() -> None:
    service = NotificationService()
    chan = Recorder("rec")
    service.add_channel(chan)
    task = service.submit(Alert("warning", "risk", "rejected"))
    await service.aclose()
    assert task.done()
    assert chan.got == ["rejected"]
    assert chan.closed


def test_configuration_errors() -> None:
    service = NotificationService()
    service.add_channel(Recorder("rec"))
    assert service.channels == ["rec"]
    with pytest.raises(ValueError, match="already registered"):
        service.add_channel(Recorder("rec"))
    with pytest.raises(ValueError, match="unknown severity"):
        service.add_channel(Recorder("x"), min_severity="loud")  # type: ignore[arg-type]


class _Base(DeclarativeBase):
    pass


class RichAlertLog(_Base):
    """An alert table with the columns `alert_log` may gain: suppressed, reason, details."""

    __tablename__ = "rich_alert_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts: Mapped[Any] = mapped_column(String(40))
    severity: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)
    dedupe_key: Mapped[str | None] = mapped_column(String(200))
    suppressed: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(String(32))
    details: Mapped[dict[str, Any]] = mapped_column(JsonDoc)


def test_store_uses_suppressed_reason_and_details_columns_when_present() -> None:
    from decimal import Decimal

    store = AlertStore(sessionmaker(), RichAlertLog)
    alert = Alert("warning", "risk", "rejected", details={"qty": Decimal("2")})
    row = store.row(alert, suppressed="duplicate", outcome={"delivered": []})
    assert (row.message, row.suppressed, row.reason) == ("rejected", True, "duplicate")
    assert row.details == {"qty": "2", "_outcome": {"delivered": []}}
    plain = store.row(
        Alert("info", "s" * 70, "m", dedupe_key="k" * 300), suppressed=None, outcome={}
    )
    assert (plain.suppressed, plain.reason) == (False, None)
    assert (len(plain.source), len(plain.dedupe_key)) == (64, 200)


def test_a_table_without_a_count_gets_a_row_per_alert() -> None:
    engine = create_engine("sqlite://")
    _Base.metadata.create_all(engine)
    store = AlertStore(sessionmaker(engine), RichAlertLog)
    for suppressed in (None, "duplicate"):
        store.record(Alert("error", "feed", "stale", dedupe_key="k"), suppressed=suppressed,
                     outcome={})  # fmt: skip
    with Session(engine) as session:
        stored = session.scalars(select(RichAlertLog.reason).order_by(RichAlertLog.id)).all()
    assert stored == [None, "duplicate"]
    engine.dispose()


async def test_reports_reach_report_only_channels_whatever_the_severity(
    db: sessionmaker[Session],
) -> None:
    service = NotificationService(store=AlertStore(db), dedupe_window=300)
    log, urgent = Recorder("log"), Recorder("urgent")
    mailbox, broken = Recorder("mailbox"), Recorder("broken", fail=True)
    service.add_channel(log)
    service.add_channel(urgent, min_severity="error")
    service.add_channel(mailbox, min_severity="critical", reports_only=True)
    service.add_channel(broken, reports_only=True)
    assert service.report_channels == ["mailbox", "broken"]

    # An ordinary alert never goes to a report-only channel.
    await service.notify("critical", "risk", "breaker")
    assert mailbox.got == [] and urgent.got == ["breaker"]

    summary = Alert("info", "daily_report", "daily report", dedupe_key="daily")
    attachment = Attachment("r.pdf", b"%PDF-1.4", "application/pdf")
    result = await service.report(summary, [attachment])
    assert result.suppressed is None
    assert result.delivered == ("mailbox", "log")
    assert result.failed == {"broken": "boom"}
    assert mailbox.got == ["daily report"] and urgent.got == ["breaker"]
    # Asked for explicitly: no dedupe window applies to a second report.
    assert (await service.report(summary)).delivered == ("mailbox", "log")
    assert [(r.message, r.seen) for r in rows(db)] == [("breaker", 1), ("daily report", 2)]

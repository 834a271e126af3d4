from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sigma.notify import Alert, Channel, NotificationService
from sigma.ops.action_log import ActionLogger
from sigma.store import init_db, session_factory
from sigma.store.db import create_db_engine, migrate
from sigma.store.models import ActionLog


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = init_db(f"sqlite:///{tmp_path / 'sigma.db'}")
    yield session_factory(engine)
    engine.dispose()


def stored(db: sessionmaker[Session]) -> list[ActionLog]:
    with db() as session:
        return list(session.scalars(select(ActionLog).order_by(ActionLog.id)))


class Recorder(Channel):
    name = "rec"

    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    async def deliver(self, alert: Alert) -> None:
        self.alerts.append(alert)


def test_batches_inline_without_event_loop(db: sessionmaker[Session]) -> None:
    actions = ActionLogger(db, source="engine", mode="paper", flush_every=3)
    actions.signal("sma", "BTCUSDT", "buy", fast=10, price=Decimal("100.5"))
    actions.order_accepted("sma", "BTCUSDT", "cid-1", side="buy", qty=Decimal("0.5"))
    assert actions.pending == 2
    assert stored(db) == []  # the hot path did not touch the database
    actions.param_change("sma", {"fast": 10}, {"fast": 12}, reason="regime", changed_by="adjuster")
    assert actions.pending == 0
    rows = stored(db)
    assert [(r.action, r.source, r.mode, r.strategy, r.symbol) for r in rows] == [
        ("signal", "engine", "paper", "sma", "BTCUSDT"),
        ("order_accepted", "engine", "paper", "sma", "BTCUSDT"),
        ("param_change", "engine", "paper", "sma", None),
    ]
    assert rows[0].details == {"signal": "buy", "fast": 10, "price": "100.5"}
    assert rows[1].details == {"client_order_id": "cid-1", "side": "buy", "qty": "0.5"}
    assert rows[2].details == {
        "old": {"fast": 10},
        "new": {"fast": 12},
        "reason": "regime",
        "changed_by": "adjuster",
    }
    assert rows[0].ts.tzinfo is not None
    actions.kill_switch(True, "drawdown 10%")
    actions.close()
    assert stored(db)[-1].details == {"engaged": True, "reason": "drawdown 10%"}


async def test_background_flush_on_interval_size_and_close(db: sessionmaker[Session]) -> None:
    actions = ActionLogger(db, flush_every=2, flush_interval=0.05)
    await actions.start()
    await actions.start()  # idempotent
    actions.log("custom", note="x")
    for _ in range(100):  # the interval flush
        await asyncio.sleep(0.01)
        if stored(db):
            break
    assert [r.action for r in stored(db)] == ["custom"]
    await actions.aclose()

    slow = ActionLogger(db, flush_every=2, flush_interval=30)
    await slow.start()
    slow.log("a")
    slow.log("b")  # a full batch wakes the flusher long before the interval
    for _ in range(100):
        await asyncio.sleep(0.01)
        if len(stored(db)) == 3:
            break
    assert [r.action for r in stored(db)] == ["custom", "a", "b"]
    slow.log("c")
    await slow.aclose()  # the remainder is written on close
    assert [r.action for r in stored(db)][-1] == "c"
    await slow.aclose()  # closing twice is harmless


async def test_rejection_is_logged_stored_and_alerted(
    db: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sigma.actions")
    rec = Recorder()
    notifier = NotificationService()
    notifier.add_channel(rec)
    actions = ActionLogger(db, source="risk", notifier=notifier)
    actions.order_rejected("sma", "BTCUSDT", "max_position", qty=Decimal("2"), name="clash")
    await actions.aclose()
    await notifier.aclose()
    (row,) = stored(db)
    assert (row.action, row.details["reason"], row.details["qty"]) == (
        "order_rejected",
        "max_position",
        "2",
    )
    (alert,) = rec.alerts
    assert (alert.severity, alert.source) == ("warning", "risk")
    assert alert.message == "order rejected for sma BTCUSDT: max_position"
    assert alert.dedupe_key == "order_rejected:sma:BTCUSDT:max_position"
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    # The console line says what was refused, not only that something was.
    assert record.getMessage() == "order_rejected sma BTCUSDT 2 (max_position)"
    assert record.__dict__["action"] == "order_rejected"
    assert (record.__dict__["strategy"], record.__dict__["reason"]) == ("sma", "max_position")
    assert record.__dict__["detail_name"] == "clash"  # reserved LogRecord names are renamed


def test_rejection_without_event_loop_skips_alert(db: sessionmaker[Session]) -> None:
    notifier = NotificationService()
    actions = ActionLogger(db, notifier=notifier)
    actions.order_rejected("sma", "ETH", "stale_price")
    assert actions.flush() == 1


def test_database_errors_keep_entries_until_it_recovers(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'later.db'}")  # no tables yet
    factory = session_factory(engine)
    actions = ActionLogger(factory, flush_every=1000, max_buffer=3)
    for name in ("a", "b", "c"):
        actions.log(name)
    assert actions.flush() == 0
    assert actions.pending == 3
    actions.log("d")  # the buffer is full: the oldest entry goes
    assert actions.dropped == 1
    migrate(engine)
    assert actions.flush() == 3
    assert [r.action for r in stored(factory)] == ["b", "c", "d"]
    assert actions.flush() == 0
    engine.dispose()


def test_failed_batch_goes_back_before_newer_entries() -> None:
    def failing_factory() -> Session:
        # The hot path keeps logging while the (failing) write is in progress.
        actions.log("c")
        actions.log("d")
        raise OSError("database down")

    actions = ActionLogger(failing_factory, flush_every=1000, max_buffer=3)  # type: ignore[arg-type]
    actions.log("a")
    actions.log("b")
    assert actions.flush() == 0
    assert [e.action for e in actions._buffer] == ["b", "c", "d"]
    assert actions.dropped == 1


def test_log_only_mode_and_quiet_logger(caplog: pytest.LogCaptureFixture) -> None:
    quiet = logging.getLogger("sigma.test.quiet")
    quiet.setLevel(logging.ERROR)
    actions = ActionLogger(None, logger=quiet)
    actions.signal("sma", "X", "sell")
    actions.order_rejected("sma", "X", "no_notifier")
    assert (actions.pending, actions.flush()) == (0, 0)
    assert caplog.records == []


def test_order_and_fill_lines_name_symbol_side_quantity_and_price(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="sigma.actions")
    actions = ActionLogger(None, source="bot")
    actions.log("order_sent", strategy="sma_cross", symbol="BTC", side="buy", qty="0.5",
                ref_price="42000.1", client_order_id="c1")  # fmt: skip
    actions.log("fill", strategy="sma_cross", symbol="BTC", side="buy", qty="0.5",
                price="42001", client_order_id="c1")  # fmt: skip
    actions.log("cancel_sent", strategy="sma_cross", symbol="BTC", client_order_id="c2")
    assert [r.getMessage() for r in caplog.records] == [
        "order_sent sma_cross BTC buy 0.5 @ 42000.1",
        "fill sma_cross BTC buy 0.5 @ 42001",
        "cancel_sent sma_cross BTC",
    ]

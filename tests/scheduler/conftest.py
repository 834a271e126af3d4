"""Fixtures of the scheduler tests: sessions on the real database, an alerter that records
alerts in `alert_log` (log channel only), and a clock the test moves by hand."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from scheduler_helpers import FakeClock
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from sigma.notify.channels import LogChannel
from sigma.notify.service import NotificationService
from sigma.notify.store import AlertStore
from sigma.scheduler.tasks import Alerter
from sigma.store.db import session_factory


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


@pytest.fixture
def alerter(sessions: sessionmaker[Session]) -> Iterator[Alerter]:
    service = NotificationService(store=AlertStore(sessions), dedupe_window=0.0)
    service.add_channel(LogChannel())
    alerts = Alerter(service)
    yield alerts
    alerts.close()

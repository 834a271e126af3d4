"""User checks (deactivate idle users, keep the last admin, report right changes), log
rotation (copy-truncate, gzip, archive retention) and ConfigSync (newest version wins)."""

from __future__ import annotations

import gzip
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sigma.scheduler.maintenance import ConfigSync, check_users, rotate_logs
from sigma.store.db import session_scope
from sigma.store.models import User
from sigma.store.params import deactivate_params, set_params

NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
DAYS_90 = timedelta(days=90)


def _user(name: str, role: str, created: int, login: int | None = None) -> User:
    return User(
        username=name,
        password_hash="x",
        role=role,
        created_at=NOW - timedelta(days=created),
        last_login=None if login is None else NOW - timedelta(days=login),
    )


def test_idle_users_are_deactivated_but_not_the_last_admin(
    sessions: sessionmaker[Session],
) -> None:
    with session_scope(sessions) as session:
        session.add_all(
            [
                _user("admin", "admin", created=400, login=200),
                _user("fresh", "viewer", created=10),
                _user("idle", "trader", created=400, login=100),
                _user("never", "viewer", created=120),
                _user("recent", "trader", created=400, login=5),
            ]
        )
    with session_scope(sessions) as session:
        first = check_users(session, NOW, DAYS_90)
    assert first.deactivated == ["idle", "never"]
    assert first.changes == []
    with session_scope(sessions) as session:
        active = session.scalars(select(User.username).where(User.active)).all()
        assert sorted(active) == ["admin", "fresh", "recent"]
        recent = session.scalar(select(User).where(User.username == "recent"))
        assert recent is not None
        recent.role = "admin"
        session.add(_user("newbie", "viewer", created=0))
        gone = session.scalar(select(User).where(User.username == "never"))
        session.delete(gone)
    with session_scope(sessions) as session:
        second = check_users(session, NOW, DAYS_90)
    # With a second admin the idle one can go now.
    assert second.deactivated == ["admin"]
    assert second.changes == [
        "admin: active True -> False",
        "never: removed",
        "newbie: added as viewer",
        "recent: role trader -> admin",
    ]


def test_log_rotation(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    assert rotate_logs(logs, NOW, max_bytes=10, keep=timedelta(days=7)).rotated == []
    logs.mkdir()
    big, small = logs / "sigma.log", logs / "api.log"
    big.write_text("x" * 100)
    small.write_text("y")
    old = logs / "sigma.log.20260101T000000Z.gz"
    old.write_bytes(b"")
    stamp = (NOW - timedelta(days=30)).timestamp()
    os.utime(old, (stamp, stamp))
    result = rotate_logs(logs, NOW, max_bytes=10, keep=timedelta(days=7))
    archive = logs / "sigma.log.20260302T010000Z.gz"
    assert result.rotated == [archive]
    assert result.deleted == [old]
    assert gzip.decompress(archive.read_bytes()) == b"x" * 100
    assert big.read_text() == "" and small.read_text() == "y"


def test_config_sync_applies_newer_versions_only(sessions: sessionmaker[Session]) -> None:
    applied: list[tuple[str, str, Any, int]] = []
    sync = ConfigSync(lambda *args: applied.append(args))
    with session_scope(sessions) as session:
        set_params(session, "sma_cross", "BTC", {"fast": 5}, "test", "ops")
    with sessions() as session:
        assert sync.sync(session) == [("sma_cross", "BTC", 1)]
        assert sync.sync(session) == []
    with session_scope(sessions) as session:
        set_params(session, "sma_cross", "BTC", {"fast": 7}, "test", "ops")
        set_params(session, "rsi_reversion", "ETH", {"period": 9}, "test", "ops")
    with sessions() as session:
        assert sync.sync(session) == [("sma_cross", "BTC", 2), ("rsi_reversion", "ETH", 1)]
    with session_scope(sessions) as session:
        deactivate_params(session, "sma_cross", "BTC")
    with sessions() as session:
        assert sync.sync(session) == [("sma_cross", "BTC", 2)]
    # An instance that already applied a newer version ignores an older one.
    sync.seen[("rsi_reversion", "ETH")] = (5, True)
    with sessions() as session:
        assert sync.sync(session) == []
    assert applied[-1] == ("sma_cross", "BTC", None, 2)
    assert applied[0] == ("sma_cross", "BTC", {"fast": 5}, 1)

"""User checks (deactivate idle users, keep the last admin, report right changes), log
rotation (copy-truncate, gzip, archive retention) and ConfigSync (newest version wins)."""

from __future__ import annotations

import gzip
import os
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from sigma.config import load_settings
from sigma.scheduler.jobs import JobRuntime
from sigma.scheduler.maintenance import ConfigSync, check_users, rotate_logs
from sigma.scheduler.tasks import Alerter
from sigma.store.db import init_db, session_factory, session_scope
from sigma.store.models import User
from sigma.store.params import deactivate_params, get_active_params, set_params
from sigma.store.queries.users import active_admins
from sigma.store.settings import VersionConflict, get_settings, set_setting
from sigma.strategies import load_strategies

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


def test_edits_against_an_outdated_version_are_refused(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as session:
        assert (
            set_params(session, "sma_cross", "BTC", {"fast": 5}, "a", "alice", expected_version=0)
            == 1
        )
    # Bob and Carol both loaded version 1; Bob saves first, Carol's edit would undo his.
    with session_scope(sessions) as session:
        assert (
            set_params(session, "sma_cross", "BTC", {"fast": 6}, "b", "bob", expected_version=1)
            == 2
        )
    conflict = pytest.raises(VersionConflict, match="based on version 1, the current one is 2")
    with conflict, session_scope(sessions) as session:
        set_params(session, "sma_cross", "BTC", {"fast": 9}, "c", "carol", expected_version=1)
    with sessions() as session:
        assert get_active_params(session, "sma_cross", "BTC") == {"fast": 6}


def test_settings_are_versioned_checked_and_synced_to_every_instance(
    sessions: sessionmaker[Session],
) -> None:
    base = load_settings(max_drawdown="0.25", optimize_trials=40)
    with session_scope(sessions) as session:
        assert set_setting(session, "max_drawdown", 0.2, changed_by="ops", base=base) == 1
        assert set_setting(session, "max_drawdown", "0.2", changed_by="ops", base=base) == 1
        assert set_setting(session, "optimize_trials", 60, changed_by="ops", base=base) == 1
        for key, value, problem in (
            ("database_url", "sqlite:///x.db", "read by each process at start"),
            ("no_such_setting", 1, "unknown setting"),
            ("optimize_trials", 0, "optimize_trials: Input should be greater than or equal"),
        ):
            with pytest.raises(ValueError, match=problem):
                set_setting(session, key, value, changed_by="ops", base=base)
    with pytest.raises(VersionConflict), session_scope(sessions) as session:
        set_setting(session, "max_drawdown", 0.3, changed_by="x", base=base, expected_version=0)

    # Two running instances follow the database.
    first: dict[str, Any] = {}
    second: dict[str, Any] = {}
    syncs = [
        ConfigSync(lambda *a: None, lambda k, v, n: first.__setitem__(k, (v, n))),
        ConfigSync(lambda *a: None, lambda k, v, n: second.__setitem__(k, (v, n))),
    ]
    with sessions() as session:
        for sync in syncs:
            assert sync.sync_settings(session) == [("max_drawdown", 1), ("optimize_trials", 1)]
            assert sync.sync_settings(session) == []
    with session_scope(sessions) as session:  # two edits in a row: the newer wins everywhere
        set_setting(session, "max_drawdown", 0.15, changed_by="a", base=base)
        set_setting(session, "max_drawdown", 0.1, changed_by="b", base=base, expected_version=2)
    with sessions() as session:
        for sync in syncs:
            assert sync.sync_settings(session) == [("max_drawdown", 3)]
    assert first == second == {"max_drawdown": ("0.1", 3), "optimize_trials": (60, 1)}
    with sessions() as session:
        stored = get_settings(session)
    assert (stored["max_drawdown"].version, stored["max_drawdown"].changed_by) == (3, "b")


def test_an_instance_that_refuses_a_value_logs_it_once(
    sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    def picky(key: str, value: Any, version: int) -> None:
        raise ValueError("not here")

    with session_scope(sessions) as session:
        set_setting(session, "adaptive", False, changed_by="ops", base=load_settings())
    sync = ConfigSync(lambda *a: None, picky)
    with sessions() as session:
        assert sync.sync_settings(session) == []
        assert sync.sync_settings(session) == []
    assert caplog.text.count("setting adaptive v1 not applied: not here") == 1


def test_the_config_sync_job_updates_the_jobs_settings(
    engine: Engine, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    settings = load_settings(var_dir=tmp_path, optimize_trials=40)
    runtime = JobRuntime(settings, engine, sessions, load_strategies([]), Alerter())
    manager = runtime.task_manager()
    with session_scope(sessions) as session:
        set_setting(session, "optimize_trials", 75, changed_by="ops", base=settings)
        set_setting(session, "report_pdf", False, changed_by="ops", base=settings)
    assert manager.run("config_sync").result == 2
    assert (
        runtime.settings.research.optimize_trials == 75
        and runtime.settings.scheduler.report_pdf is False
    )
    assert manager.run("config_sync").result == 0
    with pytest.raises(ValueError, match="greater than or equal"):
        runtime.apply_setting("optimize_trials", -1, 9)
    assert runtime.settings.research.optimize_trials == 75


def test_time_rotation_of_small_logs(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "bot.log").write_text("a few lines\n")
    (logs / "idle.log").write_text("")
    day = timedelta(days=1)

    def rotate(at: datetime) -> list[str]:
        result = rotate_logs(logs, at, max_bytes=10_000, keep=timedelta(days=30), every=day)
        return [p.name for p in result.rotated]

    assert rotate(NOW) == ["bot.log.20260302T010000Z.gz"]  # never rotated: now
    (logs / "bot.log").write_text("more\n")
    assert rotate(NOW + timedelta(hours=23)) == []  # rotated less than a day ago
    assert rotate(NOW + day) == ["bot.log.20260303T010000Z.gz"]
    assert rotate(NOW + 3 * day) == []  # nothing written since: nothing to rotate
    # Without `every`, only size counts.
    (logs / "bot.log").write_text("x")
    assert rotate_logs(logs, NOW + 5 * day, max_bytes=10, keep=timedelta(days=30)).rotated == []


@pytest.mark.pg
def test_the_user_check_beside_an_admins_demotion_keeps_an_admin(pg_schema_url: str) -> None:
    """Two admins, one idle: the daily check runs while the other is being demoted through
    the API (its transaction open, the admins' rows locked as the API locks them). The check
    waits for it, then counts one admin and keeps it; counting both before, it deactivated
    the idle one and the demotion left none."""
    engine = init_db(pg_schema_url)
    sessions = session_factory(engine)
    with session_scope(sessions) as session:
        session.add_all(
            [_user("idle", "admin", created=400, login=200), _user("boss", "admin", 400, 1)]
        )
    demoting = sessions()
    active_admins(demoting, lock=True)
    boss = demoting.scalar(select(User).where(User.username == "boss"))
    assert boss is not None
    boss.role = "viewer"
    demoting.flush()

    def check() -> list[str]:
        with session_scope(sessions) as session:
            return check_users(session, NOW, DAYS_90).deactivated

    def waiting_on_a_lock() -> bool:
        with engine.connect() as conn:
            return bool(conn.scalar(text("SELECT count(*) FROM pg_locks WHERE NOT granted")))

    with ThreadPoolExecutor(1) as pool:
        checked = pool.submit(check)
        deadline = time.monotonic() + 30
        while not (checked.done() or waiting_on_a_lock()):
            assert time.monotonic() < deadline, "the check neither ended nor waited"
            time.sleep(0.01)
        demoting.commit()
        demoting.close()
        assert checked.result(timeout=30) == []
    with sessions() as session:
        assert active_admins(session) == 1
    engine.dispose()

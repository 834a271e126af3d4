"""The users query service on SQLite and PostgreSQL: lookups, the admin count, a token's
holder and login through the async Reader, and preferences merged in the caller's session."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sigma.store.auth_sessions import start_family
from sigma.store.db import session_factory
from sigma.store.models import User
from sigma.store.queries import users
from sigma.store.reader import Reader


def _user(session: Session, name: str, role: str = "viewer", active: bool = True) -> User:
    user = User(username=name, password_hash="x", role=role, active=active)
    session.add(user)
    session.flush()
    return user


def test_lookups_and_the_active_admin_count(session: Session) -> None:
    assert not users.has_users(session)
    assert users.active_admins(session) == 0
    _user(session, "zed", "admin")
    _user(session, "amy", "admin", active=False)
    _user(session, "bob")
    assert users.has_users(session)
    assert users.active_admins(session) == 1
    assert [u.username for u in users.list_users(session)] == ["amy", "bob", "zed"]
    found = users.get_user(session, "bob")
    assert found is not None and found.role == "viewer"
    assert users.get_user(session, "nobody") is None


def test_token_holder_says_whether_the_login_is_still_there(
    engine: Engine, session: Session
) -> None:
    user = _user(session, "ann", "trader")
    family = start_family(session, user.id, datetime.now(UTC) + timedelta(days=1))
    session.commit()
    reader = Reader(lambda: engine)

    async def holders() -> list[object]:
        try:
            return [
                await users.token_holder(reader, "ann", family.id),
                await users.token_holder(reader, "ann", "gone"),
                await users.token_holder(reader, "nobody", family.id),
            ]
        finally:
            await reader.close()

    live, gone, nobody = asyncio.run(holders())
    assert tuple(live) == ("trader", True, 0, family.id, None)  # type: ignore[arg-type]
    assert tuple(gone) == ("trader", True, 0, None, None)  # type: ignore[arg-type]
    assert nobody is None


def test_prefs_merge_adds_changes_and_removes(session: Session) -> None:
    user = _user(session, "ann")
    assert users.prefs(session, user.id) == {}
    merged = users.merge_prefs(session, user.id, {"theme": "dark", "cash": 10, "gone": None})
    assert merged == {"theme": "dark", "cash": 10}
    session.flush()
    again = users.merge_prefs(session, user.id, {"theme": None, "cash": {"n": 2}, "new": [1]})
    assert again == {"cash": {"n": 2}, "new": [1]}
    session.flush()
    assert users.prefs(session, user.id) == {"cash": {"n": 2}, "new": [1]}


def test_the_database_refuses_a_name_taken_in_another_case(engine: Engine) -> None:
    # The unique index on lower(username), not only the API's check: a write that skips the
    # check (a concurrent creation, another tool) cannot make "Admin" beside "admin".
    with session_factory(engine)() as session:
        _user(session, "admin")
        session.commit()
    with session_factory(engine)() as session:
        session.add(User(username="Admin", password_hash="x"))
        with pytest.raises(IntegrityError):
            session.flush()
        session.rollback()
        assert [u.username for u in users.list_users(session)] == ["admin"]


def test_add_user_names_the_user_whose_name_is_taken(session: Session) -> None:
    users.add_user(session, "Admin", "x", "admin")
    with pytest.raises(users.UserExistsError, match="user 'Admin' already exists"):
        users.add_user(session, "ADMIN", "y", "viewer")
    assert [u.username for u in users.list_users(session)] == ["Admin"]


def test_add_user_turns_a_concurrent_creation_into_user_exists(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The other creation commits between this one's check and its insert: the index decides,
    # and the session stays usable (only the insert's savepoint is rolled back).
    with session_factory(engine)() as session:
        _user(session, "admin")
        session.commit()
    monkeypatch.setattr(users, "_taken_name", lambda session, username: None)
    with session_factory(engine)() as session:
        kept = _user(session, "kept")
        with pytest.raises(users.UserExistsError, match="user 'ADMIN' already exists"):
            users.add_user(session, "ADMIN", "y", "viewer")
        session.commit()
        assert session.get(User, kept.id) is not None
    with session_factory(engine)() as session:
        assert [u.username for u in users.list_users(session)] == ["admin", "kept"]

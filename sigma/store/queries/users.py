"""Users, their logins' revocation state and their preferences."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import and_, bindparam, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sigma.store.jsonsafe import to_jsonable
from sigma.store.models import AuthSession, User, UserPref
from sigma.store.reader import Reader


def get_user(session: Session, username: str) -> User | None:
    """The user called `username`, or None."""
    return session.scalar(select(User).where(User.username == username))


class UserExistsError(ValueError):
    """A user with that name, in some case, already exists."""


def _taken_name(session: Session, username: str) -> str | None:
    """The name of the user whose name is `username` in some case, or None."""
    same = func.lower(User.username) == username.lower()
    return session.scalar(select(User.username).where(same))


def add_user(session: Session, username: str, password_hash: str, role: str) -> User:
    """Add a user (the caller commits). UserExistsError when the name is taken in any case:
    seen beforehand, or refused by the unique index on lower(username) when another creation
    got there first (only this insert is undone; the session stays usable)."""
    taken = _taken_name(session, username)
    if taken is not None:
        raise UserExistsError(f"user {taken!r} already exists")
    user = User(username=username, password_hash=password_hash, role=role)
    try:
        with session.begin_nested():
            session.add(user)
    except IntegrityError:
        raise UserExistsError(f"user {username!r} already exists") from None
    return user


def list_users(session: Session) -> list[User]:
    """Every user, by name."""
    return list(session.scalars(select(User).order_by(User.username)))


def has_users(session: Session) -> bool:
    """Whether any user exists."""
    return bool(session.scalar(select(func.count()).select_from(User)))


def active_admins(session: Session, *, lock: bool = False) -> int:
    """How many active users have the admin role. With `lock` their rows stay locked until
    the caller's transaction ends (`FOR UPDATE`; SQLite's writers hold the whole database
    anyway): a concurrent change of an admin counted here waits for it, and one waiting here
    counts what that change committed."""
    if lock:
        ids = select(User.id).where(User.role == "admin", User.active.is_(True))
        return len(session.scalars(ids.with_for_update()).all())
    admins = select(func.count()).select_from(User).where(User.role == "admin")
    return int(session.scalar(admins.where(User.active.is_(True))) or 0)


# Built once with bound parameters: no statement construction or cache-key work per request.
# The user's role, active flag and token version, and the token's login (family) if it is
# still there: one round trip answers whether the token was revoked.
_TOKEN_HOLDER = (
    select(User.role, User.active, User.token_version, AuthSession.id, AuthSession.revoked_at)
    .select_from(User)
    .outerjoin(
        AuthSession,
        and_(AuthSession.id == bindparam("family"), AuthSession.user_id == User.id),
    )
    .where(User.username == bindparam("username"))
)


async def token_holder(reader: Reader, username: str, family: str) -> Sequence[Any] | None:
    """(role, active, token version, login id or None, when the login was revoked or None)
    of `username` and its login `family`; None when there is no such user."""
    return await reader.first(_TOKEN_HOLDER, {"username": username, "family": family})


def _pref_rows(session: Session, user_id: int) -> dict[str, UserPref]:
    return {p.key: p for p in session.scalars(select(UserPref).where(UserPref.user_id == user_id))}


def prefs(session: Session, user_id: int) -> dict[str, Any]:
    """The user's preferences as `{key: value}`."""
    return {key: pref.value for key, pref in _pref_rows(session, user_id).items()}


def merge_prefs(session: Session, user_id: int, changes: Mapping[str, Any]) -> dict[str, Any]:
    """Merge `changes` into the user's preferences (a None value removes the key), in the
    session (the caller commits, or rolls back when it refuses the result); returns them all."""
    current = _pref_rows(session, user_id)
    for key, value in changes.items():
        if value is None:
            if key in current:
                session.delete(current.pop(key))
        elif key in current:
            current[key].value = to_jsonable(value)
        else:
            current[key] = UserPref(user_id=user_id, key=key, value=to_jsonable(value))
            session.add(current[key])
    return {key: pref.value for key, pref in current.items()}

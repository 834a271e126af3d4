"""Users: creation, login, and the first `admin` of a fresh installation (the lookups are the
store's, `sigma.store.queries.users`)."""

from __future__ import annotations

import logging
import re
import secrets
from datetime import UTC, datetime

from sigma.api.auth import dummy_hash, hash_password, parse_role, verify_password
from sigma.config.groups import ApiSettings
from sigma.store.db import session_scope
from sigma.store.models import User
from sigma.store.queries import Session, SessionFactory
from sigma.store.queries.users import add_user, get_user, has_users

log = logging.getLogger(__name__)

MAX_USERNAME_CHARS = 64
USERNAME_RE = re.compile(rf"^[A-Za-z0-9_.@-]{{1,{MAX_USERNAME_CHARS}}}$")


def create_user(
    session: Session, username: str, password: str, role: str, *, rounds: int = 12
) -> User:
    """Add a user (the caller commits). ValueError names the bad field; UserExistsError when
    the name is taken in any case."""
    if not USERNAME_RE.fullmatch(username):
        raise ValueError("username must be 1-64 characters of letters, digits, _ . @ -")
    checked_role = parse_role(role)
    return add_user(session, username, hash_password(password, rounds), checked_role)


def authenticate(
    session: Session, username: str, password: str, *, rounds: int = 12
) -> User | None:
    """The active user whose password matches (its `last_login` updated), else None.

    An unknown username is checked against a dummy hash of work factor `rounds` (that of
    the stored hashes), so it takes as long as a wrong password of a real user."""
    user = get_user(session, username)
    if user is None:
        verify_password(password, dummy_hash(rounds))
        return None
    if not verify_password(password, user.password_hash) or not user.active:
        return None
    user.last_login = datetime.now(UTC)
    session.flush()
    return user


def ensure_admin(sessions: SessionFactory, settings: ApiSettings) -> str | None:
    """Create `admin` when there are no users yet. Its password is `SIGMA_ADMIN_PASSWORD`, or
    a random one, which is returned so `sigma up` can print it once; None otherwise (users
    exist, or the operator chose the password: a secret they supplied is never echoed)."""
    with session_scope(sessions) as session:
        if has_users(session):
            return None
        given = settings.admin_password
        password = given.get_secret_value() if given is not None else secrets.token_urlsafe(12)
        create_user(session, "admin", password, "admin", rounds=settings.bcrypt_rounds)
    if given is not None:
        log.info("created the first user 'admin' with the password of SIGMA_ADMIN_PASSWORD")
        return None
    log.info("created the first user 'admin' with a random password")
    return password

"""Token families and revocation (`auth_sessions`, `users.token_version`).

A login starts a family whose current refresh token is `refresh_jti`. A refresh swaps it for
a new one; presenting an earlier token of the family means it was copied, so the family is
revoked (both holders must log in again). `revoke_user_tokens` ends every family of a user
and raises the user's token version, which every token carries: all earlier tokens fail.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from sigma.store.models import AuthSession, User

__all__ = ["RefreshRefused", "new_token_id", "revoke_user_tokens", "rotate_refresh", "start_family"]


class RefreshRefused(Exception):
    """A refresh token that is no longer good; `detail` says why (safe to show)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def new_token_id() -> str:
    """A random id for a family or a refresh token (32 hex characters)."""
    return secrets.token_hex(16)


def start_family(session: Session, user_id: int, expires_at: datetime) -> AuthSession:
    """A new family for a login of `user_id` (the caller commits). The user's expired or
    revoked families are deleted on the way, so the table holds about one row per session."""
    now = datetime.now(UTC)
    session.execute(
        delete(AuthSession).where(
            AuthSession.user_id == user_id,
            or_(AuthSession.expires_at <= now, AuthSession.revoked_at.is_not(None)),
        )
    )
    family = AuthSession(
        id=new_token_id(),
        user_id=user_id,
        refresh_jti=new_token_id(),
        created_at=now,
        expires_at=expires_at,
    )
    session.add(family)
    session.flush()
    return family


def rotate_refresh(
    session: Session, user_id: int, family_id: str, jti: str, expires_at: datetime
) -> str:
    """Replace the family's current refresh token `jti` with a new one (returned; the caller
    commits). RefreshRefused when the family is unknown, revoked or of another user, or when
    `jti` is not the current token - a reuse, which revokes the family and is committed here
    so the rollback of the refused request cannot undo it.

    The swap is one conditional UPDATE, so of two requests racing with the same token only
    one wins (the other counts as a reuse)."""
    fresh = new_token_id()
    swapped = session.execute(
        update(AuthSession)
        .where(
            AuthSession.id == family_id,
            AuthSession.user_id == user_id,
            AuthSession.refresh_jti == jti,
            AuthSession.revoked_at.is_(None),
        )
        .values(refresh_jti=fresh, expires_at=expires_at)
        .execution_options(synchronize_session=False)
    )
    if swapped.rowcount == 1:  # type: ignore[attr-defined]
        return fresh
    family = session.scalar(
        select(AuthSession).where(AuthSession.id == family_id, AuthSession.user_id == user_id)
    )
    if family is None or family.revoked_at is not None:
        raise RefreshRefused("refresh token revoked: log in again")
    family.revoked_at = datetime.now(UTC)
    session.commit()
    raise RefreshRefused("refresh token already used: this session is revoked, log in again")


def revoke_user_tokens(session: Session, user: User) -> None:
    """Invalidate every access and refresh token `user` holds (the caller commits): its token
    version goes up (in SQL, so two concurrent revocations both count) and its families go."""
    session.execute(
        update(User)
        .where(User.id == user.id)
        .values(token_version=User.token_version + 1)
        .execution_options(synchronize_session=False)
    )
    session.execute(delete(AuthSession).where(AuthSession.user_id == user.id))
    session.refresh(user, ["token_version"])

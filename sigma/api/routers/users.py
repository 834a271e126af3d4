"""User management (admins only)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from sigma.api.auth import Role, check_password_rules, hash_password
from sigma.api.context import Admin, Ctx, Db
from sigma.api.errors import error_responses
from sigma.api.users import create_user
from sigma.store.auth_sessions import revoke_user_tokens
from sigma.store.models import User
from sigma.store.queries.users import UserExistsError, active_admins, get_user, list_users

router = APIRouter(prefix="/api/users", tags=["users"])


class UserOut(BaseModel):
    """A user (never the password hash)."""

    username: str
    role: str
    active: bool
    created_at: datetime
    last_login: datetime | None


class UserIn(BaseModel):
    """A new user."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(pattern=r"^[A-Za-z0-9_.@-]{1,64}$")
    password: str = Field(min_length=8, max_length=72)
    role: Role = "viewer"


class UserPatch(BaseModel):
    """Changes to a user; omitted fields stay."""

    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    active: StrictBool | None = None
    password: str | None = Field(default=None, min_length=8, max_length=72)


def _out(user: User) -> UserOut:
    return UserOut(
        username=user.username,
        role=user.role,
        active=user.active,
        created_at=user.created_at,
        last_login=user.last_login,
    )


@router.get("", response_model=list[UserOut])
def users(session: Db, _: Admin) -> list[UserOut]:
    """Every user."""
    return [_out(u) for u in list_users(session)]


@router.post("", response_model=UserOut, status_code=201, responses=error_responses(409))
def add_user(body: UserIn, ctx: Ctx, session: Db, _: Admin) -> UserOut:
    """Create a user; 409 when the name is taken."""
    try:
        user = create_user(
            session,
            body.username,
            body.password,
            body.role,
            rounds=ctx.deps.settings.api.bcrypt_rounds,
        )
    except UserExistsError as exc:
        raise HTTPException(409, detail=f"body.username: {exc}") from None
    except ValueError as exc:  # password rules beyond the length checks (UTF-8 bytes)
        raise HTTPException(422, detail=f"body.password: {exc}") from None
    session.commit()
    return _out(user)


@router.patch("/{username}", response_model=UserOut, responses=error_responses(409))
def change_user(username: str, body: UserPatch, ctx: Ctx, session: Db, _: Admin) -> UserOut:
    """Change a user's role, active flag or password. A new password or role, or disabling,
    revokes every token the user holds (they log in again). The last active admin cannot be
    demoted or disabled (409): nobody could manage users any more."""
    # Counted (and locked) before the user is read: two admins demoting each other at once
    # would otherwise both count two admins and both succeed, leaving none.
    admins = active_admins(session, lock=True)
    user = get_user(session, username)
    if user is None:
        raise HTTPException(404, detail=f"user {username!r} not found")
    loses_admin = (
        user.role == "admin"
        and user.active
        and ((body.role is not None and body.role != "admin") or body.active is False)
    )
    if loses_admin and admins == 1:
        raise HTTPException(409, detail=f"user {username!r} is the last active admin")
    if body.password is not None:
        try:
            check_password_rules(body.password)
        except ValueError as exc:
            raise HTTPException(422, detail=f"body.password: {exc}") from None
        user.password_hash = hash_password(body.password, ctx.deps.settings.api.bcrypt_rounds)
    revoke = (
        body.password is not None
        or (body.role is not None and body.role != user.role)
        or (body.active is False and user.active)
    )
    if body.role is not None:
        user.role = body.role
    if body.active is not None:
        user.active = body.active
    if revoke:
        revoke_user_tokens(session, user)
    session.commit()
    return _out(user)

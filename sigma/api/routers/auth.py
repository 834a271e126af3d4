"""Login (OAuth2 password flow), token refresh, the caller's profile and preferences."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field
from sqlalchemy import select

from sigma.api.auth import AuthError
from sigma.api.context import Ctx, Db, Viewer, note_for_log, unauthorized
from sigma.api.users import authenticate, get_user
from sigma.store.jsonsafe import to_jsonable
from sigma.store.models import User, UserPref

router = APIRouter(prefix="/api", tags=["auth"])
# One address may fail this many times the per-user limit (several users behind one NAT).
ADDRESS_FACTOR = 10


class TokenOut(BaseModel):
    """A fresh access token (and a refresh token to renew it)."""

    access_token: str
    token_type: str = "bearer"
    role: str
    expires_at: datetime
    refresh_token: str
    refresh_expires_at: datetime


class RefreshIn(BaseModel):
    """A refresh token from a previous login."""

    refresh_token: str = Field(min_length=1)


class Me(BaseModel):
    """The caller."""

    username: str
    role: str


def _tokens(ctx: Ctx, user: User) -> TokenOut:
    access, expires = ctx.tokens.issue(user.username, user.role, "access")
    refresh, refresh_expires = ctx.tokens.issue(user.username, user.role, "refresh")
    return TokenOut(
        access_token=access,
        role=user.role,
        expires_at=expires,
        refresh_token=refresh,
        refresh_expires_at=refresh_expires,
    )


@router.post("/auth/token", response_model=TokenOut)
def login(
    request: Request,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    ctx: Ctx,
    session: Db,
) -> TokenOut:
    """Exchange username and password for tokens. Repeated failures for one user from one
    address, or many failures from one address, are refused with 429 for a while."""
    client = request.client.host if request.client else "-"
    key, address = f"user|{form.username}|{client}", f"address|{client}"
    throttle = ctx.throttle
    per_address = throttle.max_failures * ADDRESS_FACTOR
    for what, wait in (
        (f"for {form.username!r}", throttle.retry_after(key)),
        (f"from {client}", throttle.retry_after(address, per_address)),
    ):
        if wait is not None:
            raise HTTPException(
                429,
                detail=f"too many failed logins {what}; retry in {math.ceil(wait)} s",
                headers={"Retry-After": str(math.ceil(wait))},
            )
    user = authenticate(session, form.username, form.password)
    if user is None:
        throttle.failed(key)
        throttle.failed(address)
        raise unauthorized("wrong username or password")
    session.commit()
    ctx.throttle.succeeded(key)
    note_for_log(request, user=user.username)
    return _tokens(ctx, user)


@router.post("/auth/refresh", response_model=TokenOut)
def refresh(body: RefreshIn, ctx: Ctx, session: Db) -> TokenOut:
    """New tokens for a valid refresh token of a still active user."""
    try:
        claims = ctx.tokens.verify(body.refresh_token, "refresh")
    except AuthError as exc:
        raise unauthorized(exc.detail) from None
    user = get_user(session, claims.username)
    if user is None or not user.active:
        raise unauthorized(f"user {claims.username!r} no longer exists or is disabled")
    return _tokens(ctx, user)


@router.get("/me", response_model=Me)
def me(user: Viewer) -> Me:
    """Who the token belongs to."""
    return Me(username=user.username, role=user.role)


def _user_row(session: Db, username: str) -> User:
    row = get_user(session, username)
    if row is None:  # deleted between the auth check and here
        raise HTTPException(404, detail=f"user {username!r} not found")
    return row


@router.get("/me/prefs")
def get_prefs(user: Viewer, session: Db) -> dict[str, Any]:
    """The caller's preferences as `{key: value}`."""
    row = _user_row(session, user.username)
    prefs = session.scalars(select(UserPref).where(UserPref.user_id == row.id))
    return {p.key: p.value for p in prefs}


@router.put("/me/prefs")
def put_prefs(
    body: dict[Annotated[str, Field(min_length=1, max_length=64)], Any],
    user: Viewer,
    session: Db,
) -> dict[str, Any]:
    """Merge `{key: value}` into the caller's preferences (a null value removes the key);
    returns them all."""
    row = _user_row(session, user.username)
    current = {
        p.key: p for p in session.scalars(select(UserPref).where(UserPref.user_id == row.id))
    }
    for key, value in body.items():
        if value is None:
            if key in current:
                session.delete(current.pop(key))
        elif key in current:
            current[key].value = to_jsonable(value)
        else:
            current[key] = UserPref(user_id=row.id, key=key, value=to_jsonable(value))
            session.add(current[key])
    session.commit()
    return {key: pref.value for key, pref in current.items()}

"""Login (OAuth2 password flow), token refresh, the caller's profile and preferences."""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, ConfigDict, Field

from sigma.api.auth import AuthError
from sigma.api.context import Ctx, Db, Viewer, note_for_log, unauthorized
from sigma.api.errors import error_responses
from sigma.api.prefs import Prefs, check_prefs
from sigma.api.users import MAX_USERNAME_CHARS, authenticate
from sigma.store.auth_sessions import (
    RefreshRefused,
    revoke_user_tokens,
    rotate_refresh,
    start_family,
)
from sigma.store.models import User
from sigma.store.queries.users import get_user, merge_prefs, prefs

router = APIRouter(prefix="/api", tags=["auth"])
# Failed logins for one account, from any address: this many are free within the throttle's
# window, then each further try waits twice as long as the one before, up to the cap. A
# backoff, not a lock-out: someone failing on purpose delays the owner by seconds, not hours.
ACCOUNT_FREE_FAILURES = 5
ACCOUNT_BACKOFF_SECONDS = 1.0
ACCOUNT_BACKOFF_CAP_SECONDS = 60.0
# One address may fail this many times within the window before it is refused (several
# users behind one NAT share it).
ADDRESS_MAX_FAILURES = 50


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

    model_config = ConfigDict(extra="forbid")

    refresh_token: str = Field(min_length=1)


class Me(BaseModel):
    """The caller."""

    username: str
    role: str


def _tokens(ctx: Ctx, user: User, family: str, jti: str) -> TokenOut:
    """An access token and the refresh token `jti`, both of `family` and the user's current
    token version."""
    version = user.token_version
    access, expires = ctx.tokens.issue(
        user.username, user.role, "access", version=version, family=family
    )
    refresh, refresh_expires = ctx.tokens.issue(
        user.username, user.role, "refresh", version=version, family=family, jti=jti
    )
    return TokenOut(
        access_token=access,
        role=user.role,
        expires_at=expires,
        refresh_token=refresh,
        refresh_expires_at=refresh_expires,
    )


async def _each_field_once(request: Request) -> None:
    """A form field given twice is a 422, as a key twice in a JSON object is: which value
    counts would be the parser's choice (the last), where a proxy or a log may read the first."""
    form = await request.form()
    for name in dict.fromkeys(form.keys()):
        if len(form.getlist(name)) > 1:
            raise HTTPException(422, detail=f"body.{name}: given more than once")


@router.post(
    "/auth/token",
    response_model=TokenOut,
    responses=error_responses(401, 429),
    dependencies=[Depends(_each_field_once)],
)
def login(
    request: Request,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    ctx: Ctx,
    session: Db,
) -> TokenOut:
    """Exchange username and password for tokens (and start a refresh-token family).

    Failed logins slow down per account, from whatever address (exponential backoff after a
    few), and an address with many failures is refused for a while: both answer 429 with
    Retry-After. The address is the peer's, or the forwarded one when the peer is a proxy
    listed in SIGMA_API_TRUSTED_PROXIES."""
    if len(form.username) > MAX_USERNAME_CHARS:
        # No account has such a name; refused before the throttle keeps it as a key, so a
        # flood of megabyte names cannot fill the memory (the throttle bounds keys, not bytes).
        raise HTTPException(422, detail=f"body.username: at most {MAX_USERNAME_CHARS} characters")
    client = request.client.host if request.client else "-"
    account, address = f"account|{form.username}", f"address|{client}"
    throttle = ctx.throttle
    with throttle.lock:
        for what, wait in (
            (
                f"for {form.username!r}",
                throttle.backoff(
                    account,
                    ACCOUNT_FREE_FAILURES,
                    ACCOUNT_BACKOFF_SECONDS,
                    ACCOUNT_BACKOFF_CAP_SECONDS,
                ),
            ),
            (f"from {client}", throttle.retry_after(address, ADDRESS_MAX_FAILURES)),
        ):
            if wait is not None:
                raise HTTPException(
                    429,
                    detail=f"too many failed logins {what}; retry in {math.ceil(wait)} s",
                    headers={"Retry-After": str(math.ceil(wait))},
                )
        # Counted as failed before the password is checked, and forgiven if it matches:
        # counted only after, any number of concurrent guesses would pass the checks above
        # while the first of them was still being checked.
        throttle.failed(account)
        throttle.failed(address)
    rounds = ctx.deps.settings.api.bcrypt_rounds
    try:
        user = authenticate(session, form.username, form.password, rounds=rounds)
        if user is not None:
            family = start_family(session, user.id, ctx.tokens.expiry("refresh"))
            session.commit()
    except BaseException:
        # No verdict on the password (the database away, the request cancelled): the try
        # is taken back, or an outage's retries would lock the account and its address out.
        throttle.forgive(account)
        throttle.forgive(address)
        raise
    if user is None:
        raise unauthorized("wrong username or password")
    throttle.succeeded(account)
    throttle.forgive(address)
    note_for_log(request, user=user.username)
    return _tokens(ctx, user, family.id, family.refresh_jti)


@router.post("/auth/refresh", response_model=TokenOut, responses=error_responses(401))
def refresh(body: RefreshIn, ctx: Ctx, session: Db) -> TokenOut:
    """New tokens for the current refresh token of a login of a still active user. Each
    refresh token is good once: presenting one again revokes its whole login (401)."""
    try:
        claims = ctx.tokens.verify(body.refresh_token, "refresh")
    except AuthError as exc:
        raise unauthorized(exc.detail) from None
    user = get_user(session, claims.username)
    if user is None or not user.active:
        raise unauthorized(f"user {claims.username!r} no longer exists or is disabled")
    if claims.version != user.token_version:
        raise unauthorized("refresh token revoked: log in again")
    try:
        jti = rotate_refresh(
            session, user.id, claims.family, claims.jti, ctx.tokens.expiry("refresh")
        )
    except RefreshRefused as exc:
        raise unauthorized(exc.detail) from None
    session.commit()
    return _tokens(ctx, user, claims.family, jti)


@router.post("/auth/logout", status_code=204)
def logout(user: Viewer, session: Db) -> Response:
    """Revoke every access and refresh token of the caller (all their logins)."""
    row = _user_row(session, user.username)
    revoke_user_tokens(session, row)
    session.commit()
    return Response(status_code=204)


@router.get("/me", response_model=Me)
def me(user: Viewer) -> Me:
    """Who the token belongs to."""
    return Me(username=user.username, role=user.role)


def _user_row(session: Db, username: str) -> User:
    row = get_user(session, username)
    if row is None:  # deleted between the auth check and here
        raise HTTPException(404, detail=f"user {username!r} not found")
    return row


# The preferences are answered as stored (`Prefs` documents them): a model would put its own
# keys first and fill in the ones a user never set.
@router.get("/me/prefs", response_model=Prefs)
def get_prefs(user: Viewer, session: Db) -> JSONResponse:
    """The caller's preferences as `{key: value}`."""
    return JSONResponse(prefs(session, _user_row(session, user.username).id))


@router.put("/me/prefs", response_model=Prefs)
def put_prefs(
    body: dict[Annotated[str, Field(min_length=1, max_length=64)], Any],
    user: Viewer,
    ctx: Ctx,
    session: Db,
) -> JSONResponse:
    """Merge `{key: value}` into the caller's preferences (a null value removes the key);
    returns them all. 422 when a key of fixed form (`Prefs`) gets another shape, or when the
    result would hold more keys or JSON bytes than SIGMA_API_PREFS_MAX_KEYS /
    SIGMA_API_PREFS_MAX_BYTES allow."""
    settings = ctx.deps.settings
    stored = merge_prefs(session, _user_row(session, user.username).id, body)
    check_prefs(stored)
    if len(stored) > settings.api.api_prefs_max_keys:
        raise HTTPException(
            422,
            detail=f"body: at most {settings.api.api_prefs_max_keys} preferences per user "
            f"(this would make {len(stored)})",
        )
    size = len(json.dumps(stored, separators=(",", ":")).encode())
    if size > settings.api.api_prefs_max_bytes:
        raise HTTPException(
            422,
            detail=f"body: preferences may take at most {settings.api.api_prefs_max_bytes} "
            f"bytes of JSON per user (this would make {size})",
        )
    session.commit()
    return JSONResponse(stored)

"""What every route needs: the handles the API was given, a database session, the calling user.

`ApiContext` lives on `FastAPI.state.ctx`. `Db` sessions are synchronous (FastAPI runs those
dependencies in its thread pool); the caller's identity is checked with the async `Reader`,
which spares each request a thread-pool round trip on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.security import OAuth2PasswordBearer
from pydantic import AfterValidator
from starlette.requests import HTTPConnection

from sigma.api.auth import (
    AuthError,
    LoginThrottle,
    Role,
    TokenService,
    VerifiedTokens,
    role_allows,
)
from sigma.api.deps import ApiDeps
from sigma.api.jobs import JobRunner
from sigma.api.numbers import ASCII_DIGITS
from sigma.bus.base import PubSub
from sigma.domain.money import utc
from sigma.ops.components import ComponentBoard
from sigma.ops.metrics import Metrics
from sigma.regime.news import NewsHandler
from sigma.scheduler.service import SchedulerService
from sigma.store.queries import Session
from sigma.store.queries.users import token_holder
from sigma.store.reader import Reader

HealthCheck = Callable[[], Awaitable[str]]
MAX_ROW_ID = 2**31 - 1
RowId = Annotated[
    int, Path(ge=1, le=MAX_ROW_ID, description="row id (an INTEGER key)"), ASCII_DIGITS
]
"""A path parameter naming a row by its integer primary key: out of the column's range is a
422, never a database error."""


def _in_utc(value: datetime) -> datetime:
    try:
        return utc(value)
    except OverflowError:  # 0001-01-01T00:00+01:00 is in the year 0 in UTC
        raise ValueError(f"{value.isoformat()} is outside the years 1-9999 in UTC") from None


Instant = Annotated[datetime, AfterValidator(_in_utc)]
"""A time in a query or body, as aware UTC (naive: taken as UTC): one whose offset moves it
outside the calendar is a 422 naming the field, never an error where it is stored or
compared."""
LOG_SCOPE_KEY = "sigma.request_log"
"""ASGI scope key of the dict where routes leave fields for the request log (the user)."""


@dataclass(slots=True)
class ApiContext:
    """The API's view of the process: its handles (`ApiDeps`), bus, metrics, tokens, login
    throttle, background jobs, async database reads, and the news handler, scheduler and
    supervised components when they run in this process."""

    deps: ApiDeps
    pubsub: PubSub
    metrics: Metrics
    tokens: TokenService
    throttle: LoginThrottle
    reader: Reader
    jobs: JobRunner = field(default_factory=JobRunner)
    news: NewsHandler | None = None
    scheduler: SchedulerService | None = None
    health_checks: dict[str, HealthCheck] = field(default_factory=dict)
    components: ComponentBoard | None = None
    verified: VerifiedTokens = field(init=False)

    def __post_init__(self) -> None:
        self.verified = VerifiedTokens(self.tokens)


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller."""

    username: str
    role: str


def get_ctx(conn: HTTPConnection) -> ApiContext:
    """The ApiContext of the running API."""
    ctx: ApiContext = conn.app.state.ctx
    return ctx


async def _ctx(conn: HTTPConnection) -> ApiContext:
    # Async: a plain `def` dependency costs a thread-pool round trip on every request.
    return get_ctx(conn)


Ctx = Annotated[ApiContext, Depends(_ctx)]


_READ_METHODS = frozenset({"GET", "HEAD"})


def db_session(ctx: Ctx, request: Request) -> Iterator[Session]:
    """A session for one request. Writers commit explicitly; anything left is rolled back.

    A GET or HEAD reads on the read-only connections (`ApiDeps.read_sessions`): on SQLite, API
    readers then never take the write lock the bot and the worker need."""
    factory = ctx.deps.read_sessions if request.method in _READ_METHODS else ctx.deps.sessions
    with factory() as session:
        yield session


Db = Annotated[Session, Depends(db_session)]

_oauth2 = OAuth2PasswordBearer(tokenUrl="/api/auth/token", auto_error=False)
_BEARER = {"WWW-Authenticate": "Bearer"}


def unauthorized(detail: str) -> HTTPException:
    """A 401 with the bearer challenge."""
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers=_BEARER)


async def principal_for(ctx: ApiContext, token: str | None) -> Principal:
    """Check an access token, that its user still exists and is active, and that the token
    was not revoked (the user's token version moved on, or its login was revoked). The role
    comes from the database on every call, so a demotion takes effect on the next request."""
    if not token:
        raise unauthorized(
            "not authenticated: send 'Authorization: Bearer <token>' "
            "(get a token from POST /api/auth/token)"
        )
    try:
        claims = ctx.verified.verify(token)
    except AuthError as exc:
        raise unauthorized(exc.detail) from None
    user = await token_holder(ctx.reader, claims.username, claims.family)
    if user is None or not user[1]:  # (role, active, version, family, family revoked at)
        raise unauthorized(f"user {claims.username!r} no longer exists or is disabled")
    if user[2] != claims.version or user[3] is None or user[4] is not None:
        raise unauthorized("token revoked: log in again")
    return Principal(claims.username, user[0])


async def signed_in(conn: HTTPConnection) -> bool:
    """True when the request carries an access token that admits its holder now, as
    `require` checks it (any role: unexpired, not revoked, its user active). While the
    database does not answer, an unexpired token this API signed is enough: `/api/health`
    must still tell a signed-in operator what is down."""
    scheme, _, token = conn.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    try:
        await principal_for(get_ctx(conn), token)
    except HTTPException:
        return False
    except Exception:  # any error of the store: the token's signature was checked first
        return True
    return True


def note_for_log(conn: HTTPConnection, **fields: Any) -> None:
    """Attach fields (e.g. the user) to the request's log line."""
    holder = conn.scope.get(LOG_SCOPE_KEY)
    if holder is not None:
        holder.update(fields)


async def current_user(request: Request, token: str | None) -> Principal:
    """The caller, from the bearer token; 401 without a valid one."""
    principal = await principal_for(get_ctx(request), token)
    note_for_log(request, user=principal.username)
    return principal


def require(role: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting callers whose role is at least `role`; 403 otherwise.

    One dependency (plus the bearer scheme, which documents the auth in OpenAPI): each level
    of nesting costs FastAPI's dependency machinery some 20 µs per request."""

    async def dependency(
        request: Request, token: Annotated[str | None, Depends(_oauth2)]
    ) -> Principal:
        user = await current_user(request, token)
        if not role_allows(user.role, role):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=f"forbidden: {request.method} {request.url.path} needs role '{role}', "
                f"user {user.username!r} has '{user.role}'",
            )
        return user

    return dependency


def admin_unless(public: Callable[[ApiContext], bool]) -> Callable[..., Awaitable[None]]:
    """A dependency letting anyone in when `public(ctx)` holds (a setting opened the route),
    else only admins (401/403 as `require`)."""
    admin = require("admin")

    async def dependency(request: Request, token: Annotated[str | None, Depends(_oauth2)]) -> None:
        if not public(get_ctx(request)):
            await admin(request, token)

    return dependency


Viewer = Annotated[Principal, Depends(require("viewer"))]
Trader = Annotated[Principal, Depends(require("trader"))]
Admin = Annotated[Principal, Depends(require("admin"))]

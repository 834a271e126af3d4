"""AuthService and PermissionsService: bcrypt password hashes, JWT tokens, roles, throttling.

Roles are ordered: `viewer` reads, `trader` also trades and changes parameters, `admin` also
manages users and the system. Every route states the least role it needs with `require`.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, cast, get_args

import bcrypt
import jwt

from sigma.config import Settings

Role = Literal["viewer", "trader", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
_RANK: dict[str, int] = {role: rank for rank, role in enumerate(ROLES)}
TokenKind = Literal["access", "refresh"]
ALGORITHM = "HS256"
SECRET_FILE = "jwt_secret"
# bcrypt only looks at the first 72 bytes; longer passwords are refused rather than truncated.
MAX_PASSWORD_BYTES = 72
MIN_PASSWORD_CHARS = 8


class AuthError(Exception):
    """A credential was refused; `detail` says why (safe to show the client)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def role_allows(role: str, needed: Role) -> bool:
    """True when `role` ranks at least as high as `needed` (unknown roles allow nothing)."""
    rank = _RANK.get(role)
    return rank is not None and rank >= _RANK[needed]


def parse_role(value: str) -> Role:
    """`value` as a Role; ValueError naming the known roles otherwise."""
    if value not in _RANK:
        raise ValueError(f"unknown role {value!r}; expected one of {', '.join(ROLES)}")
    return cast(Role, value)


def check_password_rules(password: str) -> None:
    """Raise ValueError when `password` is too short or too long for bcrypt."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise ValueError(f"password must have at least {MIN_PASSWORD_CHARS} characters")
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise ValueError(f"password must be at most {MAX_PASSWORD_BYTES} bytes (UTF-8)")


def hash_password(password: str, rounds: int = 12) -> str:
    """A bcrypt hash of `password` (checked against the password rules first)."""
    check_password_rules(password)
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()


_DUMMY_HASHES: dict[int, str] = {}


def dummy_hash(rounds: int) -> str:
    """A valid bcrypt hash with work factor `rounds`, made once per factor: checking a login
    for an unknown user against it costs what checking a real user's password costs, so the
    response time does not tell which usernames exist."""
    hashed = _DUMMY_HASHES.get(rounds)
    if hashed is None:
        hashed = bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(rounds)).decode()
        _DUMMY_HASHES[rounds] = hashed
    return hashed


def verify_password(password: str, hashed: str) -> bool:
    """True when `password` matches the bcrypt `hashed`; False for malformed input."""
    try:
        return bcrypt.checkpw(password.encode(), hashed.encode())
    except ValueError:  # over-long password or a corrupt hash
        return False


def load_jwt_secret(settings: Settings) -> str:
    """The signing secret: `SIGMA_JWT_SECRET`, else one generated once and kept (mode 0600)
    in `<var_dir>/jwt_secret`, so tokens survive restarts and no constant ships in the code."""
    if settings.api.jwt_secret is not None:
        secret = settings.api.jwt_secret.get_secret_value()
        if len(secret) < 32:
            raise ValueError("SIGMA_JWT_SECRET must have at least 32 characters")
        return secret
    path = Path(settings.process.var_dir) / SECRET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Another process (or an earlier start) made it: everyone must sign with the same one.
        secret = path.read_text(encoding="utf-8").strip()
        if not secret:
            raise ValueError(f"{path} is empty; delete it to generate a new secret") from None
        return secret
    secret = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(secret)
    return secret


@dataclass(frozen=True, slots=True)
class Claims:
    """What a verified token says."""

    username: str
    role: str
    kind: TokenKind
    expires_at: datetime
    version: int
    """The user's token version when the token was issued (`users.token_version`)."""
    family: str
    """The login (`auth_sessions.id`) the token belongs to."""
    jti: str
    """The token's own id (a refresh token's place in its family)."""


@dataclass(frozen=True, slots=True)
class TokenService:
    """Issues and verifies HS256 JWTs (access and refresh) signed with `secret`."""

    secret: str
    access_ttl: timedelta
    refresh_ttl: timedelta

    def expiry(self, kind: TokenKind, now: datetime | None = None) -> datetime:
        """When a token of `kind` issued `now` expires."""
        issued = now or datetime.now(UTC)
        return issued + (self.access_ttl if kind == "access" else self.refresh_ttl)

    def issue(
        self,
        username: str,
        role: str,
        kind: TokenKind = "access",
        *,
        version: int,
        family: str,
        jti: str | None = None,
        now: datetime | None = None,
    ) -> tuple[str, datetime]:
        """A signed token of the user's token `version` and login `family`, and its expiry
        time; `jti` (default: a random one) names a refresh token within its family."""
        issued = now or datetime.now(UTC)
        expires = self.expiry(kind, issued)
        payload = {
            "sub": username,
            "role": role,
            "typ": kind,
            "iat": issued,
            "exp": expires,
            "ver": version,
            "fam": family,
            "jti": jti or secrets.token_hex(16),
        }
        return jwt.encode(payload, self.secret, algorithm=ALGORITHM), expires

    def verify(self, token: str, kind: TokenKind = "access") -> Claims:
        """The token's claims; AuthError when it is expired, forged, malformed or of another
        kind (a refresh token is no access token)."""
        try:
            payload: dict[str, Any] = jwt.decode(
                token,
                self.secret,
                algorithms=[ALGORITHM],
                options={"require": ["sub", "exp", "typ", "ver", "fam", "jti"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired: log in again") from None
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"invalid token: {exc}") from None
        if payload["typ"] != kind:
            raise AuthError(f"invalid token: a {payload['typ']} token, expected {kind}")
        if not isinstance(payload["ver"], int):
            raise AuthError("invalid token: 'ver' is not an integer")
        return Claims(
            username=str(payload["sub"]),
            role=str(payload.get("role", "")),
            kind=kind,
            expires_at=datetime.fromtimestamp(int(payload["exp"]), UTC),
            version=payload["ver"],
            family=str(payload["fam"]),
            jti=str(payload["jti"]),
        )


@dataclass(slots=True)
class LoginThrottle:
    """Counts failed logins per key (an account, a client address) within `window` seconds.

    `retry_after` refuses a key after `max_failures` (or a given `limit`) failures until the
    oldest of them leaves the window: a lock-out, fit for an address. `backoff` only spaces
    the tries of a key out, fit for an account that others can fail on purpose. At most
    `max_keys` keys are tracked, so a flood of made-up usernames cannot grow the memory without
    bound: past it, expired keys go first, then the longest-tracked ones (the per-address limit
    keeps one client from forcing that).

    Logins run on several threads at once: every method holds `lock`, and a caller that
    checks keys and then counts an attempt holds it across both, so concurrent attempts
    cannot all pass the check before any of them is counted."""

    max_failures: int = 5
    window: float = 300.0
    clock: Callable[[], float] = time.monotonic
    max_keys: int = 10_000
    lock: threading.RLock = field(default_factory=threading.RLock)
    _failures: dict[str, list[float]] = field(default_factory=dict)

    def _recent(self, key: str) -> list[float]:
        cutoff = self.clock() - self.window
        recent = [t for t in self._failures.get(key, ()) if t > cutoff]
        if recent:
            self._failures[key] = recent
        else:
            self._failures.pop(key, None)
        return recent

    def retry_after(self, key: str, limit: int | None = None) -> float | None:
        """Seconds until `key` may try again, or None when it may try now."""
        allowed = self.max_failures if limit is None else limit
        with self.lock:
            recent = self._recent(key)
            if len(recent) < allowed:
                return None
            return recent[-allowed] + self.window - self.clock()

    def backoff(self, key: str, free: int, base: float, cap: float) -> float | None:
        """Seconds until `key` may try again under exponential backoff, or None: after `free`
        failures within the window, each further try waits `base` * 2^(failures - free)
        seconds (at most `cap`) after the latest failure. Unlike `retry_after`, this never
        holds a key off for long, so others failing on purpose cannot lock its owner out."""
        with self.lock:
            recent = self._recent(key)
            if len(recent) < free:
                return None
            wait = min(cap, base * 2.0 ** min(len(recent) - free, 32))
            left = recent[-1] + wait - self.clock()
        return left if left > 0 else None

    def failed(self, key: str) -> None:
        """Count a failed attempt."""
        with self.lock:
            self._failures.setdefault(key, []).append(self.clock())
            if len(self._failures) > self.max_keys:
                for old in list(self._failures):
                    self._recent(old)
                while len(self._failures) > self.max_keys:
                    del self._failures[next(iter(self._failures))]

    def forgive(self, key: str) -> None:
        """Take back one failure of `key`: an attempt counted before its outcome was known
        that then succeeded."""
        with self.lock:
            recent = self._failures.get(key)
            if recent:
                recent.pop()
                if not recent:
                    del self._failures[key]

    def succeeded(self, key: str) -> None:
        """Forget the failures of `key`."""
        with self.lock:
            self._failures.pop(key, None)


@dataclass(slots=True)
class VerifiedTokens:
    """Access tokens whose signature and claims were already checked, until they expire.

    A JWT cannot change after it is signed, so checking the same token again (about 70 µs of
    HMAC and JSON per request) can only give the same claims; what can change - the user's
    role, whether it is still active - is not cached here. At most `max_size` tokens are kept;
    past that the oldest entries go first.
    """

    tokens: TokenService
    max_size: int = 10_000
    clock: Callable[[], float] = time.time
    _claims: dict[str, Claims] = field(default_factory=dict)

    def verify(self, token: str) -> Claims:
        """The claims of access token `token`; AuthError as `TokenService.verify` gives."""
        claims = self._claims.get(token)
        if claims is None:
            claims = self.tokens.verify(token, "access")
            if len(self._claims) >= self.max_size:
                del self._claims[next(iter(self._claims))]
            self._claims[token] = claims
        if claims.expires_at.timestamp() <= self.clock():
            self._claims.pop(token, None)
            raise AuthError("token expired: log in again")
        return claims
